"""Video processor of Video-Panda: video files, arrays or images in, the model's 4-channel frames out.

Each video is decoded with PyAV (only the sampled frames; see ``video_decoding_videopanda``), sampled with the
original rule by default (``frame_sampling_videopanda``), and every frame is resized, padded to a square and given a
validity-mask channel exactly as the original preprocessing (``frame_geometry_videopanda``). Frames are processed one
at a time, so 4K inputs cost 8 decoded frames of memory, never a decoded clip.
"""

import copy
import logging
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import PILImageResampling, SizeDict, validate_kwargs
from transformers.processing_utils import Unpack, VideosKwargs
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import VideoMetadata

from .frame_geometry_videopanda import (
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    model_layout,
    normalize_with_mask,
    resize_and_pad,
    teacher_layout,
    valid_token_grid,
)
from .frame_sampling_videopanda import SAMPLING_MODES, SHORT_VIDEO_PADDING, sample_frame_indices
from .video_decoding_videopanda import VideoDecodeError, decode_video

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


class VideoPandaVideoProcessorKwargs(VideosKwargs, total=False):
    """Video-Panda options on top of transformers' ``VideosKwargs``.

    frame_sampling: ``"original"`` (default, the released model's rule), ``"uniform"`` (transformers' ``num_frames``
        rule) or ``"fps"`` (transformers' ``fps`` rule; passing ``fps`` selects it too).
    short_video_padding: ``"zeros"`` (default: the original's all-zero frames up to ``num_frames``) or ``"repeat"``.
    return_teacher_inputs: also return ``teacher_pixel_values_videos`` at half size for distillation.
    do_augment: random horizontal flip of each video, pixels and mask together (training only; never by default).
    patch_size / downsample_window / padded_frame_crop: the model's token grid, used for ``video_grids``.
    """

    frame_sampling: str
    short_video_padding: str
    return_teacher_inputs: bool
    do_augment: bool
    patch_size: int
    downsample_window: int
    padded_frame_crop: int


