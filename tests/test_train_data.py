"""Training data: LLaVA JSON/JSONL loading, path safety, missing/corrupt videos reported, seeded subsets."""

import json
import os

import pytest
from videopanda.train.data import build_dataset, resolve_video_path, subset_indices, to_messages

from videopanda.testing import make_video


def _record(i, video):
    return {
        "id": f"s{i}",
        "video": video,
        "conversations": [
            {"from": "human", "value": f"<video>\nWhat happens in clip {i}?"},
            {"from": "gpt", "value": "A square moves."},
        ],
    }


@pytest.fixture()
def bad_data(tmp_path):
    root = tmp_path / "videos"
    (root / "clips").mkdir(parents=True)
    make_video(root / "clips" / "a.mp4", num_frames=4, height=32, width=32)
    make_video(root / "clips" / "b.mp4", num_frames=4, height=32, width=32)
    (root / "clips" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    outside = tmp_path / "secret.mp4"
    make_video(outside, num_frames=4, height=32, width=32)
    os.symlink(outside, root / "clips" / "link.mp4")
    records = [
        _record(0, "clips/a.mp4"),
        _record(1, "clips/missing.mp4"),
        _record(2, "clips/broken.mp4"),
        _record(3, "../secret.mp4"),
        _record(4, "clips/b.mp4"),
        _record(5, str(outside)),
        _record(6, "clips/link.mp4"),
        {"id": "s7", "video": "clips/a.mp4", "conversations": []},
    ]
    data = tmp_path / "train.json"
    data.write_text(json.dumps(records))
    return data, root


def test_bad_records_are_skipped_and_reported(bad_data, tmp_path):
    data, root = bad_data
    dataset, report = build_dataset(data, root, report_path=tmp_path / "report.json")
    assert dataset["id"] == ["s0", "s4"]
    assert report.total == 8 and report.kept == 2
    assert dict(report.rejected) == {"missing_video": 1, "corrupt_video": 1, "unsafe_path": 3, "bad_record": 1}
    unsafe = {e["id"] for e in report.examples["unsafe_path"]}
    assert unsafe == {"s3", "s5", "s6"}  # '..', absolute path, symlink escaping the root
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["rejected"]["corrupt_video"] == 1 and saved["examples"]["missing_video"][0]["id"] == "s1"
    assert dataset[0]["turns"] == [
        {"role": "user", "text": "What happens in clip 0?"},
        {"role": "assistant", "text": "A square moves."},
    ]


def test_no_usable_sample_is_a_clear_error(bad_data, tmp_path):
    _, root = bad_data
    data = tmp_path / "hopeless.jsonl"
    data.write_text("\n".join(json.dumps(_record(i, v)) for i, v in enumerate(["../x.mp4", "clips/nope.mp4"])))
    with pytest.raises(ValueError, match="no usable training samples") as error:
        build_dataset(data, root)
    assert "missing_video: 1" in str(error.value) and "unsafe_path: 1" in str(error.value)


def test_path_safety_rules(tmp_path):
    assert resolve_video_path(tmp_path, "a/b.mp4") == tmp_path / "a" / "b.mp4"
    for bad in ["../x.mp4", "a/../../x.mp4", "/etc/passwd", "", "C:\\x.mp4"]:
        with pytest.raises(ValueError):
            resolve_video_path(tmp_path, bad)


def test_jsonl_and_seeded_half_subset(tmp_path):
    root = tmp_path / "v"
    root.mkdir()
    make_video(root / "a.mp4", num_frames=4, height=32, width=32)
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(_record(i, "a.mp4")) for i in range(10)))
    first, _ = build_dataset(data, root, subset_fraction=0.5, seed=42, verify_videos=False)
    again, _ = build_dataset(data, root, subset_fraction=0.5, seed=42, verify_videos=False)
    other, _ = build_dataset(data, root, subset_fraction=0.5, seed=7, verify_videos=False)
    assert len(first) == 5 and first["id"] == again["id"] and first["id"] != other["id"]
    assert subset_indices(10, 0.5, 42) == sorted(subset_indices(10, 0.5, 42))
    with pytest.raises(ValueError, match="fraction"):
        subset_indices(10, 0, 42)


def test_messages_put_the_video_first_in_the_first_user_turn():
    turns = [
        {"role": "user", "text": "Q1"},
        {"role": "assistant", "text": "A1"},
        {"role": "user", "text": "Q2"},
        {"role": "assistant", "text": "A2"},
    ]
    messages = to_messages(turns, "/v/a.mp4")
    assert messages[0]["content"] == [{"type": "video", "path": "/v/a.mp4"}, {"type": "text", "text": "Q1"}]
    assert messages[2]["content"] == [{"type": "text", "text": "Q2"}]
