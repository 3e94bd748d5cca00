"""Resize, pad and mask one frame the way the original Video-Panda preprocessing does.

The original computes the layout at "teacher" scale (half the model input, 224 for 448) in whole patches, then doubles
it for the model input. Reproducing that arithmetic exactly matters: the valid band decides how many visual tokens a
frame gets, and the released weights only ever saw these layouts.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

# OpenAI CLIP statistics and the padding colour int(255 * mean) used by the original.
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
BACKGROUND_RGB = tuple(int(255 * m) for m in OPENAI_CLIP_MEAN)  # (122, 116, 104)


@dataclass(frozen=True)
class FrameLayout:
    """Where the resized frame sits on the square canvas.

    ``new_width``/``new_height``: size of the resized content; ``pre``/``valid``/``post``: padding before, content
    extent and padding after along the padded axis; ``axis``: ``"rows"`` (landscape: content is a band of rows),
    ``"cols"`` (portrait) or ``None`` (square content, no padding); ``canvas``: side of the square.
    """

    new_width: int
    new_height: int
    pre: int
    valid: int
    post: int
    axis: str | None
    canvas: int

    def as_list(self) -> list[int]:
        """``[new_width, new_height, pre_size, val_size, post_size]`` as in the original (and the fixtures)."""
        return [self.new_width, self.new_height, self.pre, self.valid, self.post]

    def mask(self) -> np.ndarray:
        """``(canvas, canvas)`` float32 validity mask: 1 on the content, 0 on the padding."""
        mask = np.zeros((self.canvas, self.canvas), dtype=np.float32)
        if self.axis is None:
            mask[:] = 1.0
        elif self.axis == "rows":
            mask[self.pre : self.pre + self.valid, :] = 1.0
        else:
            mask[:, self.pre : self.pre + self.valid] = 1.0
        return mask


def teacher_layout(width: int, height: int, image_size: int = 448, patch_size: int = 14) -> FrameLayout:
    """Layout at half the model input size ("basehw" in the original, 224 px and 16 patches of 14 at 448).

    The long side becomes ``image_size // 2``; the short side is rounded UP to whole patches
    (``ceil(half * short / long / patch)``, evaluated left to right as the original's float expression); the padding
    is split in whole patches with the extra patch AFTER the content. Square inputs take the portrait branch.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"Frame size must be positive, got {width}x{height}.")
    half = image_size // 2
    if half % patch_size or image_size % 2:
        raise ValueError(
            f"image_size ({image_size}) must be twice a multiple of patch_size ({patch_size}): the layout is computed "
            f"in whole patches at half size."
        )
    cells = half // patch_size
    if width > height:
        valid_patches = math.ceil(half * height / width / patch_size)
        new_width, new_height = half, patch_size * valid_patches
        axis = "rows"
    else:
        valid_patches = math.ceil(half * width / height / patch_size)
        new_width, new_height = patch_size * valid_patches, half
        axis = "cols"
    valid = patch_size * valid_patches
    pre = ((cells - valid_patches) // 2) * patch_size
    post = half - pre - valid
    if new_width == new_height:
        axis = None
    return FrameLayout(new_width, new_height, pre, valid, post, axis, half)


def model_layout(width: int, height: int, image_size: int = 448, patch_size: int = 14) -> FrameLayout:
    """Layout of the model input ("needhw"): the teacher layout doubled, on an ``image_size`` canvas."""
    base = teacher_layout(width, height, image_size, patch_size)
    return FrameLayout(
        2 * base.new_width, 2 * base.new_height, 2 * base.pre, 2 * base.valid, 2 * base.post, base.axis, image_size
    )


def resize_and_pad(frame: np.ndarray, layout: FrameLayout, resample: int = Image.BICUBIC) -> np.ndarray:
    """``(H, W, 3)`` uint8 -> ``(canvas, canvas, 3)`` uint8: PIL resize (BICUBIC, antialiased, as the original's
    ``Image.resize`` default) then paste on a canvas of the CLIP-mean colour at the layout's offset."""
    image = Image.fromarray(frame).resize((layout.new_width, layout.new_height), resample=resample)
    if layout.axis is None:
        return np.asarray(image, dtype=np.uint8)
    canvas = Image.new("RGB", (layout.canvas, layout.canvas), BACKGROUND_RGB)
    offset = (0, layout.pre) if layout.axis == "rows" else (layout.pre, 0)
    canvas.paste(image, offset)
    return np.asarray(canvas, dtype=np.uint8)


def normalize_with_mask(
    padded: np.ndarray, mask: np.ndarray, mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD
) -> torch.Tensor:
    """``(..., S, S, 3)`` uint8 + ``(..., S, S)`` mask -> ``(..., 4, S, S)`` float32: ``(x / 255 - mean) / std`` (in
    float32, in that order, as the original) then the mask as channel 3. Works on one frame or a stack of frames."""
    pixels = torch.tensor(np.asarray(padded), dtype=torch.uint8).movedim(-1, -3)
    out = torch.empty(*pixels.shape[:-3], 4, *pixels.shape[-2:], dtype=torch.float32)
    rgb = out[..., :3, :, :]
    torch.div(pixels, 255.0, out=rgb)
    rgb.sub_(torch.tensor(mean, dtype=torch.float32).view(3, 1, 1))
    rgb.div_(torch.tensor(std, dtype=torch.float32).view(3, 1, 1))
    out[..., 3, :, :] = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    return out


def valid_token_grid(
    mask: np.ndarray | torch.Tensor, patch_size: int = 14, downsample_window: int = 2, padded_frame_crop: int = 16
) -> tuple[int, int]:
    """LSD grid ``(h, w)`` of one frame from its ``(S, S)`` validity mask, with the model's crop rule.

    Patches with any valid pixel count as valid; the crop is the bounding box of valid patches; an all-zero mask keeps
    the top-left ``padded_frame_crop`` patches (clipped to the grid). ``h, w`` are the crop in patches floored by the
    pooling window. The frame then takes ``1 + h * (w + 1)`` tokens.
    """
    mask = torch.as_tensor(mask)
    grid_h, grid_w = mask.shape[-2] // patch_size, mask.shape[-1] // patch_size
    patches = mask[: grid_h * patch_size, : grid_w * patch_size].reshape(grid_h, patch_size, grid_w, patch_size)
    valid = patches.amax(dim=(1, 3)) > 0
    if not bool(valid.any()):
        rows, cols = min(padded_frame_crop, grid_h), min(padded_frame_crop, grid_w)
    else:
        row_idx = torch.nonzero(valid.any(dim=1)).flatten()
        col_idx = torch.nonzero(valid.any(dim=0)).flatten()
        rows = int(row_idx[-1] - row_idx[0]) + 1
        cols = int(col_idx[-1] - col_idx[0]) + 1
    return rows // downsample_window, cols // downsample_window


def tokens_per_frame(grid_h: int, grid_w: int) -> int:
    """Class token plus ``grid_h`` rows of ``grid_w`` LSD tokens each closed by a ``<row>`` token."""
    return 1 + grid_h * (grid_w + 1)


__all__ = [
    "BACKGROUND_RGB",
    "OPENAI_CLIP_MEAN",
    "OPENAI_CLIP_STD",
    "FrameLayout",
    "model_layout",
    "normalize_with_mask",
    "resize_and_pad",
    "teacher_layout",
    "tokens_per_frame",
    "valid_token_grid",
]
