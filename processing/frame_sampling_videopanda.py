"""Which frames of a video Video-Panda looks at.

The released weights were trained on frames picked by the original data loader (one position per second, then an even
pick of 8 of them; see ``original_frame_indices``). This file reproduces that rule exactly where the original worked
and gives it defined behaviour where the original crashed, plus the plain uniform and fps rules of transformers.
"""

import math

import numpy as np

SAMPLING_MODES = ("original", "uniform", "fps")
SHORT_VIDEO_PADDING = ("zeros", "repeat")


def original_frame_indices(total_frames: int, video_fps: float | None, num_frames: int = 8) -> list[int]:
    """Frame indices of the original Video-Panda loader (``video_framerate=1``, ``max_frames=min_frames=num_frames``).

    Rule, for ``N = total_frames`` frames at ``video_fps``:

    1. ``stride = round(video_fps)`` (Python's banker's rounding); one position per second: ``range(0, N, stride)``.
    2. More than ``num_frames`` positions: ``positions[np.linspace(0, len - 1, num_frames, dtype=int)]`` (truncating).
    3. Exactly ``num_frames`` positions: all of them.
    4. Fewer: ``k = min(num_frames, N)`` frames with stride ``max(1, (N - 1) // (k - 1))`` from frame 0 (so the tail
       of a short clip is never sampled, as in the original). With ``N < num_frames`` this returns every frame; the
       caller pads the rest (all-zero frames by default, as the original did).

    Where the original crashed, this returns:

    - ``N == 1``: ``[0]`` (the original divided by zero).
    - ``video_fps`` missing, not finite, or ``round(video_fps) == 0`` (fps <= 0.5; the original's ``range`` got a zero
      step): the stride is 1, i.e. positions are all frames, so the pick is an even spread over the whole clip.
    - ``N <= 0``: ``ValueError`` (there is nothing to sample).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames}.")
    if total_frames <= 0:
        raise ValueError(f"Cannot sample frames from a video with {total_frames} frames.")
    if total_frames == 1:
        return [0]
    stride = 1
    if video_fps is not None and math.isfinite(video_fps) and video_fps > 0:
        stride = max(1, round(video_fps))
    positions = list(range(0, total_frames, stride))
    if len(positions) > num_frames:
        picks = np.linspace(0, len(positions) - 1, num=num_frames, dtype=int)
        return [positions[i] for i in picks]
    if len(positions) == num_frames:
        return positions
    wanted = min(num_frames, total_frames)
    stride = max(1, (total_frames - 1) // (wanted - 1))
    return list(range(0, stride * (wanted - 1) + 1, stride))


def uniform_frame_indices(total_frames: int, num_frames: int) -> list[int]:
    """transformers' default rule: ``arange(num_frames) * N // num_frames``; every frame when the clip is shorter."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames}.")
    if total_frames <= 0:
        raise ValueError(f"Cannot sample frames from a video with {total_frames} frames.")
    if total_frames <= num_frames:
        return list(range(total_frames))
    return [int(i) for i in np.arange(num_frames) * total_frames // num_frames]


def fps_frame_indices(total_frames: int, video_fps: float | None, fps: float) -> list[int]:
    """transformers' fps rule: ``int(N / video_fps * fps)`` frames spread as in ``uniform_frame_indices`` (at least 1)."""
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}.")
    if video_fps is None or not math.isfinite(video_fps) or video_fps <= 0:
        raise ValueError("fps sampling needs the video's frame rate, which this video does not report.")
    count = max(1, int(total_frames / video_fps * fps))
    return uniform_frame_indices(total_frames, min(count, total_frames))


def repeat_to_length(indices: list[int], num_frames: int) -> list[int]:
    """Stretch a short index list to ``num_frames`` by repeating frames evenly (the ``"repeat"`` padding option)."""
    if not indices or len(indices) >= num_frames:
        return list(indices)
    return [indices[i] for i in np.arange(num_frames) * len(indices) // num_frames]


def sample_frame_indices(
    total_frames: int,
    video_fps: float | None,
    frame_sampling: str = "original",
    num_frames: int | None = 8,
    fps: float | None = None,
    short_video_padding: str = "zeros",
) -> list[int]:
    """Dispatch to the chosen rule; with ``short_video_padding="repeat"`` short results are stretched by repetition.

    ``"zeros"`` padding is not applied here (indices only name real frames); the video processor appends the all-zero
    frames. ``fps`` given explicitly selects the fps rule, whatever ``frame_sampling`` says.
    """
    if frame_sampling not in SAMPLING_MODES:
        raise ValueError(f"frame_sampling must be one of {SAMPLING_MODES}, got {frame_sampling!r}.")
    if short_video_padding not in SHORT_VIDEO_PADDING:
        raise ValueError(f"short_video_padding must be one of {SHORT_VIDEO_PADDING}, got {short_video_padding!r}.")
    if num_frames is not None and (not isinstance(num_frames, (int, np.integer)) or num_frames < 1):
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}.")
    if fps is not None or frame_sampling == "fps":
        if fps is None:
            raise ValueError('frame_sampling="fps" needs an `fps` value.')
        return fps_frame_indices(total_frames, video_fps, fps)
    if num_frames is None:
        raise ValueError(f'frame_sampling="{frame_sampling}" needs `num_frames`.')
    if frame_sampling == "original":
        indices = original_frame_indices(total_frames, video_fps, num_frames)
    else:
        indices = uniform_frame_indices(total_frames, num_frames)
    if short_video_padding == "repeat" and len(indices) > 1:
        indices = repeat_to_length(indices, num_frames)
    return indices


__all__ = [
    "SAMPLING_MODES",
    "SHORT_VIDEO_PADDING",
    "fps_frame_indices",
    "original_frame_indices",
    "repeat_to_length",
    "sample_frame_indices",
    "uniform_frame_indices",
]
