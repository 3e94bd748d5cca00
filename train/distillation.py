"""The visual distillation head and loss of Video-Panda (paper Sec. 3.2, Eq. 19; Table 5 variants).

Training-only: the model never builds or imports this. The head reads the LLM hidden states at the visual-token
positions of every ``layer_stride``-th layer counted down from the last one (33 hidden states of a 32-layer LLM give
layers 32, 28, ..., 0), projects each with LayerNorm + Linear to the teacher width, fuses them with a parameter-free
single-query cross-attention whose query is the input projection of the last layer, and applies an output projection.
Class tokens and ``<row>`` tokens are removed, so only the ``h x w`` LSD patch tokens of each frame are compared with
the teacher's valid patches (average-pooled to the student grid where the grids differ).

The loss is computed per frame (mean over its patch tokens) and returned as a *sum over frames* together with the
number of frames, so that the trainer can normalise by the frame count of the whole accumulated, multi-process batch
(exact under gradient accumulation and data parallelism). Frames whose teacher mask is all zero (the original's
zero-padding frames) carry no target: they add an exact zero that still touches the head's parameters (the
original's "zero loss for padded frames" trick that keeps DeepSpeed ZeRO-3 and DDP in step) and do not count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

LOSS_TYPES = ("cosine", "mse", "none")


def select_student_layers(num_hidden_layers: int, layer_stride: int = 4) -> list[int]:
    """Indices into ``hidden_states`` (length ``num_hidden_layers + 1``): last layer first, then every stride down."""
    if num_hidden_layers < 1 or layer_stride < 1:
        raise ValueError(f"num_hidden_layers ({num_hidden_layers}) and layer_stride ({layer_stride}) must be >= 1.")
    return list(range(num_hidden_layers, -1, -layer_stride))


def patch_token_positions(frame_grids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Offsets of the LSD patch tokens inside the concatenated visual tokens, and the frame of each.

    A frame with grid ``(h, w)`` is laid out as ``[class, h rows of (w patch tokens, <row>)]``, i.e. ``1 + h*(w+1)``
    tokens; the class token and the ``<row>`` tokens are skipped.
    """
    if frame_grids.ndim != 2 or frame_grids.shape[-1] != 2:
        raise ValueError(f"frame_grids must have shape (frames, 2), got {tuple(frame_grids.shape)}.")
    grids = frame_grids.tolist()
    positions, frame_index, start = [], [], 0
    for frame, (h, w) in enumerate(grids):
        rows = torch.arange(h).unsqueeze(1) * (w + 1)
        cols = torch.arange(w).unsqueeze(0)
        positions.append((start + 1 + rows + cols).reshape(-1))
        frame_index.append(torch.full((h * w,), frame, dtype=torch.long))
        start += 1 + h * (w + 1)
    if not positions:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty
    return torch.cat(positions), torch.cat(frame_index)


