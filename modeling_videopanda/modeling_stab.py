"""The STAB (Spatio-Temporal Alignment Block, Fig. 3 of the paper) plus the projector: Video-Panda's whole visual side.

Frames go straight from pixels to LLM-width tokens, with no pretrained encoder:

    patch embedding -> [videos] LSTE + GSTRA per temporal chunk, dense connection
                    -> crop to the valid region -> LSD (2x2 window attention) -> FSRA (frame class token)
                    -> [videos] class-token fusion with the chunk's GSTRA context
                    -> layout [class, row 0, <row>, row 1, <row>, ...] -> projector

All frames of all videos in a batch are processed together: temporal chunks of equal length run as one batch, and
frames are grouped only by the shape of their LSD grid (all frames of a video share it, except all-zero padding
frames), so no tensor work is done frame by frame. The only host-side work per frame is bookkeeping on Python ints
(chunk membership, grid-shape groups) after one device sync that reads the crop boxes.

Two numerically equivalent paths are kept (float64 outputs agree to ~1e-15):
- fast (default, ``tower.use_fast_path = True``): patch embedding as one matrix product, LSTE channels-last with the
  eval BatchNorm folded into its first projection, GSTRA/LSD/FSRA attention factorised for their single query
  (``score_h = LN(x) . (W_k,h^T q_h)``, values averaged before ``W_v``: no key or value is projected), and the
  constant ``<row>`` token projected once per call;
- reference (``use_fast_path=False``, per call or as the attribute): the modules' convolutions and every key and value
  computed the straightforward way, what the original computes; the fast path is tested against it.

Train mode follows the original: Dropout(0.5) in the fusion and the GSTRA MLP, and BatchNorm batch statistics (taken
over the batch of chunks of equal length, where the original's batch is one video's chunks).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init
from transformers.utils import ModelOutput

from .modeling_stab_fusion import ClassTokenFusion, VideoPandaProjector
from .modeling_stab_layout import crop_boxes, frame_token_positions, temporal_chunk_lengths, tokens_per_frame
from .modeling_stab_spatial import FrameQueryAttention, LocalSpatialDownsample
from .modeling_stab_temporal import GlobalSpatioTemporalAggregation, LocalSpatioTemporalEncoding


@dataclass
class VideoPandaVisionOutput(ModelOutput):
    """Output of [`VideoPandaVisionTower`]; tokens are video-major, in frame order.

    Args:
        features: ``(total_tokens, text_hidden_size)`` projected tokens, per frame ``[class, row 0, <row>, ...]``.
        pre_projector: ``(total_tokens, vision_hidden_size)`` the same tokens before the projector.
        frame_grids: ``(total_frames, 2)`` long, the LSD grid ``(h, w)`` of each frame.
        tokens_per_frame: ``(total_frames,)`` long, ``1 + h * (w + 1)``.
        chunk_class_tokens: ``(total_chunks, vision_hidden_size)`` GSTRA output per temporal chunk (None without
            video chunks or with GSTRA off).
        frame_class_tokens: ``(total_frames, vision_hidden_size)`` FSRA class token of each frame.
        class_tokens: ``(total_frames, vision_hidden_size)`` class token actually used (fused for video frames).
    """

    features: torch.FloatTensor | None = None
    pre_projector: torch.FloatTensor | None = None
    frame_grids: torch.LongTensor | None = None
    tokens_per_frame: torch.LongTensor | None = None
    chunk_class_tokens: torch.FloatTensor | None = None
    frame_class_tokens: torch.FloatTensor | None = None
    class_tokens: torch.FloatTensor | None = None


class VideoPandaVisionTower(nn.Module):
    """STAB + projector (``model.video_tower``), built from a `VideoPandaConfig`.

    ``use_lste=False`` skips LSTE and its dense connection (GSTRA then reads the raw patch embeddings);
    ``use_gstra=False`` skips GSTRA and the fusion, so video frames keep their FSRA class token like images do.
    The original's second, never-used LSTE branch (``lmhra2``) does not exist here; the converter drops its weights.

    Initialisation: every stage calls its ``init_like_original()`` in ``__init__`` (the original's zero inits: LSTE
    ``expand`` and ``position_conv.bias``; GSTRA ``query``, ``out_proj``, ``fc2``; fusion ``balance``; class/row
    tokens ~ N(0, d**-0.5)). A `PreTrainedModel._init_weights` that re-initialises Linear/Conv/LayerNorm generically
    must call ``module.init_like_original()`` for modules that have it, after its generic handling. Every Linear/Conv
    layer gets an ``init_std`` attribute for that generic handling: ``config.vision_initializer_range``, or
    ``1 / sqrt(fan_in)`` when it is None.
    """

    def __init__(self, config):
        super().__init__()
        hidden, heads = config.vision_hidden_size, config.vision_num_heads
        self.patch_size = config.patch_size
        self.window = config.downsample_window
        self.chunk_size = config.temporal_chunk_size
        self.padded_frame_crop = config.padded_frame_crop
        self.use_fast_path = True

        self.patch_embedding = nn.Conv2d(3, hidden, config.patch_size, stride=config.patch_size, bias=False)
        self.temporal_encoding = (
            LocalSpatioTemporalEncoding(hidden, config.lste_hidden_size) if config.use_lste else None
        )
        self.temporal_aggregation = (
            GlobalSpatioTemporalAggregation(hidden, heads, config.gstra_mlp_ratio) if config.use_gstra else None
        )
        self.spatial_downsample = LocalSpatialDownsample(hidden, heads, config.downsample_window)
        self.frame_aggregation = FrameQueryAttention(hidden, heads)
        self.class_fusion = ClassTokenFusion(hidden) if config.use_gstra else None
        self.row_embedding = nn.Parameter(torch.zeros(hidden))
        self.projector = VideoPandaProjector(
            hidden, config.text_config.hidden_size, config.projector_type, config.projector_hidden_act
        )
        std = config.vision_initializer_range
        for layer in self.modules():  # read by `VideoPandaPreTrainedModel._init_weights`
            if isinstance(layer, (nn.Linear, nn.Conv2d, nn.Conv3d)):
                layer.init_std = std if std is not None else layer.weight[0].numel() ** -0.5
        self.init_like_original()

    @torch.no_grad()
    def init_like_original(self):
        """The ``<row>`` token is a free vector, N(0, d**-0.5) like the class token."""
        init.normal_(self.row_embedding, std=self.row_embedding.shape[0] ** -0.5)

    # ------------------------------------------------------------------------------------------------------------
    def forward(
        self,
        pixel_values_videos: torch.Tensor,
        num_frames: torch.LongTensor | None = None,
        use_fast_path: bool | None = None,
    ) -> VideoPandaVisionOutput:
        """``pixel_values_videos``: ``(V, T, 4, S, S)`` float, channel 3 the validity mask; ``num_frames``: ``(V,)``
        frames that belong to each video (the rest are batch padding and ignored), None for all ``T``."""
        fast = self.use_fast_path if use_fast_path is None else use_fast_path
        counts = self._check_inputs(pixel_values_videos, num_frames)
        frames = self._select_frames(pixel_values_videos, counts).to(self.patch_embedding.weight.dtype)

        patches = self._embed_patches(frames[:, :3], fast)  # channels-last (N, gh, gw, d)
        patch_valid = F.avg_pool2d(frames[:, 3:], self.patch_size)[:, 0] > 0
        features, chunk_class, frame_chunk = self._spatio_temporal(patches, counts, fast)

        boxes = crop_boxes(patch_valid, self.padded_frame_crop)
        grids = boxes[:, 2:] // self.window
        frame_groups = self._group_frames(boxes.tolist(), patches.device)  # the one host sync: crop sizes
        grid_tokens, frame_class = self._spatial(features, boxes, frame_groups, fast)
        class_tokens = self._fuse_class_tokens(frame_class, chunk_class, frame_chunk)
        pre_projector, projected, counts_per_frame = self._layout_and_project(
            class_tokens, grid_tokens, grids, frame_groups, fast
        )
        return VideoPandaVisionOutput(
            features=projected,
            pre_projector=pre_projector,
            frame_grids=grids,
            tokens_per_frame=counts_per_frame,
            chunk_class_tokens=chunk_class,
            frame_class_tokens=frame_class,
            class_tokens=class_tokens,
        )

    # ---------------------------------------------------------------------------------------------------- inputs
    def _check_inputs(self, pixel_values_videos, num_frames) -> list[int]:
        if not isinstance(pixel_values_videos, torch.Tensor) or pixel_values_videos.ndim != 5:
            shape = tuple(pixel_values_videos.shape) if isinstance(pixel_values_videos, torch.Tensor) else None
            raise ValueError(
                f"pixel_values_videos must be a 5-D tensor (num_videos, frames, 4, height, width), got shape {shape}."
            )
        videos, max_frames, channels, height, width = pixel_values_videos.shape
        if channels != 4:
            raise ValueError(
                f"pixel_values_videos must have 4 channels (RGB plus the validity mask as the 4th channel), "
                f"got {channels}."
            )
        if not pixel_values_videos.is_floating_point():
            raise ValueError(f"pixel_values_videos must be a floating-point tensor, got {pixel_values_videos.dtype}.")
        if height % self.patch_size or width % self.patch_size or height == 0 or width == 0:
            raise ValueError(
                f"pixel_values_videos frame size {height}x{width} must be a positive multiple of patch_size "
                f"({self.patch_size})."
            )
        if videos == 0 or max_frames == 0:
            raise ValueError(f"pixel_values_videos has no frames (shape {tuple(pixel_values_videos.shape)}).")
        if num_frames is None:
            return [max_frames] * videos
        num_frames = torch.as_tensor(num_frames)
        if num_frames.shape != (videos,) or num_frames.is_floating_point():
            raise ValueError(
                f"num_frames must be an integer tensor of shape ({videos},), one count per video, got "
                f"{num_frames.dtype} {tuple(num_frames.shape)}."
            )
        counts = num_frames.tolist()
        if min(counts) < 1 or max(counts) > max_frames:
            raise ValueError(f"num_frames must be in [1, {max_frames}] (the frame axis), got {counts}.")
        return counts

    @staticmethod
    def _select_frames(pixel_values_videos, counts) -> torch.Tensor:
        """All real frames, video-major: ``(N, 4, S, S)``; batch-padding frames are dropped before any compute."""
        max_frames = pixel_values_videos.shape[1]
        if all(count == max_frames for count in counts):
            return pixel_values_videos.flatten(0, 1)
        keep = torch.arange(max_frames, device=pixel_values_videos.device) < torch.tensor(
            counts, device=pixel_values_videos.device
        ).unsqueeze(1)
        return pixel_values_videos[keep]

    def _embed_patches(self, pixels, fast):
        """Patch embedding, channels-last ``(N, gh, gw, d)``. The fast path writes it as one matrix product over
        non-overlapping patches (the same arithmetic as the stride-``patch_size`` convolution, already channels-last)."""
        if not fast:
            return self.patch_embedding(pixels).permute(0, 2, 3, 1)
        frames, channels, height, width = pixels.shape
        p = self.patch_size
        patches = pixels.reshape(frames, channels, height // p, p, width // p, p).permute(0, 2, 4, 1, 3, 5)
        return torch.matmul(patches.flatten(3), self.patch_embedding.weight.flatten(1).t())

    # ---------------------------------------------------------------------------------------- LSTE + GSTRA
    def _spatio_temporal(self, patches, counts, fast):
        """LSTE, the dense connection and GSTRA on each temporal chunk of every video (``num_frames > 1``).

        Chunks of equal length (all of them, for 8-frame videos) run as one batch. Returns the channels-last features
        to crop ``(N, gh, gw, d)``, the GSTRA vector of each chunk ``(chunks, d)`` (or None) and, per frame, the index of its
        chunk (-1 for images) as a Python list.
        """
        starts, lengths, frame_chunk, first = [], [], [], 0
        for count in counts:
            if count > 1:
                for length in temporal_chunk_lengths(count, self.chunk_size):
                    starts.append(first)
                    lengths.append(length)
                    frame_chunk.extend([len(starts) - 1] * length)
                    first += length
            else:
                frame_chunk.append(-1)
                first += 1
        if not starts or (self.temporal_encoding is None and self.temporal_aggregation is None):
            return patches, None, frame_chunk

        device = patches.device
        # Common case (every frame in chunks of one length, in order): the dense output is the feature tensor itself.
        in_place = self.temporal_encoding is not None and len(set(lengths)) == 1 and -1 not in frame_chunk
        features = patches.clone() if self.temporal_encoding is not None and not in_place else patches
        chunk_class = None
        if self.temporal_aggregation is not None:
            chunk_class = patches.new_empty(len(starts), patches.shape[-1])
        for length in sorted(set(lengths)):
            chunk_ids = [index for index, size in enumerate(lengths) if size == length]
            if in_place:  # chunks tile the frames in order: a view, no gather
                clips = patches.view(len(chunk_ids), length, *patches.shape[1:])
            else:
                frame_ids = torch.tensor([starts[index] for index in chunk_ids], device=device)[:, None] + torch.arange(
                    length, device=device
                )
                clips = patches[frame_ids]  # (chunks, length, gh, gw, d)
            encoded = self.temporal_encoding(clips, fast=fast) if self.temporal_encoding is not None else clips
            if self.temporal_aggregation is not None:
                tokens = encoded.flatten(1, 3)  # every position of the chunk, padded ones included
                chunk_class[torch.tensor(chunk_ids, device=device)] = self.temporal_aggregation(tokens, fast=fast)
            if self.temporal_encoding is not None:
                # Dense connection: LSTE output plus the patch embedding once more (in place when no graph is
                # recorded: GSTRA has already read ``encoded``, and a fresh 8x448x448 buffer costs more than the add).
                dense = (encoded.add_(clips) if not torch.is_grad_enabled() else encoded + clips).flatten(0, 1)
                if in_place:
                    features = dense
                else:
                    features[frame_ids.flatten()] = dense
        return features, chunk_class, frame_chunk

    # ------------------------------------------------------------------------------------------- LSD + FSRA
    def _group_frames(self, boxes: list, device):
        """``[((h, w), frame_ids, shared_box), ...]``: frames that share an LSD grid shape, in order of first appearance.

        ``shared_box`` is the ``(top, left)`` of the crop when every frame of the group has the same one, else None."""
        groups: dict[tuple[int, int], list[int]] = {}
        corners: dict[tuple[int, int], set] = {}
        for frame, (top, left, height, width) in enumerate(boxes):
            grid = (height // self.window, width // self.window)
            if 0 in grid:
                raise ValueError(
                    f"frame {frame} has a valid region of {height}x{width} patches, smaller than one "
                    f"{self.window}x{self.window} LSD window: the validity mask (channel 3) leaves no token."
                )
            groups.setdefault(grid, []).append(frame)
            corners.setdefault(grid, set()).add((top, left))
        return [
            (grid, torch.tensor(frames, device=device), next(iter(corners[grid])) if len(corners[grid]) == 1 else None)
            for grid, frames in groups.items()
        ]

    def _spatial(self, features, boxes, frame_groups, fast):
        """Crop each frame's valid region, run LSD and FSRA per grid-shape group.

        ``features``: channels-last ``(N, gh, gw, d)``. Returns ``[(G, h, w, d) per group]`` and ``(N, d)`` class tokens.
        """
        frame_class = features.new_empty(features.shape[0], features.shape[-1])
        grid_tokens = []
        for (h, w), frame_ids, shared_box in frame_groups:
            if shared_box is not None:  # one crop for the whole group (the usual case): slices, no gather
                top, left = shared_box
                crops = features[:, top : top + h * self.window, left : left + w * self.window]
                if len(frame_ids) < len(features):
                    crops = crops[frame_ids]
            else:
                rows = boxes[frame_ids, 0:1] + torch.arange(h * self.window, device=boxes.device)
                cols = boxes[frame_ids, 1:2] + torch.arange(w * self.window, device=boxes.device)
                crops = features[frame_ids[:, None, None], rows[:, :, None], cols[:, None, :]]  # (G, 2h, 2w, d)
            tokens = self.spatial_downsample(crops, fast=fast)
            frame_class[frame_ids] = self.frame_aggregation(tokens.flatten(1, 2), fast=fast)
            grid_tokens.append(tokens)
        return grid_tokens, frame_class

    def _fuse_class_tokens(self, frame_class, chunk_class, frame_chunk):
        """Video frames: fuse the FSRA class token with their chunk's GSTRA vector; images keep the FSRA token."""
        if chunk_class is None or self.class_fusion is None:
            return frame_class
        video_frames = [frame for frame, chunk in enumerate(frame_chunk) if chunk >= 0]
        chunks = torch.tensor([frame_chunk[frame] for frame in video_frames], device=frame_class.device)
        video_frames = torch.tensor(video_frames, device=frame_class.device)
        class_tokens = frame_class.clone()
        class_tokens[video_frames] = self.class_fusion(chunk_class[chunks], frame_class[video_frames])
        return class_tokens

    # --------------------------------------------------------------------------------------- layout + projector
    def _layout_and_project(self, class_tokens, grid_tokens, grids, frame_groups, fast):
        """Lay each frame out as ``[class, row 0, <row>, row 1, <row>, ...]`` (by scattering into the output) and project.

        The fast path projects only class and grid tokens and the constant ``<row>`` token once; the reference path
        projects the whole laid-out matrix, ``<row>`` copies included."""
        counts = tokens_per_frame(grids)
        offsets = counts.cumsum(0) - counts
        total = sum(len(frame_ids) * (1 + h * (w + 1)) for (h, w), frame_ids, _ in frame_groups)
        pre_projector = class_tokens.new_empty(total, class_tokens.shape[-1])
        projected = None
        if fast:
            projected_row = self.projector(self.row_embedding)
            projected = class_tokens.new_empty(total, projected_row.shape[-1])
        for ((h, w), frame_ids, _), tokens in zip(frame_groups, grid_tokens):
            body_positions, row_positions = frame_token_positions(h, w, device=offsets.device)
            body_positions = (offsets[frame_ids, None] + body_positions).flatten()
            row_positions = (offsets[frame_ids, None] + row_positions).flatten()
            body = torch.cat([class_tokens[frame_ids].unsqueeze(1), tokens.flatten(1, 2)], dim=1).flatten(0, 1)
            pre_projector[body_positions] = body
            pre_projector[row_positions] = self.row_embedding
            if fast:
                projected[body_positions] = self.projector(body)
                projected[row_positions] = projected_row
        if not fast:
            projected = self.projector(pre_projector)
        return pre_projector, projected, counts


__all__ = ["VideoPandaVisionOutput", "VideoPandaVisionTower"]
