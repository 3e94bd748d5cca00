"""Any transformers vision backbone as a per-frame distillation teacher (CLIP, SigLIP, DINOv2; paper Table 10).

Frames arrive CLIP-normalised from the processor (the student's and LanguageBind's normalisation); a backbone that
was trained with other statistics (DINOv2: ImageNet) gets them re-normalised. Features are the hidden states of
``select_layer`` (penultimate by default) with the class and register tokens removed.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from .teacher_outputs import TeacherFeatures

logger = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class HFVisionTeacher(nn.Module):
    """Wraps a frozen ``CLIPVisionModel`` / ``SiglipVisionModel`` / ``Dinov2Model`` (or a model with ``vision_model``)."""

    def __init__(
        self,
        backbone: nn.Module,
        select_layer: int = -2,
        image_mean: tuple[float, float, float] = CLIP_MEAN,
        image_std: tuple[float, float, float] = CLIP_STD,
        frames_per_chunk: int = 64,
    ):
        super().__init__()
        if hasattr(backbone, "text_model"):  # a dual-tower CLIPModel / SiglipModel: keep the vision tower
            backbone = backbone.vision_model
        config = getattr(backbone, "config", None)
        if config is None or not hasattr(config, "patch_size") or not hasattr(config, "hidden_size"):
            raise ValueError("the teacher backbone needs a transformers config with patch_size and hidden_size.")
        self.backbone = backbone
        self.select_layer = select_layer
        self.frames_per_chunk = frames_per_chunk
        self.model_type = getattr(config, "model_type", "")
        self.register_buffer("_scale", torch.tensor(CLIP_STD) / torch.tensor(image_std), persistent=False)
        self.register_buffer(
            "_shift", (torch.tensor(CLIP_MEAN) - torch.tensor(image_mean)) / torch.tensor(image_std), persistent=False
        )
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def from_pretrained(cls, name_or_path: str, **kwargs) -> HFVisionTeacher:
        """Load with ``AutoModel`` (a local folder, or a Hub id already in the cache); DINOv2 gets ImageNet stats."""
        from transformers import AutoModel

        backbone = AutoModel.from_pretrained(name_or_path)
        if getattr(backbone.config, "model_type", "").startswith("dinov2"):
            kwargs.setdefault("image_mean", (0.485, 0.456, 0.406))
            kwargs.setdefault("image_std", (0.229, 0.224, 0.225))
        return cls(backbone, **kwargs)

    @property
    def hidden_size(self) -> int:
        return self.backbone.config.hidden_size

    @property
    def patch_size(self) -> int:
        return self.backbone.config.patch_size

    def train(self, mode: bool = True) -> HFVisionTeacher:
        return super().train(False)

    @torch.no_grad()
    def forward(self, pixel_values_videos: torch.Tensor) -> TeacherFeatures:
        """``(videos, frames, 3 or 4, H, W)`` CLIP-normalised -> ``(videos, frames, gh * gw, D)`` patch features."""
        if pixel_values_videos.ndim != 5:
            raise ValueError(f"expected (videos, frames, channels, H, W), got {tuple(pixel_values_videos.shape)}.")
        videos, frames, _, height, width = pixel_values_videos.shape
        patch = self.patch_size
        grid = (height // patch, width // patch)
        pixels = pixel_values_videos[:, :, :3].flatten(0, 1)
        pixels = pixels * self._scale.view(1, 3, 1, 1).to(pixels) + self._shift.view(1, 3, 1, 1).to(pixels)
        dtype = next(self.backbone.parameters()).dtype
        kwargs = {"output_hidden_states": True}
        configured = getattr(self.backbone.config, "image_size", None)
        if self.model_type != "dinov2" and configured not in (None, height):
            kwargs["interpolate_pos_encoding"] = True
        chunks = []
        for start in range(0, pixels.shape[0], self.frames_per_chunk):
            out = self.backbone(pixel_values=pixels[start : start + self.frames_per_chunk].to(dtype), **kwargs)
            hidden = out.hidden_states[self.select_layer]
            chunks.append(hidden[:, hidden.shape[1] - grid[0] * grid[1] :])  # drop class / register tokens
        features = torch.cat(chunks).reshape(videos, frames, grid[0] * grid[1], -1)
        return TeacherFeatures(features=features, grid=grid, patch_size=patch)


__all__ = ["CLIP_MEAN", "CLIP_STD", "HFVisionTeacher"]
