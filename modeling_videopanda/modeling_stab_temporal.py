"""The two video-only stages of the STAB: LSTE (local spatio-temporal encoding) and GSTRA (global spatio-temporal
relation aggregation). Both run per temporal chunk (4 frames by default) and are skipped for single images.

Parameter names are ours; ``videopanda.conversion`` maps the original ``lmhra1``/``dpe``/``dec``/``temporal_cls_token``
names onto them.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init


class BatchNorm3dWithoutStepCounter(nn.BatchNorm3d):
    """BatchNorm3d whose ``num_batches_tracked`` is not saved or loaded: it only matters with ``momentum=None``, and
    keeping it out of checkpoints lets weights without it (the converter drops it) load cleanly."""

    def __init__(self, num_features: int):
        super().__init__(num_features)
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long), persistent=False)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        state_dict.pop(prefix + "num_batches_tracked", None)
        super()._load_from_state_dict(state_dict, prefix, {**local_metadata, "version": 2}, *args, **kwargs)


class LocalSpatioTemporalEncoding(nn.Module):
    """LSTE: ``y = x + expand(temporal_conv(reduce(norm(x))))`` then ``z = y + position_conv(y)``.

    ``norm`` is BatchNorm3d (running statistics in eval), ``reduce``/``expand`` are 1x1x1 convolutions through a
    ``int(d // 1.5)`` bottleneck, ``temporal_conv`` a depthwise (3,1,1) convolution and ``position_conv`` the 3x3x3
    depthwise dynamic position encoding. Input and output are channels-last ``(chunks, frames, grid_h, grid_w, d)``; it
    runs over the whole padded patch grid, as in the original (padding pixels leak into border tokens through the
    convolutions).

    The fast path keeps the data channels-last: in eval the BatchNorm is folded into ``reduce``, the two 1x1x1 convs are
    matrix products and the (3,1,1) depthwise conv is three shifted multiply-adds; the reference path calls the
    convolution modules on a channels-first copy.
    """

    def __init__(self, hidden_size: int, bottleneck_size: int):
        super().__init__()
        self.norm = BatchNorm3dWithoutStepCounter(hidden_size)
        self.reduce = nn.Conv3d(hidden_size, bottleneck_size, kernel_size=1)
        self.temporal_conv = nn.Conv3d(
            bottleneck_size, bottleneck_size, kernel_size=(3, 1, 1), padding=(1, 0, 0), groups=bottleneck_size
        )
        self.expand = nn.Conv3d(bottleneck_size, hidden_size, kernel_size=1)
        self.position_conv = nn.Conv3d(hidden_size, hidden_size, kernel_size=3, padding=1, groups=hidden_size)
        self.init_like_original()

    @torch.no_grad()
    def init_like_original(self):
        """The original zero-initialises the last bottleneck conv and the position-conv bias, so LSTE starts as ``x``
        plus the position encoding."""
        init.zeros_(self.expand.weight)
        init.zeros_(self.expand.bias)
        init.zeros_(self.position_conv.bias)

    def forward(self, x: torch.Tensor, fast: bool = True) -> torch.Tensor:
        if not fast:
            x = x.permute(0, 4, 1, 2, 3)
            y = x + self.expand(self.temporal_conv(self.reduce(self.norm(x))))
            return (y + self.position_conv(y)).permute(0, 2, 3, 4, 1)
        y = self._bottleneck_fast(x).add_(x)  # in place on fresh outputs: fewer large allocations on CPU
        # channels-last-3d input and weight: oneDNN's depthwise kernel runs on the layout as it is, without copies.
        weight = self.position_conv.weight.contiguous(memory_format=torch.channels_last_3d)
        position = F.conv3d(y.permute(0, 4, 1, 2, 3), weight, self.position_conv.bias, padding=1, groups=y.shape[-1])
        return position.permute(0, 2, 3, 4, 1).add_(y)

    def _bottleneck_fast(self, x: torch.Tensor) -> torch.Tensor:
        """``expand(temporal_conv(reduce(norm(x))))`` on channels-last data, as matrix products.

        The bottleneck is zero-padded to a multiple of 16 channels (682 -> 688 at full size): the extra channels are
        exactly zero all the way through, and BLAS runs much faster on the aligned width.
        """
        reduce_weight, reduce_bias = self.reduce.weight.flatten(1), self.reduce.bias
        if self.training:  # batch statistics: use the module
            x = self.norm(x.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1)
        else:  # running statistics: BatchNorm is an affine map, folded into the reduce weights
            scale = self.norm.weight * torch.rsqrt(self.norm.running_var + self.norm.eps)
            shift = self.norm.bias - self.norm.running_mean * scale
            reduce_weight, reduce_bias = reduce_weight * scale, reduce_bias + reduce_weight @ shift
        taps, tap_bias = self.temporal_conv.weight.view(-1, 3), self.temporal_conv.bias  # taps: frames t-1, t, t+1
        expand_weight = self.expand.weight.flatten(1)
        extra = -reduce_weight.shape[0] % 16
        if extra:
            reduce_weight, reduce_bias = F.pad(reduce_weight, (0, 0, 0, extra)), F.pad(reduce_bias, (0, extra))
            taps, tap_bias = F.pad(taps, (0, 0, 0, extra)), F.pad(tap_bias, (0, extra))
            expand_weight = F.pad(expand_weight, (0, extra))
        hidden = F.linear(x, reduce_weight, reduce_bias)
        # Depthwise (3,1,1) conv with zero padding in time: three shifted multiply-adds.
        mixed = torch.addcmul(tap_bias, hidden, taps[:, 1])
        mixed[:, 1:].addcmul_(hidden[:, :-1], taps[:, 0])
        mixed[:, :-1].addcmul_(hidden[:, 1:], taps[:, 2])
        return F.linear(mixed, expand_weight, self.expand.bias)


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``, the CLIP activation the GSTRA MLP uses."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class GlobalSpatioTemporalAggregation(nn.Module):
    """GSTRA: one learned query per temporal chunk attends over every position of the chunk (a UniFormerV2-style
    extractor block), giving the video-level context vector that is later fused into each frame's class token.

    ``q = query + out_proj(MHA(query_norm(query), context_norm(z)))``; ``q = q + fc2(drop(QuickGELU(fc1(mlp_norm(q)))))``.
    The attention is standard multi-head attention (scale ``head_dim**-0.5``, biases on q/k/v), written out so that the
    fast path can factorise it: with a single query, ``score_h = LN(z) . (W_k,h^T q_h) + q_h . b_k,h`` and the values
    are averaged before ``W_v``; no key or value is ever projected.
    """

    def __init__(self, hidden_size: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.5):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = hidden_size // num_heads
        self.query = nn.Parameter(torch.zeros(hidden_size))
        self.query_norm = nn.LayerNorm(hidden_size)
        self.context_norm = nn.LayerNorm(hidden_size)
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)
        mlp_size = round(hidden_size * mlp_ratio)
        self.mlp_norm = nn.LayerNorm(hidden_size)
        self.fc1 = nn.Linear(hidden_size, mlp_size)
        self.act = QuickGELU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(mlp_size, hidden_size)
        self.init_like_original()

    @torch.no_grad()
    def init_like_original(self):
        """The original zero-initialises the query, ``out_proj`` and ``fc2`` (``c_proj``), so an untrained GSTRA passes
        a zero vector through unchanged; q/k/v and ``fc1`` get Xavier-uniform weights."""
        init.zeros_(self.query)
        for linear in (self.q_proj, self.k_proj, self.v_proj, self.fc1):
            init.xavier_uniform_(linear.weight)
        for linear in (self.q_proj, self.k_proj, self.v_proj, self.out_proj, self.fc2):
            init.zeros_(linear.bias)
        init.zeros_(self.out_proj.weight)
        init.zeros_(self.fc2.weight)

    def _scaled_query(self) -> torch.Tensor:
        """The (constant) projected query, split into heads and pre-multiplied by the softmax scale: ``(H, head_dim)``."""
        query = self.q_proj(self.query_norm(self.query))
        return (query * self.head_dim**-0.5).view(self.num_heads, self.head_dim)

    def _attend_reference(self, context: torch.Tensor) -> torch.Tensor:
        """Straightforward attention: project every context token to keys and values. ``context``: ``(B, n, d)``."""
        query = self._scaled_query()
        keys = self.k_proj(context).unflatten(-1, (self.num_heads, self.head_dim))  # (B, n, H, c)
        values = self.v_proj(context).unflatten(-1, (self.num_heads, self.head_dim))
        weights = torch.einsum("hc,bnhc->bnh", query, keys).softmax(dim=1)
        return torch.einsum("bnh,bnhc->bhc", weights, values).flatten(1)

    def _attend_fast(self, context: torch.Tensor) -> torch.Tensor:
        """Single-query factorisation: scores against ``W_k^T q`` per head, weighted mean of ``context`` then ``W_v``."""
        query = self._scaled_query()
        key_weight = self.k_proj.weight.view(self.num_heads, self.head_dim, -1)
        query_in_context = torch.einsum("hc,hcd->hd", query, key_weight)  # (H, d)
        score_bias = (query * self.k_proj.bias.view(self.num_heads, self.head_dim)).sum(-1)  # (H,)
        weights = (torch.matmul(context, query_in_context.t()) + score_bias).softmax(dim=1)  # (B, n, H)
        pooled = torch.matmul(weights.transpose(1, 2), context)  # (B, H, d)
        value_weight = self.v_proj.weight.view(self.num_heads, self.head_dim, -1)
        values = torch.einsum("bhd,hcd->bhc", pooled, value_weight).flatten(1)
        return values + self.v_proj.bias  # the softmax weights sum to one, so the bias passes through unchanged

    def forward(self, tokens: torch.Tensor, fast: bool = True) -> torch.Tensor:
        """``tokens``: ``(chunks, n, d)`` all positions of each chunk; returns ``(chunks, d)``."""
        context = self.context_norm(tokens)
        attended = self._attend_fast(context) if fast else self._attend_reference(context)
        hidden = self.query + self.out_proj(attended)
        return hidden + self.fc2(self.dropout(self.act(self.fc1(self.mlp_norm(hidden)))))
