"""The synthetic VideoQA benchmark: ground truth visible in the pixels, balance, determinism, file layouts."""

import json

import av
import numpy as np
import pytest

from videopanda.synthetic import (
    ANSWERS,
    QUESTION_TYPES,
    SyntheticConfig,
    build_synthetic_videoqa,
    clip_rng,
    load_split,
    make_clip,
    normalize_answer,
    plan_split,
    vocabulary_corpus,
)

SMALL = SyntheticConfig(image_size=56, num_frames=8, num_train=20, num_validation=5, num_test=10)


def _object_centre(frame: np.ndarray) -> np.ndarray:
    """Centre of the bright pixels (objects are bright, backgrounds are dark by construction)."""
    ys, xs = np.nonzero(frame.astype(int).max(-1) > 140)
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("direction", ["left", "right", "up", "down"])
def test_direction_is_visible_in_the_pixels(direction):
    clip = make_clip("direction", ANSWERS["direction"].index(direction), clip_rng(3, "train", 7), SyntheticConfig())
    assert clip.answer == direction and clip.frames.shape == (8, 84, 84, 3) and clip.frames.dtype == np.uint8
    shift = _object_centre(clip.frames[-1]) - _object_centre(clip.frames[0])
    axis, sign = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}[direction]
    assert sign * shift[axis] > 0.3 * 84 and abs(shift[1 - axis]) < 2


def test_colour_is_visible_in_the_pixels():
    clip = make_clip("colour", ANSWERS["colour"].index("red"), clip_rng(0, "test", 1), SyntheticConfig())
    ys, xs = np.nonzero(clip.frames[0].astype(int).max(-1) > 140)
    r, g, b = clip.frames[0][ys, xs].astype(float).mean(0)
    assert r > 180 and g < 90 and b < 90


def test_order_second_object_appears_later_and_count_matches():
    clip = make_clip("order", 2, clip_rng(0, "train", 3), SyntheticConfig())
    bright = [(f.astype(int).max(-1) > 140).sum() for f in clip.frames]
    assert bright[0] > 0 and bright[-1] > bright[0]  # a second object appears during the clip
    assert clip.answer == clip.objects[0]["colour"] and clip.answer in clip.question
    other = clip.objects[1]["colour"]
    assert other != clip.answer and other in clip.question
    count = make_clip("count", 2, clip_rng(0, "train", 4), SyntheticConfig())
    assert count.answer == "three" and len(count.objects) == 3


def test_plan_is_balanced():
    plan = plan_split(5 * 12, QUESTION_TYPES)
    for qtype in QUESTION_TYPES:
        answers = [a for t, a in plan if t == qtype]
        assert len(answers) == 12
        counts = np.bincount(answers, minlength=len(ANSWERS[qtype]))
        assert counts.max() - counts.min() <= 1


def test_deterministic_by_seed():
    a = make_clip("shape", 1, clip_rng(5, "train", 9), SMALL)
    b = make_clip("shape", 1, clip_rng(5, "train", 9), SMALL)
    c = make_clip("shape", 1, clip_rng(6, "train", 9), SMALL)
    assert np.array_equal(a.frames, b.frames) and a.question == b.question
    assert not np.array_equal(a.frames, c.frames)


def test_build_writes_decodable_videos_and_both_layouts(tmp_path):
    root = build_synthetic_videoqa(tmp_path / "syn", SMALL, progress=False)
    train = json.loads((root / "train.json").read_text())
    assert len(train) == 20
    record = train[0]
    assert set(record) >= {"id", "video", "conversations"}
    assert record["conversations"][0]["from"] == "human" and "<video>" in record["conversations"][0]["value"]
    assert record["conversations"][1]["from"] == "gpt"
    with av.open(str(root / record["video"])) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 8 and frames[0].shape == (56, 56, 3)

    questions = json.loads((root / "test" / "test_q.json").read_text())
    answers = json.loads((root / "test" / "test_a.json").read_text())
    assert len(questions) == len(answers) == 10
    for q, a in zip(questions, answers):
        assert q["question_id"] == a["question_id"] and set(q) == {"video_name", "question_id", "question"}
        assert (root / "test" / "videos" / f"{q['video_name']}.mp4").is_file()
        assert a["answer"] in ANSWERS[QUESTION_TYPES[a["type"]]]
    assert {QUESTION_TYPES[a["type"]] for a in answers} == set(QUESTION_TYPES)

    captions = load_split(root, "train", captions=True)
    assert len(captions) == 20 and all(r["question_type"] == "caption" for r in captions)
    single = [c for c, r in zip(captions, load_split(root, "train")) if r["question_type"] == "direction"][0]
    assert single["answer"].split()[-1] in ANSWERS["direction"]
    metadata = json.loads((root / "metadata.json").read_text())
    assert metadata["config"]["counts"] == {"train": 20, "validation": 5, "test": 10}


