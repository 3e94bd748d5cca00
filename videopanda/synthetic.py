"""A synthetic spatio-temporal VideoQA benchmark with known ground truth, deterministic by seed.

Why: the project must show, on a fresh machine with no Hub access, that the architecture learns spatial *and* temporal
concepts. Clips of simple coloured shapes on varied dark backgrounds are rendered with numpy and encoded to real video
files with PyAV, so training and evaluation go through the full decode path. Every clip is drawn from its own
``numpy`` generator seeded by ``(seed, split, index)``, so a dataset is reproducible clip by clip.

Question types (chance level in brackets):
    colour     "What colour is the object?"                        red / green / blue / yellow (25%)
    shape      "What shape is the object?"                         circle / square / triangle (33%)
    direction  "Which direction does the object move?"             left / right / up / down (25%)
    order      "Which appears first, the red one or the blue one?" one of the two colours named (50%)
    count      "How many objects are there?"                       one / two / three / four (25%)

Answers are balanced within each split (answer ``k`` of type ``t`` is used for every ``len(answers)``-th clip of that
type). Files written by :func:`build_synthetic_videoqa` under ``root``:

    train.json, validation.json, test.json     LLaVA-style QA manifests ({"id", "video", "conversations"}), video
                                               paths relative to ``root`` (VideoChatGPT-instruct style, stage 3).
                                               The balanced question comes first; with ``follow_up_questions`` the
                                               clip's other facts follow as further turns (a single moving object is
                                               also asked its colour, shape and direction), so every training clip
                                               teaches all the facts it shows
    <split>_captions.json                      the same clips with "Describe the video." and a caption stating every
                                               fact ("a red circle moves left"): video-text pairs (Valley style,
                                               stages 1 and 2)
    <split>/videos/<split>_<index>.mp4         the clips
    <split>/test_q.json, <split>/test_a.json   validation and test in the published zero-shot QA layout (parallel
                                               lists of {"video_name", "question_id", "question"} and
                                               {"answer", "type", "question_id"}); ``type`` indexes QUESTION_TYPES
    metadata.json                              generator settings, question types, answers and counts
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 40, 40),
    "green": (40, 205, 60),
    "blue": (55, 95, 235),
    "yellow": (235, 215, 45),
}
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("left", "right", "up", "down")
COUNT_WORDS = ("one", "two", "three", "four")
QUESTION_TYPES = ("colour", "shape", "direction", "order", "count")
ANSWERS: dict[str, tuple[str, ...]] = {
    "colour": tuple(COLOURS),
    "shape": SHAPES,
    "direction": DIRECTIONS,
    # For "order" the balanced quantity is which of the two named colours is the answer; the answer itself is a colour.
    "order": tuple(COLOURS),
    "count": COUNT_WORDS,
}
QUESTION_TEMPLATES: dict[str, tuple[str, ...]] = {
    "colour": ("What colour is the object?", "What is the colour of the shape?"),
    "shape": ("What shape is the object?", "Which shape is shown in the video?"),
    "direction": ("Which direction does the object move?", "In which direction is the shape moving?"),
    "order": ("Which appears first, the {a} one or the {b} one?", "Which object is seen first, the {a} one or the {b} one?"),
    "count": ("How many objects are there?", "How many shapes are in the video?"),
}
CAPTION_PROMPT = "Describe the video."
SPLITS = ("train", "validation", "test")
_SPLIT_SEED = {"train": 0, "validation": 1, "test": 2}


@dataclass
class SyntheticConfig:
    """Settings of one synthetic benchmark; stored in ``metadata.json`` so a dataset documents how it was made."""

    image_size: int = 84
    num_frames: int = 8
    fps: int = 8
    seed: int = 0
    num_train: int = 2000
    num_validation: int = 200
    num_test: int = 500
    question_types: tuple[str, ...] = QUESTION_TYPES
    # Relative travel of a moving object over the clip (0.4 of the frame side learned well in the measurements).
    travel: float = 0.4
    # Ask a single-object clip all its facts (colour, shape, direction) in one multi-turn conversation. Why: the shape
    # of a circle vs a square is learned only once it gets enough of the training signal (docs/experiments.md).
    follow_up_questions: bool = True
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self):
        if self.image_size % 28:
            raise ValueError(
                f"image_size must be a multiple of 28 (patch 14 x LSD window 2), got {self.image_size}."
            )
        if self.image_size < 56:
            raise ValueError(f"image_size must be at least 56 pixels, got {self.image_size}.")
        if self.num_frames < 4:
            raise ValueError(f"num_frames must be at least 4 so that motion and order are visible, got {self.num_frames}.")
        unknown = [t for t in self.question_types if t not in QUESTION_TYPES]
        if unknown or not self.question_types:
            raise ValueError(f"question_types must be a non-empty subset of {QUESTION_TYPES}, got {self.question_types}.")
        for name in ("num_train", "num_validation", "num_test"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be non-negative, got {getattr(self, name)}.")
        self.question_types = tuple(self.question_types)


@dataclass
class Clip:
    """One rendered clip with its question and ground-truth answer, and further questions about its other facts."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    question_type: str
    question: str
    answer: str
    objects: list[dict]
    caption: str = ""
    follow_ups: list[tuple[str, str, str]] = field(default_factory=list)  # (question type, question, answer)


