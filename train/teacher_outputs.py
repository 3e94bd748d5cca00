"""What every distillation teacher returns, and how its frames become per-frame targets for the loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .distillation import valid_patch_mask


@dataclass
class TeacherFeatures:
    """Patch features ``(videos, frames, gh * gw, D)`` (no class/register tokens) on a ``grid = (gh, gw)`` grid."""

    features: torch.Tensor
    grid: tuple[int, int]
    patch_size: int


def frames_of_videos(tensor: torch.Tensor, frames_per_video: torch.Tensor | list[int] | None) -> torch.Tensor:
    """``(videos, T_max, ...)`` -> ``(sum frames, ...)``: the first ``frames_per_video[v]`` frames of each video."""
    if frames_per_video is None:
        return tensor.flatten(0, 1)
    counts = [int(n) for n in (frames_per_video.tolist() if torch.is_tensor(frames_per_video) else frames_per_video)]
    if len(counts) != tensor.shape[0]:
        raise ValueError(f"{len(counts)} frame counts for {tensor.shape[0]} videos.")
    if any(n < 1 or n > tensor.shape[1] for n in counts):
        raise ValueError(f"frame counts {counts} must be between 1 and {tensor.shape[1]}.")
    return torch.cat([tensor[v, :n] for v, n in enumerate(counts)])


def teacher_patch_mask(teacher_pixel_values: torch.Tensor, patch_size: int, grid: tuple[int, int]) -> torch.Tensor:
    """Valid teacher patches ``(videos, frames, gh, gw)`` from the mask channel of ``(videos, frames, 4, S, S)``.

    Without a mask channel every patch is valid. When the teacher's patch grid does not tile the frame exactly the
    mask is resized to the grid first (nearest), e.g. SigLIP patch 16 on 224 px.
    """
    videos, frames = teacher_pixel_values.shape[:2]
    if teacher_pixel_values.shape[2] < 4:
        return torch.ones(videos, frames, *grid, dtype=torch.bool, device=teacher_pixel_values.device)
    mask = teacher_pixel_values[:, :, 3]
    if mask.shape[-2] != grid[0] * patch_size or mask.shape[-1] != grid[1] * patch_size:
        mask = torch.nn.functional.interpolate(
            mask.flatten(0, 1).unsqueeze(1).float(), size=(grid[0] * patch_size, grid[1] * patch_size), mode="nearest"
        ).reshape(videos, frames, grid[0] * patch_size, grid[1] * patch_size)
    return valid_patch_mask(mask, patch_size)


__all__ = ["TeacherFeatures", "frames_of_videos", "teacher_patch_mask"]
