"""Decode only the frames a sampler asks for, with PyAV, and fail loudly with the file name when that is impossible.

A packet scan (demuxing, no decoding) gives the exact frame count, every frame's timestamp and the keyframes. Frames
are then decoded by seeking to the keyframe before each wanted frame whenever that skips work, instead of decoding the
whole file; only the wanted frames are converted to RGB. When timestamps are missing or seeking misbehaves, decoding
falls back to one sequential pass that counts frames.
"""

import bisect
import itertools
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from transformers.utils.import_utils import is_av_available
from transformers.video_utils import VideoMetadata

if is_av_available():
    import av
    from av.video.reformatter import VideoReformatter

logger = logging.getLogger(__name__)


class VideoDecodeError(ValueError):
    """A video input that cannot be used; the message names the file and the problem. Subclass of ``ValueError``."""


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://", "rtsp://", "rtmp://"))


def _as_float(rate) -> float | None:
    try:
        value = float(rate)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return value if math.isfinite(value) and value > 0 else None


class _PacketIndex:
    """Exact frame count, presentation timestamps and keyframe timestamps of one video stream (from demuxing)."""

    def __init__(self, container, stream, source: str):
        pts, keyframes = [], []
        try:
            for packet in container.demux(stream):
                if packet.size == 0:  # flush packet at the end of the stream
                    continue
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keyframes.append(packet.pts)
        except av.error.FFmpegError as error:
            raise VideoDecodeError(f"{source}: the video stream cannot be read ({error}); the file may be truncated.")
        self.has_timestamps = bool(pts) and all(p is not None for p in pts) and len(set(pts)) == len(pts)
        self.total_frames = len(pts)
        self.pts = sorted(pts) if self.has_timestamps else None
        self.keyframes = sorted(k for k in keyframes if k is not None) if self.has_timestamps else []


def _video_fps(stream, index: _PacketIndex) -> float | None:
    """The stream's average frame rate (what decord reports), else one derived from the timestamps."""
    fps = _as_float(stream.average_rate) or _as_float(stream.guessed_rate)
    if fps is None and index.has_timestamps and index.total_frames > 1 and stream.time_base:
        span = (index.pts[-1] - index.pts[0]) * float(stream.time_base)
        fps = _as_float((index.total_frames - 1) / span) if span > 0 else None
    return fps


def rgb_converter() -> Callable:
    """``frame -> (H, W, 3) uint8`` RGB for the frames of one video.

    Why: one reused swscale context converts a small frame in about 0.1 ms, while ``frame.to_ndarray(format="rgb24")``
    or ``frame.reformat(...)`` set one up per frame (0.5-2 ms for an 84x84 frame in PyAV 18); the bytes are the same.
    One converter per video: the context is not safe to share between threads.
    """
    reformatter = VideoReformatter()
    return lambda frame: reformatter.reformat(frame, format="rgb24").to_ndarray()


def _seek_at_or_before(container, stream, index: _PacketIndex, target_pts: int, max_tries: int = 4):
    """Seek to the last keyframe at or before ``target_pts`` and return a frame iterator starting there.

    Some containers (MPEG program streams) seek by byte estimate and can land after the target; then step back one
    keyframe at a time. Returns ``None`` when no tried seek lands at or before the target.
    """
    k = bisect.bisect_right(index.keyframes, target_pts) - 1
    candidates = [index.keyframes[i] for i in range(k, max(-1, k - max_tries), -1)] if k >= 0 else []
    candidates.append(min(index.pts[0], 0))  # the very start: rewinding works even where seeking is approximate
    for keyframe in candidates:
        container.seek(keyframe, stream=stream, backward=True, any_frame=False)
        frames = container.decode(stream)
        first = next(frames, None)
        if first is not None and first.pts is not None and first.pts <= target_pts:
            return itertools.chain([first], frames)
    return None


def _decode_by_seeking(container, stream, index: _PacketIndex, wanted: list[int], convert) -> dict[int, object]:
    """``convert(frame)`` of the sorted, unique ``wanted`` indices, seeking to a keyframe whenever one lies ahead of us.

    Returns what it found; the caller falls back to a sequential decode when something is missing.
    """
    by_pts = {index.pts[i]: i for i in wanted}
    found: dict[int, object] = {}
    position = None  # pts of the last decoded frame
    frames = None
    for target in wanted:
        target_pts = index.pts[target]
        k = bisect.bisect_right(index.keyframes, target_pts) - 1
        keyframe = index.keyframes[k] if k >= 0 else index.pts[0]
        # The packet scan left the container at the end, so the first target always seeks.
        if frames is None or position is None or keyframe > position:
            frames = _seek_at_or_before(container, stream, index, target_pts)
            if frames is None:
                return found
        for frame in frames:
            if frame.pts is None:
                return found  # timestamps vanished: let the caller fall back
            position = frame.pts
            if frame.pts in by_pts and by_pts[frame.pts] not in found:
                found[by_pts[frame.pts]] = convert(frame)
            if frame.pts >= target_pts:
                break
        if target not in found:
            return found
    return found