# ----------------------------------------------------------------------------------------------------------------------
# Rendering


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A dark background: a random tint, a random linear gradient and a little static noise (float32, HxWx3)."""
    base = rng.uniform(0, 70, size=3)
    ramp = rng.uniform(-35, 35, size=3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:size, 0:size] / max(1, size - 1)
    position = np.cos(angle) * xx + np.sin(angle) * yy
    image = base[None, None, :] + position[..., None] * ramp[None, None, :]
    image += rng.normal(0, 5, size=(size, size, 3))
    return np.clip(image, 0, 90).astype(np.float32)


def _shape_mask(shape: str, cx: float, cy: float, radius: float, size: int) -> np.ndarray:
    """Boolean ``size x size`` mask of a circle, square or upward triangle centred at (cx, cy).

    ``radius`` is the circle's radius and the square's half-side (the circle fits the square exactly), so a square
    shows its corners beyond the circle it contains."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    dx, dy = xx - cx, yy - cy
    if shape == "circle":
        return dx**2 + dy**2 <= radius**2
    if shape == "square":
        return (np.abs(dx) <= radius) & (np.abs(dy) <= radius)
    if shape == "triangle":
        # Apex at the top, base at the bottom: inside when below the two slanted edges and above the base.
        top, bottom = cy - radius, cy + radius * 0.8
        width_at_y = (yy - top) / (bottom - top) * radius
        return (yy >= top) & (yy <= bottom) & (np.abs(dx) <= width_at_y)
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}.")


def _colour(rng: np.random.Generator, name: str) -> np.ndarray:
    """The named colour with a small per-clip jitter, so the model cannot memorise exact values."""
    return np.clip(np.array(COLOURS[name], dtype=np.float32) + rng.uniform(-20, 20, size=3), 0, 255)


def _render(background: np.ndarray, objects: list[dict], num_frames: int) -> np.ndarray:
    """Draw every object whose ``visible_from`` frame has come at its per-frame centre; returns (T,H,W,3) uint8."""
    size = background.shape[0]
    frames = np.empty((num_frames, size, size, 3), dtype=np.uint8)
    for t in range(num_frames):
        frame = background.copy()
        for obj in objects:
            if t < obj["visible_from"]:
                continue
            cx, cy = obj["centres"][t]
            frame[_shape_mask(obj["shape"], cx, cy, obj["radius"], size)] = obj["rgb"]
        frames[t] = frame.astype(np.uint8)
    return frames


def _static(cx: float, cy: float, num_frames: int) -> list[tuple[float, float]]:
    return [(cx, cy)] * num_frames