def test_every_generated_word_is_in_the_corpus():
    words = set(" ".join(vocabulary_corpus()).replace("?", " ").replace(".", " ").replace(",", " ").split())
    for i in range(30):
        clip = make_clip(QUESTION_TYPES[i % 5], i, clip_rng(0, "train", i), SMALL)
        text = f"{clip.question} {clip.answer} {clip.caption}".replace("?", " ").replace(",", " ")
        assert set(text.split()) <= words


@pytest.mark.parametrize(
    "kwargs, message",
    [({"image_size": 90}, "multiple of 28"), ({"num_frames": 2}, "num_frames"),
     ({"question_types": ("colour", "smell")}, "question_types"), ({"num_train": -1}, "num_train")],
)
def test_bad_settings_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SyntheticConfig(**kwargs)


def test_normalize_answer():
    assert normalize_answer(" Red. ") == "red" and normalize_answer("left, clearly") == "left" and normalize_answer("") == ""


def test_missing_manifest_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="build_synthetic_videoqa"):
        load_split(tmp_path, "train")


def test_square_shows_corners_beyond_its_circle():
    """A square's half-side is the circle's radius: same extent, about 4/pi times the pixels."""
    from videopanda.synthetic import _shape_mask

    circle, square = (_shape_mask(shape, 42.0, 42.0, 20.0, 84).sum() for shape in ("circle", "square"))
    assert abs(square / circle - 4 / np.pi) < 0.03


@pytest.mark.parametrize("seed", range(12))
def test_placed_squares_never_overlap(seed):
    """Objects are kept apart by their circumscribed circles, so four squares never overlap."""
    from videopanda.synthetic import _place_apart, _shape_mask

    rng = np.random.default_rng(seed)
    radii = [rng.uniform(84 / 12, 84 / 8) for _ in range(4)]
    masks = [_shape_mask("square", cx, cy, r, 84) for r, (cx, cy) in zip(radii, _place_apart(rng, 84, radii))]
    assert sum(m.astype(int) for m in masks).max() == 1


def test_follow_up_questions_ask_the_other_facts_of_a_single_object():
    clip = make_clip("shape", 1, clip_rng(0, "train", 11), SyntheticConfig())
    obj = clip.objects[0]
    assert clip.answer == obj["shape"] == "square"
    assert sorted(t for t, _, _ in clip.follow_ups) == ["colour", "direction"]
    assert all(answer == obj[qtype] for qtype, _, answer in clip.follow_ups)
    assert make_clip("count", 1, clip_rng(0, "train", 12), SyntheticConfig()).follow_ups == []
    plain = make_clip("shape", 1, clip_rng(0, "train", 11), SyntheticConfig(follow_up_questions=False))
    assert plain.follow_ups == [] and np.array_equal(plain.frames, clip.frames)


def test_manifest_turns_round_trip(tmp_path):
    root = build_synthetic_videoqa(tmp_path / "syn", SMALL, progress=False)
    records = load_split(root, "train")
    single = [r for r in records if r["question_type"] in ("colour", "shape", "direction")]
    assert single and all(len(r["turns"]) == 3 for r in single)
    assert all(r["turns"][0] == [r["question"], r["answer"]] for r in records)
    assert all(len(r["turns"]) == 1 for r in records if r["question_type"] in ("order", "count"))
    raw = json.loads((root / "train.json").read_text())
    assert sum("<video>" in turn["value"] for turn in raw[0]["conversations"]) == 1
