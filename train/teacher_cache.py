"""Precompute the teacher's features once into a `datasets` cache, so all three stages (and every epoch) reuse them.

The teacher is frozen, so its features for a given video never change; running a 300M-parameter ViT every step is
wasted work when the disk can hold the result. Cost to plan for: LanguageBind gives 8 frames x 256 patches x 1024
values per video, 4 MiB per sample in float16 (about 2.8 TB for Valley-702K), so this pays off for smaller datasets
or fast local disks. Frames and teacher-scale geometry come from the same video processor as training, so the
cached features line up with the student's frames.
"""

from __future__ import annotations

import logging

import torch
from datasets import Dataset

from .teacher_outputs import teacher_patch_mask

logger = logging.getLogger(__name__)


def precompute_teacher_features(
    dataset: Dataset,
    video_processor,
    teacher: torch.nn.Module,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float16,
    cache_dir: str | None = None,
) -> Dataset:
    """Add ``teacher_features`` ``(T, gh*gw, D)`` and ``teacher_patch_mask`` ``(T, gh, gw)`` columns to ``dataset``.

    ``dataset`` is the output of `build_dataset` (a ``video`` column of resolved paths). With ``cache_dir`` the
    result is saved with `Dataset.save_to_disk` and can be reloaded with `datasets.load_from_disk` by later stages.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    teacher = teacher.to(device)

    def encode(batch):
        if any(video is None for video in batch["video"]):
            raise ValueError("precompute_teacher_features needs a video for every sample.")
        inputs = video_processor(videos=list(batch["video"]), return_teacher_inputs=True, return_tensors="pt")
        pixels = inputs["teacher_pixel_values_videos"]
        out = teacher(pixels.to(device, next(teacher.parameters()).dtype))
        mask = teacher_patch_mask(pixels, out.patch_size, out.grid)
        return {"teacher_features": out.features.to(dtype).cpu().numpy(), "teacher_patch_mask": mask.numpy()}

    cached = dataset.map(encode, batched=True, batch_size=batch_size, desc="teacher features")
    if cache_dir is not None:
        cached.save_to_disk(cache_dir)
        logger.info("Saved %d samples with teacher features to %s.", len(cached), cache_dir)
    return cached


def stack_cached_teacher_features(examples: list[dict], num_frames: int) -> dict[str, torch.Tensor]:
    """Batch the cached columns as ``(videos, T, N, D)`` / ``(videos, T, gh, gw)``; T must match the student's."""
    features = torch.stack([torch.as_tensor(e["teacher_features"]) for e in examples])
    mask = torch.stack([torch.as_tensor(e["teacher_patch_mask"], dtype=torch.bool) for e in examples])
    if features.shape[1] != num_frames:
        raise ValueError(
            f"cached teacher features have {features.shape[1]} frames per video but the batch has {num_frames}; "
            "recompute the cache with the same video processor settings."
        )
    return {"teacher_features": features, "teacher_patch_mask": mask}


__all__ = ["precompute_teacher_features", "stack_cached_teacher_features"]