def _place_apart(rng, size: int, radii: list[float], margin: float = 2.0, tries: int = 500) -> list[tuple[float, float]]:
    """Centres for non-overlapping objects fully inside the frame (rejection sampling, deterministic by ``rng``).

    Objects are kept apart by their circumscribed circles (a square's corners reach ``sqrt(2) * radius``)."""
    for _ in range(tries):
        centres = [(rng.uniform(r + 1, size - r - 1), rng.uniform(r + 1, size - r - 1)) for r in radii]
        ok = all(
            np.hypot(a[0] - b[0], a[1] - b[1]) >= np.sqrt(2) * (radii[i] + radii[j]) + margin
            for i, a in enumerate(centres)
            for j, b in enumerate(centres)
            if i < j
        )
        if ok:
            return centres
    raise RuntimeError(f"could not place {len(radii)} objects apart in a {size}px frame; lower the radii.")


def make_clip(question_type: str, answer_index: int, rng: np.random.Generator, config: SyntheticConfig) -> Clip:
    """Render one clip whose ground truth for ``question_type`` is ``ANSWERS[question_type][answer_index]``.

    Everything not fixed by the answer (other attributes, positions, sizes, background, template) comes from ``rng``.
    """
    size, frames_n = config.image_size, config.num_frames
    answers = ANSWERS[question_type]
    answer = answers[answer_index % len(answers)]
    template = QUESTION_TEMPLATES[question_type][int(rng.integers(len(QUESTION_TEMPLATES[question_type])))]
    background = _background(rng, size)

    if question_type in ("colour", "shape", "direction"):
        colour = answer if question_type == "colour" else str(rng.choice(list(COLOURS)))
        shape = answer if question_type == "shape" else str(rng.choice(SHAPES))
        direction = answer if question_type == "direction" else str(rng.choice(DIRECTIONS))
        # Large enough that a circle and a square differ by whole patches at 84x84 (radius 17-23 px, patch 14 px).
        radius = rng.uniform(size / 5, size / 3.6)
        travel = config.travel * size
        step = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[direction]
        # Start so that the whole path stays inside the frame.
        lo, hi = radius + 1, size - radius - 1
        start = [rng.uniform(lo, hi), rng.uniform(lo, hi)]
        for axis in (0, 1):
            if step[axis] > 0:
                start[axis] = rng.uniform(lo, hi - travel)
            elif step[axis] < 0:
                start[axis] = rng.uniform(lo + travel, hi)
        centres = [
            (start[0] + step[0] * travel * t / (frames_n - 1), start[1] + step[1] * travel * t / (frames_n - 1))
            for t in range(frames_n)
        ]
        objects = [dict(colour=colour, shape=shape, radius=radius, centres=centres, visible_from=0, direction=direction)]
        question = template
    elif question_type == "order":
        first = answer
        second = str(rng.choice([c for c in COLOURS if c != first]))
        radii = [rng.uniform(size / 8, size / 5) for _ in range(2)]
        (c1, c2) = _place_apart(rng, size, radii)
        low = max(1, frames_n // 4)  # the second object appears mid-clip (frames 2..5 of 8) and stays
        appear = int(rng.integers(low, max(low + 1, frames_n - frames_n // 4)))
        objects = [
            dict(colour=first, shape=str(rng.choice(SHAPES)), radius=radii[0], centres=_static(*c1, frames_n), visible_from=0),
            dict(colour=second, shape=str(rng.choice(SHAPES)), radius=radii[1], centres=_static(*c2, frames_n),
                 visible_from=appear),
        ]
        named = [first, second] if rng.random() < 0.5 else [second, first]
        question = template.format(a=named[0], b=named[1])
    elif question_type == "count":
        n = COUNT_WORDS.index(answer) + 1
        radii = [rng.uniform(size / 12, size / 8) for _ in range(n)]
        positions = _place_apart(rng, size, radii)
        objects = [
            dict(colour=str(rng.choice(list(COLOURS))), shape=str(rng.choice(SHAPES)), radius=r,
                 centres=_static(*c, frames_n), visible_from=0)
            for r, c in zip(radii, positions)
        ]
        question = template
    else:
        raise ValueError(f"unknown question type {question_type!r}; expected one of {QUESTION_TYPES}.")

    for obj in objects:
        obj["rgb"] = _colour(rng, obj["colour"])
    frames = _render(background, objects, frames_n)
    caption = describe(question_type, objects)
    described = [
        {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in obj.items() if k not in ("centres", "rgb")}
        for obj in objects
    ]
    follow_ups = _follow_ups(question_type, objects[0], rng, config) if config.follow_up_questions else []
    return Clip(frames=frames, question_type=question_type, question=question, answer=answer, objects=described,
                caption=caption, follow_ups=follow_ups)


_SINGLE_OBJECT_FACTS = ("colour", "shape", "direction")


def _follow_ups(question_type: str, obj: dict, rng: np.random.Generator, config: SyntheticConfig) -> list:
    """The other facts of a single-object clip as ``(type, question, answer)`` in a random order (none otherwise).

    Drawn after rendering, so the frames of a clip do not depend on this switch.
    """
    if question_type not in _SINGLE_OBJECT_FACTS:
        return []
    others = [t for t in _SINGLE_OBJECT_FACTS if t != question_type and t in config.question_types]
    follow_ups = []
    for qtype in [others[i] for i in rng.permutation(len(others))]:
        templates = QUESTION_TEMPLATES[qtype]
        follow_ups.append((qtype, templates[int(rng.integers(len(templates)))], obj[qtype]))
    return follow_ups


def describe(question_type: str, objects: list[dict]) -> str:
    """A short caption stating every fact of the clip (the video-text pairs of the alignment stages)."""
    if question_type in ("colour", "shape", "direction"):
        obj = objects[0]
        return f"a {obj['colour']} {obj['shape']} moves {obj['direction']}"
    if question_type == "order":
        first, second = objects
        return f"a {first['colour']} {first['shape']} , then a {second['colour']} {second['shape']}"
    n = len(objects)
    return f"{COUNT_WORDS[n - 1]} {'object' if n == 1 else 'objects'}"


def clip_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of clip ``index`` of ``split``: clips are independent, so any subset can be regenerated alone."""
    return np.random.default_rng([seed, _SPLIT_SEED[split], index])


def plan_split(num: int, question_types: tuple[str, ...]) -> list[tuple[str, int]]:
    """Balanced ``(question_type, answer_index)`` per clip: types cycle, answers cycle within each type."""
    plan = []
    seen = {t: 0 for t in question_types}
    for i in range(num):
        qtype = question_types[i % len(question_types)]
        plan.append((qtype, seen[qtype] % len(ANSWERS[qtype])))
        seen[qtype] += 1
    return plan


def generate_split(split: str, num: int, config: SyntheticConfig):
    """Yield ``(index, Clip)`` for one split, deterministically."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}.")
    for index, (qtype, answer_index) in enumerate(plan_split(num, config.question_types)):
        yield index, make_clip(qtype, answer_index, clip_rng(config.seed, split, index), config)


# ----------------------------------------------------------------------------------------------------------------------
# Writing the benchmark


def _llava_record(sample_id: str, video: str, turns: list[tuple[str, str]], qtype: str) -> dict:
    """A LLaVA-style record; ``turns`` are (question, answer) pairs, the video placeholder opens the first question."""
    conversations = []
    for k, (question, answer) in enumerate(turns):
        conversations += [
            {"from": "human", "value": f"<video>\n{question}" if k == 0 else question},
            {"from": "gpt", "value": answer},
        ]
    return {"id": sample_id, "video": video, "question_type": qtype, "conversations": conversations}


def build_synthetic_videoqa(root: str | Path, config: SyntheticConfig | None = None, progress: bool = True) -> Path:
    """Render, encode and index all splits under ``root``; returns ``root``. Existing files are overwritten."""
    from .testing import write_video  # PyAV encoder shared with the tests

    config = config or SyntheticConfig()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    counts = {"train": config.num_train, "validation": config.num_validation, "test": config.num_test}
    per_type: dict[str, dict[str, int]] = {}
    for split in SPLITS:
        video_dir = root / split / "videos"
        video_dir.mkdir(parents=True, exist_ok=True)
        manifest, captions, questions, answers = [], [], [], []
        per_type[split] = {t: 0 for t in config.question_types}
        clips = generate_split(split, counts[split], config)
        for index, clip in tqdm(clips, total=counts[split], desc=f"synthetic {split}", disable=not progress):
            name = f"{split}_{index:05d}"
            write_video(video_dir / f"{name}.mp4", clip.frames, fps=config.fps)
            qid = f"{name}_0"
            turns = [(clip.question, clip.answer)] + [(q, a) for _, q, a in clip.follow_ups]
            manifest.append(_llava_record(qid, f"{split}/videos/{name}.mp4", turns, clip.question_type))
            captions.append(
                _llava_record(f"{name}_caption", f"{split}/videos/{name}.mp4", [(CAPTION_PROMPT, clip.caption)], "caption")
            )
            questions.append({"video_name": name, "question_id": qid, "question": clip.question})
            answers.append(
                {"answer": clip.answer, "type": QUESTION_TYPES.index(clip.question_type), "question_id": qid}
            )
            per_type[split][clip.question_type] += 1
        (root / f"{split}.json").write_text(json.dumps(manifest, indent=1))
        (root / f"{split}_captions.json").write_text(json.dumps(captions, indent=1))
        if split != "train":
            (root / split / "test_q.json").write_text(json.dumps(questions, indent=1))
            (root / split / "test_a.json").write_text(json.dumps(answers, indent=1))
    config.counts = {k: sum(v.values()) for k, v in per_type.items()}
    metadata = {
        "config": asdict(config),
        "question_types": list(QUESTION_TYPES),
        "answers": {k: list(v) for k, v in ANSWERS.items()},
        "per_type_counts": per_type,
    }
    (root / "metadata.json").write_text(json.dumps(metadata, indent=1))
    logger.info("wrote synthetic VideoQA to %s (%s)", root, config.counts)
    return root


def load_split(root: str | Path, split: str, captions: bool = False) -> list[dict]:
    """Flat records ``{"id", "video" (absolute path), "question", "answer", "question_type", "turns"}`` of one split.

    ``question`` and ``answer`` are the first (balanced, scored) turn; ``turns`` lists every ``[question, answer]`` pair
    of the conversation, follow-up questions included. With ``captions=True`` the caption records (question "Describe
    the video.", type "caption") are returned instead.
    """
    root = Path(root)
    path = root / (f"{split}_captions.json" if captions else f"{split}.json")
    if not path.is_file():
        raise FileNotFoundError(f"no manifest {path}; run build_synthetic_videoqa({str(root)!r}) first.")
    records = []
    for item in json.loads(path.read_text()):
        messages = item["conversations"]
        turns = [
            [human["value"].replace("<video>", "").strip(), gpt["value"]]
            for human, gpt in zip(messages[0::2], messages[1::2])
        ]
        records.append(
            {
                "id": item["id"],
                "video": str(root / item["video"]),
                "question": turns[0][0],
                "answer": turns[0][1],
                "question_type": item["question_type"],
                "turns": turns,
            }
        )
    return records


def as_hf_dataset(root: str | Path, split: str):
    """The split as a :class:`datasets.Dataset` (columns of :func:`load_split`), for users of the datasets library."""
    import datasets

    return datasets.Dataset.from_list(load_split(root, split))


def vocabulary_corpus() -> list[str]:
    """Every question and answer string the generator can produce, for training a word-level tokenizer on the fly."""
    lines = []
    colours = list(COLOURS)
    for qtype, templates in QUESTION_TEMPLATES.items():
        for template in templates:
            if qtype == "order":
                lines += [template.format(a=a, b=b) for a in colours for b in colours if a != b]
            else:
                lines.append(template)
    for answers in ANSWERS.values():
        lines += list(answers)
    lines += [CAPTION_PROMPT, "a moves then , object objects"]
    return lines


def normalize_answer(text: str) -> str:
    """Lower-case, strip punctuation and keep the first word: the scoring rule of the synthetic benchmark."""
    words = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text.lower()).split()
    return words[0] if words else ""


__all__ = [
    "ANSWERS",
    "COLOURS",
    "QUESTION_TYPES",
    "SHAPES",
    "DIRECTIONS",
    "COUNT_WORDS",
    "Clip",
    "SyntheticConfig",
    "as_hf_dataset",
    "build_synthetic_videoqa",
    "generate_split",
    "load_split",
    "make_clip",
    "normalize_answer",
    "vocabulary_corpus",
]
