"""Frame sampling: the original's indices where it worked, defined indices where it crashed, the standard modes."""

import json

import numpy as np
import pytest
from videopanda.processing.frame_sampling_videopanda import (
    original_frame_indices,
    sample_frame_indices,
    uniform_frame_indices,
)


def _reference_rows(fixtures_dir):
    data = json.loads((fixtures_dir / "frame_sampling_reference.json").read_text())
    return data["table"] + data["extra_rows"]


def test_original_indices_equal_reference_for_every_working_row(fixtures_dir):
    rows = [r for r in _reference_rows(fixtures_dir) if r["indices"] is not None]
    assert len(rows) == 17
    for row in rows:
        got = original_frame_indices(row["total_frames"], row["avg_fps"], 8)
        assert got == row["indices"], row
        assert 8 - len(got) == row["num_zero_padding_frames"], row


@pytest.mark.parametrize(
    ("total", "fps", "expected"),
    [
        (1, 30.0, [0]),  # original: ZeroDivisionError
        (10, 0.4, [0, 1, 2, 3, 5, 6, 7, 9]),  # original: zero range step; stride 1 then the even pick
        (10, 0.5, [0, 1, 2, 3, 5, 6, 7, 9]),  # round(0.5) == 0 as well
        (20, None, [0, 2, 5, 8, 10, 13, 16, 19]),  # no frame rate: stride 1
        (20, float("nan"), [0, 2, 5, 8, 10, 13, 16, 19]),
        (6, 0.0, [0, 1, 2, 3, 4, 5]),  # broken fps and a short clip: every frame (padding is added later)
    ],
)
def test_original_indices_where_the_original_crashed(total, fps, expected):
    assert original_frame_indices(total, fps, 8) == expected


def test_original_indices_are_valid_for_many_shapes():
    for total in range(1, 200, 7):
        for fps in (0.3, 1, 7.5, 24, 29.97, 60):
            indices = original_frame_indices(total, fps, 8)
            assert 1 <= len(indices) <= 8
            assert indices == sorted(set(indices))
            assert 0 <= indices[0] and indices[-1] < total
            assert len(indices) == min(8, total)


def test_no_frames_is_an_error():
    with pytest.raises(ValueError, match="0 frames"):
        original_frame_indices(0, 30.0)


def test_uniform_and_fps_rules_match_transformers():
    from transformers.video_utils import VideoMetadata, default_sample_indices_fn

    for total, fps in ((100, 25.0), (37, 10.0), (9, 30.0)):
        metadata = VideoMetadata(total_num_frames=total, fps=fps)
        expected = default_sample_indices_fn(metadata, num_frames=8).tolist()
        assert uniform_frame_indices(total, 8) == expected
        expected = default_sample_indices_fn(metadata, fps=2).tolist()
        assert sample_frame_indices(total, fps, "fps", num_frames=None, fps=2) == expected


def test_repeat_padding_stretches_short_clips():
    assert sample_frame_indices(5, 10.0, "original", 8, short_video_padding="repeat") == [0, 0, 1, 1, 2, 3, 3, 4]
    assert sample_frame_indices(5, 10.0, "original", 8, short_video_padding="zeros") == [0, 1, 2, 3, 4]
    assert sample_frame_indices(1, 10.0, "original", 8, short_video_padding="repeat") == [0]


def test_explicit_fps_selects_the_fps_rule():
    assert sample_frame_indices(100, 25.0, "original", 8, fps=1.0) == uniform_frame_indices(100, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frame_sampling": "random"}, "frame_sampling must be one of"),
        ({"short_video_padding": "loop"}, "short_video_padding must be one of"),
        ({"num_frames": 0}, "num_frames must be a positive integer"),
        ({"num_frames": 2.5}, "num_frames must be a positive integer"),
        ({"fps": -1.0}, "fps must be a positive number"),
        ({"frame_sampling": "fps"}, "needs an `fps`"),
    ],
)
def test_bad_sampling_arguments(kwargs, message):
    arguments = {"total_frames": 100, "video_fps": 25.0, "frame_sampling": "original", "num_frames": 8}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        sample_frame_indices(**arguments)


def test_fps_rule_needs_the_frame_rate():
    with pytest.raises(ValueError, match="frame rate"):
        sample_frame_indices(100, None, "fps", None, fps=2.0)


def test_linspace_truncation_matches_numpy():
    # The original's pick is np.linspace(dtype=int), which truncates: 301 frames at 29.97 fps skip position 3.
    positions = list(range(0, 301, 30))
    picks = np.linspace(0, len(positions) - 1, 8, dtype=int)
    assert original_frame_indices(301, 29.97) == [positions[i] for i in picks]