class VideoPandaVideoProcessor(BaseVideoProcessor):
    r"""
    Turns videos (paths, URLs, ``(T, H, W, C)`` / ``(T, C, H, W)`` arrays or tensors, lists of frames) and images
    (PIL images, ``(H, W, C)`` arrays, image files) into Video-Panda inputs.

    Outputs:
        pixel_values_videos: float32 ``(num_videos, T_max, 4, S, S)``, ``S = size["height"]`` (448); channels 0-2
            CLIP-normalised RGB, channel 3 the validity mask. Videos shorter than ``T_max`` are padded with all-zero
            frames.
        video_grids: long ``(num_videos, 3)`` = (frames, grid_h, grid_w): frames belonging to the video (the
            original's zero padding frames included), and the LSD token grid of its valid frames.
        teacher_pixel_values_videos: float32 ``(num_videos, T_max, 4, S/2, S/2)`` with ``return_teacher_inputs=True``.

    Frame sampling (``frame_sampling="original"``): the original loader's 1-fps positions thinned to ``num_frames``
    (see ``original_frame_indices``); clips with fewer frames keep all of them and get all-zero frames up to
    ``num_frames`` (``short_video_padding="zeros"``, what the released weights saw) or repeated frames
    (``"repeat"``). A single frame (an image, or a 1-frame video, where the original crashed) stays one frame and
    takes the model's image path. Without a known frame rate (arrays without ``video_metadata``, broken
    timestamps) the 1-fps step is one frame.
    """

    valid_kwargs = VideoPandaVideoProcessorKwargs
    model_input_names = ["pixel_values_videos", "video_grids"]

    resample = PILImageResampling.BICUBIC
    image_mean = OPENAI_CLIP_MEAN
    image_std = OPENAI_CLIP_STD
    size = {"height": 448, "width": 448}
    do_resize = True
    do_rescale = True
    do_normalize = True
    do_convert_rgb = True
    do_sample_frames = True
    num_frames = 8
    fps = None
    frame_sampling = "original"
    short_video_padding = "zeros"
    return_teacher_inputs = False
    do_augment = False
    patch_size = 14
    downsample_window = 2
    padded_frame_crop = 16

    def __init__(self, **kwargs: Unpack[VideoPandaVideoProcessorKwargs]):
        super().__init__(**kwargs)
        self._check_options(
            self.size, self.frame_sampling, self.short_video_padding, self.patch_size, self.downsample_window
        )

    @staticmethod
    def _check_options(size, frame_sampling, short_video_padding, patch_size, downsample_window) -> int:
        """Validate the options that define the geometry and sampling; returns the square side ``S``."""
        height, width = (size.height, size.width) if isinstance(size, SizeDict) else (size["height"], size["width"])
        if height != width:
            raise ValueError(f"Video-Panda frames are square: size must have height == width, got {height}x{width}.")
        if height % (2 * patch_size) or height % (patch_size * downsample_window):
            raise ValueError(
                f"size ({height}) must be a multiple of 2 * patch_size ({2 * patch_size}; the layout is computed in "
                f"whole patches at half size) and of patch_size * downsample_window ({patch_size * downsample_window})."
            )
        if frame_sampling not in SAMPLING_MODES:
            raise ValueError(f"frame_sampling must be one of {SAMPLING_MODES}, got {frame_sampling!r}.")
        if short_video_padding not in SHORT_VIDEO_PADDING:
            raise ValueError(f"short_video_padding must be one of {SHORT_VIDEO_PADDING}, got {short_video_padding!r}.")
        return height

    # ----------------------------------------------------------------------------------------------- sampling
    def sample_frames(
        self,
        metadata: VideoMetadata,
        num_frames: int | None = None,
        fps: float | None = None,
        frame_sampling: str | None = None,
        short_video_padding: str | None = None,
        **kwargs,
    ) -> list[int]:
        """Indices of the frames to keep (see ``sample_frame_indices``); zero padding is added later."""
        return sample_frame_indices(
            total_frames=metadata.total_num_frames,
            video_fps=metadata.fps,
            frame_sampling=frame_sampling or self.frame_sampling,
            num_frames=num_frames if num_frames is not None else self.num_frames,
            fps=fps,
            short_video_padding=short_video_padding or self.short_video_padding,
        )

    # ----------------------------------------------------------------------------------------------- decoding
    def fetch_videos(self, video_url_or_urls, sample_indices_fn=None):
        """Decode paths/URLs with PyAV, only the sampled frames: ``(frames (T, H, W, 3) uint8, VideoMetadata)``.

        A list gives ``(list of frames, list of metadata)``. Raises ``VideoDecodeError`` (a ``ValueError``) naming
        the file and the problem.
        """
        if isinstance(video_url_or_urls, (list, tuple)):
            return tuple(map(list, zip(*[self.fetch_videos(x, sample_indices_fn) for x in video_url_or_urls])))
        frames, metadata = decode_video(video_url_or_urls, sample_indices_fn=sample_indices_fn)
        return np.stack(frames), metadata

    # ----------------------------------------------------------------------------------------------- preprocess
    def preprocess(self, videos, **kwargs: Unpack[VideoPandaVideoProcessorKwargs]) -> BatchFeature:
        """Decode, sample, resize/pad/mask and normalise a batch of videos or images (see the class docstring)."""
        validate_kwargs(
            captured_kwargs=kwargs.keys(),
            valid_processor_keys=list(self.valid_kwargs.__annotations__.keys()) + ["return_tensors"],
        )
        for name in self.valid_kwargs.__annotations__:
            kwargs.setdefault(name, getattr(self, name, None))
        kwargs = self._standardize_kwargs(**kwargs)
        side = self._check_options(
            kwargs["size"],
            kwargs["frame_sampling"],
            kwargs["short_video_padding"],
            kwargs["patch_size"],
            kwargs["downsample_window"],
        )
        if kwargs["fps"] is not None and kwargs["frame_sampling"] != "fps":
            kwargs["frame_sampling"] = "fps"
        if kwargs["do_sample_frames"]:
            sample_frame_indices(  # fail early on bad sampling arguments, before decoding anything
                100, 25.0, kwargs["frame_sampling"], kwargs["num_frames"], kwargs["fps"], kwargs["short_video_padding"]
            )

        items = _flatten_inputs(videos)
        if not items:
            raise ValueError("No video or image was given to the video processor.")
        user_metadata = _as_metadata_list(kwargs["video_metadata"], len(items))

        def sample(metadata):
            return self.sample_frames(
                metadata,
                num_frames=kwargs["num_frames"],
                fps=kwargs["fps"],
                frame_sampling=kwargs["frame_sampling"],
                short_video_padding=kwargs["short_video_padding"],
            )

        sample_fn = sample if kwargs["do_sample_frames"] else None

        def process_frame(frame: np.ndarray):
            return self._process_frame(frame, side, kwargs)

        pixel_values, teacher_values, grids, all_metadata = [], [], [], []
        for (kind, value), metadata in zip(items, user_metadata):
            frames, metadata = self._load_item(
                kind, value, metadata, sample_fn, kwargs["do_convert_rgb"], process_frame
            )
            num_zero = 0
            padded = kwargs["do_sample_frames"] and kwargs["frame_sampling"] != "fps"
            if len(frames) > 1 and padded and kwargs["short_video_padding"] == "zeros":
                num_zero = max(0, kwargs["num_frames"] - len(frames))
            student, teacher = self._assemble(frames, num_zero, side, kwargs)
            grids.append(self._video_grid(student, kwargs))
            pixel_values.append(student)
            teacher_values.append(teacher)
            all_metadata.append(metadata)

        data = {
            "pixel_values_videos": _stack_padded(pixel_values),
            "video_grids": torch.tensor(grids, dtype=torch.long),
        }
        if kwargs["return_teacher_inputs"]:
            data["teacher_pixel_values_videos"] = _stack_padded(teacher_values)
        if kwargs["device"] is not None:
            data = {k: v.to(kwargs["device"]) for k, v in data.items()}
        if kwargs["return_metadata"]:
            data["video_metadata"] = all_metadata
        return BatchFeature(data=data, tensor_type=kwargs["return_tensors"], skip_tensor_conversion=["video_metadata"])

    def _load_item(self, kind, value, metadata, sample_fn, do_convert_rgb, process_frame):
        """One input -> (list of processed frames, VideoMetadata). Video files are processed frame by frame while
        decoding, so that only one full-size frame is in memory at a time."""
        if kind == "path":
            source = os.fspath(value)
            if source.lower().endswith(IMAGE_EXTENSIONS):
                metadata = VideoMetadata(total_num_frames=1, frames_indices=[0])
                return [process_frame(_load_image_file(source))], metadata
            return decode_video(source, sample_indices_fn=sample_fn, frame_transform=process_frame)
        # A copy: the caller's metadata must not be changed by sampling.
        metadata = VideoMetadata(total_num_frames=len(value)) if metadata is None else copy.copy(metadata)
        metadata.total_num_frames = len(value)
        indices = list(range(len(value)))
        if sample_fn is not None and kind == "frames":
            indices = [int(i) for i in sample_fn(metadata=metadata)]
        metadata.frames_indices = indices
        done = {i: process_frame(_to_uint8_rgb(value[i], do_convert_rgb)) for i in sorted(set(indices))}
        return [done[i] for i in indices], metadata

    def _process_frame(self, frame: np.ndarray, side: int, kwargs) -> tuple:
        """``(H, W, 3)`` uint8 -> the padded model frame ``(S, S, 3)`` uint8 and its mask, plus the same at half
        size for the teacher if asked. Normalisation happens once per video in ``_assemble``."""
        resample = int(kwargs["resample"] if kwargs["resample"] is not None else PILImageResampling.BICUBIC)
        height, width = frame.shape[:2]
        layout = model_layout(width, height, side, kwargs["patch_size"])
        student = (resize_and_pad(frame, layout, resample), layout.mask())
        teacher = None
        if kwargs["return_teacher_inputs"]:
            layout = teacher_layout(width, height, side, kwargs["patch_size"])
            teacher = (resize_and_pad(frame, layout, resample), layout.mask())
        return student, teacher

    @staticmethod
    def _assemble(frames, num_zero: int, side: int, kwargs):
        """Normalise the video's frames in one go, append ``num_zero`` all-zero frames, flip if augmenting."""
        mean = kwargs["image_mean"] if kwargs["do_normalize"] else (0.0, 0.0, 0.0)
        std = kwargs["image_std"] if kwargs["do_normalize"] else (1.0, 1.0, 1.0)

        def stack(pairs, canvas):
            video = torch.zeros(len(pairs) + num_zero, 4, canvas, canvas)
            pixels = np.stack([padded for padded, _ in pairs])
            masks = np.stack([mask for _, mask in pairs])
            video[: len(pairs)] = normalize_with_mask(pixels, masks, mean, std)
            return video

        student = stack([s for s, _ in frames], side)
        teacher = stack([t for _, t in frames], side // 2) if kwargs["return_teacher_inputs"] else None
        if kwargs["do_augment"] and bool(torch.rand(()) < 0.5):
            student = student.flip(-1)
            teacher = teacher.flip(-1) if teacher is not None else None
        return student, teacher

    @staticmethod
    def _video_grid(student: torch.Tensor, kwargs) -> list[int]:
        """(frames, grid_h, grid_w) with the grid of the first frame (a real frame; all real frames share the
        layout unless a list of differently sized frames was given)."""
        grid_h, grid_w = valid_token_grid(
            student[0, 3], kwargs["patch_size"], kwargs["downsample_window"], kwargs["padded_frame_crop"]
        )
        return [student.shape[0], grid_h, grid_w]


def _flatten_inputs(videos) -> list[tuple[str, object]]:
    """Flatten any nesting of inputs into ``("path" | "frames" | "image", value)`` items in order of appearance.

    A list whose elements are all frames (PIL images or 3-D arrays) is ONE video; any other list is a batch.
    """
    if videos is None:
        return []
    if isinstance(videos, (str, Path)):
        return [("path", videos)]
    if isinstance(videos, Image.Image):
        return [("image", [videos])]
    if isinstance(videos, (np.ndarray, torch.Tensor)):
        if videos.ndim == 3:
            return [("image", [videos])]
        if videos.ndim == 4:
            return [("frames", list(videos))]
        if videos.ndim == 5:
            return [("frames", list(video)) for video in videos]
        raise ValueError(f"A video array must have 3 (image), 4 (video) or 5 (batch) dimensions, got {videos.shape}.")
    if isinstance(videos, (list, tuple)):
        if videos and all(_is_frame(v) for v in videos):
            return [("frames", list(videos))]
        items = []
        for video in videos:
            items.extend(_flatten_inputs(video))
        return items
    if isinstance(videos, VideoMetadata):
        raise ValueError("Video metadata was passed where a video was expected.")
    raise ValueError(
        f"Unsupported video input of type {type(videos).__name__}: pass a path or URL, an array/tensor of frames, "
        "a list of PIL images or an image."
    )


def _is_frame(value) -> bool:
    return isinstance(value, Image.Image) or (isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 3)


def _as_metadata_list(video_metadata, count: int) -> list:
    if video_metadata is None:
        return [None] * count
    if isinstance(video_metadata, (dict, VideoMetadata)):
        video_metadata = [video_metadata]
    flat = []
    for entry in video_metadata:
        if isinstance(entry, (list, tuple)):
            flat.extend(entry)
        else:
            flat.append(entry)
    if len(flat) != count:
        raise ValueError(f"Got {len(flat)} video_metadata entries for {count} videos.")
    return [VideoMetadata(**m) if isinstance(m, dict) else m for m in flat]


def _to_uint8_rgb(frame, do_convert_rgb: bool = True) -> np.ndarray:
    """A frame (PIL, ``HWC`` or ``CHW`` array/tensor, uint8 or float in [0, 1] or [0, 255]) -> ``(H, W, 3)`` uint8."""
    if isinstance(frame, Image.Image):
        return np.asarray(frame.convert("RGB"), dtype=np.uint8)
    if isinstance(frame, torch.Tensor):
        frame = frame.detach().cpu().numpy()
    frame = np.asarray(frame)
    if frame.ndim != 3:
        raise ValueError(f"A frame must have 3 dimensions (H, W, C) or (C, H, W), got shape {frame.shape}.")
    if frame.shape[-1] not in (1, 3, 4) and frame.shape[0] in (1, 3, 4):
        frame = frame.transpose(1, 2, 0)
    if frame.shape[-1] not in (1, 3, 4):
        raise ValueError(f"Cannot find the colour channel of a frame of shape {frame.shape}.")
    if frame.dtype != np.uint8:
        frame = frame.astype(np.float32)
        if frame.size and frame.max() <= 1.0:
            frame = frame * 255.0
        frame = np.clip(np.round(frame), 0, 255).astype(np.uint8)
    if frame.shape[-1] == 1:
        frame = np.repeat(frame, 3, axis=-1)
    elif frame.shape[-1] == 4:
        frame = frame[..., :3]
    return np.ascontiguousarray(frame)


def _load_image_file(path: str) -> np.ndarray:
    if not Path(path).is_file():
        raise VideoDecodeError(f"{path}: image file not found.")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except OSError as error:
        raise VideoDecodeError(f"{path}: not a readable image ({error}).") from None


def _stack_padded(videos: list[torch.Tensor]) -> torch.Tensor:
    """Stack ``(T_i, C, H, W)`` videos to ``(V, T_max, C, H, W)``, padding with all-zero frames."""
    longest = max(video.shape[0] for video in videos)
    out = videos[0].new_zeros((len(videos), longest, *videos[0].shape[1:]))
    for i, video in enumerate(videos):
        out[i, : video.shape[0]] = video
    return out


# Saved processors carry this file as remote code (auto_map), see docs/hub.md.
VideoPandaVideoProcessor.register_for_auto_class("AutoVideoProcessor")

__all__ = ["VideoDecodeError", "VideoPandaVideoProcessor", "VideoPandaVideoProcessorKwargs"]