def _decode_sequentially(source: str, wanted: set[int], convert) -> tuple[dict[int, object], int]:
    """One pass over every frame from the start; returns ``convert(frame)`` of the wanted frames and the number of
    frames decoded."""
    found: dict[int, np.ndarray] = {}
    count = 0
    with av.open(source) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for count, frame in enumerate(container.decode(stream), start=1):
            if count - 1 in wanted:
                found[count - 1] = convert(frame)
    return found, count


def decode_video(
    source: str | os.PathLike, sample_indices_fn: Callable | None = None, frame_transform: Callable | None = None
) -> tuple[list, VideoMetadata]:
    """Decode the frames chosen by ``sample_indices_fn(metadata=VideoMetadata)`` (all frames when it is ``None``).

    Returns ``(frames, metadata)``: a list of ``(H, W, 3)`` uint8 arrays in the order of the sampled indices (repeated
    indices share one array) and the video's ``VideoMetadata`` with ``frames_indices`` set. ``frame_transform``, if
    given, is applied to each decoded frame right away (e.g. resize it), so that only one full-size frame is held in
    memory at a time; the list then holds its results. Raises
    ``VideoDecodeError`` for a missing, empty, truncated or non-video file, a file without a video stream, or a codec
    that cannot be decoded.
    """
    if not is_av_available():
        raise ImportError("Decoding video files needs PyAV: `pip install av`.")
    source = os.fspath(source)
    to_rgb = rgb_converter()
    convert = (lambda frame: frame_transform(to_rgb(frame))) if frame_transform else to_rgb
    if not _is_url(source):
        path = Path(source)
        if not path.is_file():
            raise VideoDecodeError(f"{source}: video file not found.")
        if path.stat().st_size == 0:
            raise VideoDecodeError(f"{source}: the file is empty.")
    try:
        container = av.open(source)
    except av.error.FFmpegError as error:
        raise VideoDecodeError(f"{source}: not a readable video file ({error}).") from None
    with container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise VideoDecodeError(f"{source}: the file has no video stream (streams: {', '.join(kinds)}).")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        codec = stream.codec_context.name
        index = _PacketIndex(container, stream, source)
        if index.total_frames == 0:
            raise VideoDecodeError(f"{source}: the video stream contains no frames (empty or truncated file).")
        fps = _video_fps(stream, index)
        size = (stream.codec_context.width or None, stream.codec_context.height or None)
        metadata = _metadata(size, index.total_frames, fps)
        indices = _choose(sample_indices_fn, metadata)
        wanted = sorted(set(indices))
        found: dict[int, np.ndarray] = {}
        if index.has_timestamps:
            try:
                found = _decode_by_seeking(container, stream, index, wanted, convert)
            except av.error.FFmpegError as error:
                if "seek" not in str(error).lower():
                    raise VideoDecodeError(f"{source}: cannot decode the {codec!r} video stream ({error}).") from None
                logger.info("Seeking failed in %s (%s); decoding sequentially.", source, error)
                found = {}
    if len(found) < len(wanted):
        try:
            found, decoded = _decode_sequentially(source, set(wanted), convert)
        except av.error.FFmpegError as error:
            raise VideoDecodeError(f"{source}: cannot decode the {codec!r} video stream ({error}).") from None
        if decoded == 0:
            raise VideoDecodeError(f"{source}: no frame of the {codec!r} video stream could be decoded.")
        if len(found) < len(wanted):
            # The container announced more frames than it holds (broken index or truncated file): sample again
            # from the frames that really exist.
            logger.warning(
                "%s: %d frames announced, %d decodable; sampling again.", source, index.total_frames, decoded
            )
            metadata = _metadata(size, decoded, fps)
            indices = _choose(sample_indices_fn, metadata)
            found, _ = _decode_sequentially(source, set(indices), convert)
    metadata.frames_indices = list(indices)
    return [found[i] for i in indices], metadata


def _metadata(size: tuple, total_frames: int, fps: float | None) -> VideoMetadata:
    return VideoMetadata(
        total_num_frames=total_frames,
        fps=fps,
        width=size[0],
        height=size[1],
        duration=total_frames / fps if fps else None,
        video_backend="pyav",
    )


def _choose(sample_indices_fn: Callable | None, metadata: VideoMetadata) -> list[int]:
    if sample_indices_fn is None:
        return list(range(metadata.total_num_frames))
    indices = [int(i) for i in sample_indices_fn(metadata=metadata)]
    if not indices or min(indices) < 0 or max(indices) >= metadata.total_num_frames:
        raise ValueError(
            f"Frame sampling returned indices {indices} for a video of {metadata.total_num_frames} frames."
        )
    return indices


__all__ = ["VideoDecodeError", "decode_video"]