def valid_patch_mask(mask: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Patch validity from a pixel mask ``(..., H, W)``: any partly valid patch counts (``avg_pool2d > 0``)."""
    lead = mask.shape[:-2]
    pooled = F.avg_pool2d(mask.reshape(-1, 1, *mask.shape[-2:]).float(), patch_size)
    return (pooled > 0).reshape(*lead, *pooled.shape[-2:])


def teacher_targets(
    teacher_features: torch.Tensor,
    teacher_patch_mask: torch.Tensor,
    frame_grids: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame teacher targets laid out like the student patch tokens.

    Args:
        teacher_features: ``(frames, gh * gw, D)`` patch features of the teacher (class token already removed).
        teacher_patch_mask: ``(frames, gh, gw)`` bool, valid teacher patches.
        frame_grids: ``(frames, 2)`` the student LSD grid ``(h, w)`` of each frame.

    Returns:
        ``targets`` ``(sum h*w, D)`` in student patch-token order (zeros for frames without a target) and
        ``has_target`` ``(frames,)`` bool: False for frames whose teacher mask is all zero.

    The valid region is the bounding box of the valid patches; it is average-pooled to ``(h, w)`` when the grids
    differ (e.g. a teacher with another patch size, or odd crops that the student floors).
    """
    frames, gh, gw = teacher_patch_mask.shape
    if teacher_features.shape[:2] != (frames, gh * gw):
        raise ValueError(
            f"teacher_features {tuple(teacher_features.shape)} do not match the teacher patch grid "
            f"({frames} frames of {gh}x{gw} patches)."
        )
    if frame_grids.shape[0] != frames:
        raise ValueError(f"{frame_grids.shape[0]} student frames but {frames} teacher frames.")
    dim = teacher_features.shape[-1]
    grid_features = teacher_features.reshape(frames, gh, gw, dim)
    targets, has_target = [], []
    for frame, (h, w) in enumerate(frame_grids.tolist()):
        valid = teacher_patch_mask[frame]
        if not bool(valid.any()) or h * w == 0:
            targets.append(teacher_features.new_zeros(h * w, dim))
            has_target.append(False)
            continue
        rows = valid.any(dim=1).nonzero().squeeze(1)
        cols = valid.any(dim=0).nonzero().squeeze(1)
        crop = grid_features[frame, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        if crop.shape[:2] != (h, w):
            crop = F.adaptive_avg_pool2d(crop.permute(2, 0, 1).float(), (h, w)).permute(1, 2, 0).to(crop.dtype)
        targets.append(crop.reshape(h * w, dim))
        has_target.append(True)
    return torch.cat(targets), torch.tensor(has_target, dtype=torch.bool, device=teacher_features.device)


def per_frame_loss(
    prediction: torch.Tensor, target: torch.Tensor, frame_index: torch.Tensor, num_frames: int, loss_type: str
) -> torch.Tensor:
    """Mean over each frame's patch tokens of ``1 - cos`` (``"cosine"``) or of the squared error (``"mse"``)."""
    if loss_type == "cosine":
        token_loss = 1 - F.cosine_similarity(prediction.float(), target.float(), dim=-1, eps=1e-8)
    elif loss_type == "mse":
        token_loss = (prediction.float() - target.float()).pow(2).mean(dim=-1)
    else:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES[:2]} here, got {loss_type!r}.")
    sums = token_loss.new_zeros(num_frames).index_add(0, frame_index, token_loss)
    counts = token_loss.new_zeros(num_frames).index_add(0, frame_index, torch.ones_like(token_loss))
    return sums / counts.clamp(min=1)


@dataclass
class DistillationOutput:
    """``loss_sum`` over frames with a target (plus a zero that reaches every head parameter) and their count."""

    loss_sum: torch.Tensor
    num_frames: int
    frame_losses: torch.Tensor


class DistillationHead(nn.Module):
    """Fuses multi-layer LLM hidden states at the visual tokens into teacher-space predictions (training only)."""

    def __init__(
        self,
        llm_hidden_size: int,
        teacher_hidden_size: int,
        num_hidden_layers: int,
        layer_stride: int = 4,
        loss_type: str = "cosine",
        layer_norm_eps: float = 1e-5,
    ):
        super().__init__()
        if loss_type not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}.")
        self.loss_type = loss_type
        self.layers = select_student_layers(num_hidden_layers, layer_stride)
        self.layer_projections = nn.ModuleList(
            nn.Sequential(
                nn.LayerNorm(llm_hidden_size, eps=layer_norm_eps),
                nn.Linear(llm_hidden_size, teacher_hidden_size, bias=False),
            )
            for _ in self.layers
        )
        self.query_projection = nn.Linear(llm_hidden_size, teacher_hidden_size)
        self.output_projection = nn.Linear(teacher_hidden_size, teacher_hidden_size)

    def fuse(self, layer_states: Sequence[torch.Tensor]) -> torch.Tensor:
        """``layer_states[k]`` ``(M, H)`` for ``self.layers[k]`` (last layer first) -> predictions ``(M, D)``."""
        if len(layer_states) != len(self.layers):
            raise ValueError(f"expected {len(self.layers)} layer states, got {len(layer_states)}.")
        dtype = self.query_projection.weight.dtype
        keys = torch.stack([proj(h.to(dtype)) for proj, h in zip(self.layer_projections, layer_states)], dim=1)
        query = self.query_projection(layer_states[0].to(dtype))
        scores = torch.einsum("md,mkd->mk", query, keys) / math.sqrt(keys.shape[-1])
        fused = torch.einsum("mk,mkd->md", scores.softmax(dim=-1), keys)
        return self.output_projection(fused)

    def _zero_touching_parameters(self) -> torch.Tensor:
        return sum(p.sum() for p in self.parameters()) * 0.0

    def forward(
        self,
        hidden_states: Sequence[torch.Tensor],
        visual_token_mask: torch.Tensor,
        frame_grids: torch.Tensor,
        teacher_features: torch.Tensor,
        teacher_patch_mask: torch.Tensor,
    ) -> DistillationOutput:
        """Distillation loss of one micro-batch.

        Args:
            hidden_states: all LLM hidden states ``(B, S, H)`` (embeddings first, as returned by transformers).
            visual_token_mask: ``(B, S)`` bool, True at the ``<video>`` placeholder positions.
            frame_grids: ``(frames, 2)`` LSD grid of every frame, in the order of the visual tokens.
            teacher_features: ``(frames, gh * gw, D)`` teacher patch features of the same frames.
            teacher_patch_mask: ``(frames, gh, gw)`` bool valid teacher patches.
        """
        if max(self.layers) >= len(hidden_states):
            raise ValueError(f"need hidden states of layers {self.layers}, got only {len(hidden_states)}.")
        num_frames = int(frame_grids.shape[0])
        positions, frame_index = patch_token_positions(frame_grids.cpu())
        device = hidden_states[0].device
        positions, frame_index = positions.to(device), frame_index.to(device)
        expected_tokens = int((1 + frame_grids[:, 0] * (frame_grids[:, 1] + 1)).sum()) if num_frames else 0
        found_tokens = int(visual_token_mask.sum())
        if found_tokens != expected_tokens:
            raise ValueError(
                f"the frame grids describe {expected_tokens} visual tokens but the input has {found_tokens} "
                "<video> placeholders."
            )
        zero = self._zero_touching_parameters()
        if positions.numel() == 0:
            return DistillationOutput(zero, 0, zero.new_zeros(0))
        layer_states = [hidden_states[i][visual_token_mask][positions] for i in self.layers]
        prediction = self.fuse(layer_states)
        targets, has_target = teacher_targets(teacher_features, teacher_patch_mask, frame_grids)
        frame_losses = per_frame_loss(prediction, targets.to(device), frame_index, num_frames, self.loss_type)
        has_target = has_target.to(device)
        loss_sum = frame_losses[has_target].sum() + zero + prediction.sum() * 0.0
        return DistillationOutput(loss_sum, int(has_target.sum()), frame_losses.detach())


__all__ = [
    "LOSS_TYPES",
    "DistillationHead",
    "DistillationOutput",
    "patch_token_positions",
    "per_frame_loss",
    "select_student_layers",
    "teacher_targets",
    "valid_patch_mask",
]
