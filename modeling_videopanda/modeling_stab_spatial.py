"""The two per-frame stages of the STAB: LSD (local spatial downsampling, 2x2-window attention whose query is the
pooled window) and FSRA (frame-level spatial relation aggregation, one learned query over the frame's LSD tokens).

Both use the original's softmax scale ``hidden_size**-0.5`` (the full width, not the head width) and bias-free
query/key/value projections. Each has a straightforward path (project every key and value) and a factorised fast path
(``score_h = LN(x) . (W_k,h^T q_h)``, values averaged before ``W_v``) that gives the same numbers with less arithmetic.
"""

import torch
from torch import nn
from transformers import initialization as init


# Elements of one (items, H, d) temporary of the factorised attention: 1M floats (4 MB in float32) keeps each tile's
# intermediates in the last-level cache and in reused allocator memory; the full-size LSD would otherwise write two
# 67 MB tensors to fresh pages.
_TILE_ELEMENTS = 1 << 20


def _factorised_attention(query, keys_in, key_weight, value_weight):
    """``score_h = keys_in . (W_k,h^T q_h)``, softmax, weighted mean of ``keys_in`` then ``W_v``: no key or value is
    projected. Shapes as in `_single_query_attention`."""
    heads, head_dim = query.shape[-2:]
    query_in_input = torch.einsum("...hc,hcd->...hd", query, key_weight.view(heads, head_dim, -1))
    weights = torch.matmul(query_in_input, keys_in.transpose(-1, -2)).softmax(dim=-1)  # (..., H, n)
    pooled = torch.matmul(weights, keys_in)  # (..., H, d)
    return torch.einsum("...hd,hcd->...hc", pooled, value_weight.view(heads, head_dim, -1)).flatten(-2)


def _single_query_attention(
    query: torch.Tensor, keys_in: torch.Tensor, key_weight: torch.Tensor, value_weight: torch.Tensor, fast: bool
) -> torch.Tensor:
    """Multi-head attention of one (already scaled) query per item over that item's normalised inputs.

    query: ``(..., H, c)``; keys_in: ``(..., n, d)`` (shared by keys and values); key/value_weight: ``(H*c, d)``.
    Returns ``(..., H*c)``. Never builds anything larger than ``(..., H, d)`` or ``(..., n, d)``.
    """
    heads, head_dim = query.shape[-2:]
    if fast:
        if query.ndim > 2:  # one query per item: tile the items so the (items, H, d) temporaries stay cache-sized
            items = keys_in.shape[:-2]
            query, keys_in = query.reshape(-1, heads, head_dim), keys_in.reshape(-1, *keys_in.shape[-2:])
            step = max(1, _TILE_ELEMENTS // (heads * keys_in.shape[-1]))
            tiles = [
                _factorised_attention(query[i : i + step], keys_in[i : i + step], key_weight, value_weight)
                for i in range(0, len(query), step)
            ]
            return torch.cat(tiles).view(*items, -1)
        return _factorised_attention(query, keys_in, key_weight, value_weight)
    keys = torch.matmul(keys_in, key_weight.t()).unflatten(-1, (heads, head_dim))  # (..., n, H, c)
    values = torch.matmul(keys_in, value_weight.t()).unflatten(-1, (heads, head_dim))
    weights = (query.unsqueeze(-3) * keys).sum(-1).softmax(dim=-2)  # (..., n, H)
    return (weights.unsqueeze(-1) * values).sum(-3).flatten(-2)


class LocalSpatialDownsample(nn.Module):
    """LSD: each ``window x window`` block of patch features becomes one token.

    The query is the average-pooled window, the keys/values are the window's patches:
    ``out = pooled + out_proj(attention(query_proj(LN_q(pooled)), key/value_proj(LN_kv(patches))))``.
    """

    def __init__(self, hidden_size: int, num_heads: int, window: int = 2):
        super().__init__()
        self.num_heads = num_heads
        self.window = window
        self.scale = hidden_size**-0.5
        self.query_norm = nn.LayerNorm(hidden_size)
        self.query_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.key_value_norm = nn.LayerNorm(hidden_size)
        self.key_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.value_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, crops: torch.Tensor, fast: bool = True) -> torch.Tensor:
        """``crops``: ``(G, window*h, window*w, d)`` channels-last patch features; returns ``(G, h, w, d)``."""
        groups, height, width, hidden = crops.shape
        h, w, s = height // self.window, width // self.window, self.window
        patches = crops.view(groups, h, s, w, s, hidden).permute(0, 1, 3, 2, 4, 5).reshape(groups, h, w, s * s, hidden)
        pooled = patches.mean(dim=-2)
        query = (self.query_proj(self.query_norm(pooled)) * self.scale).unflatten(-1, (self.num_heads, -1))
        attended = _single_query_attention(
            query, self.key_value_norm(patches), self.key_proj.weight, self.value_proj.weight, fast
        )
        return pooled + self.out_proj(attended)


class FrameQueryAttention(nn.Module):
    """FSRA: a learned frame query (the class token) attends over the LSD tokens of one frame and becomes the frame's
    class token, ``query + out_proj(attention(...))``. The query is the same for every frame, so the fast path projects
    it once per call."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.scale = hidden_size**-0.5
        self.query = nn.Parameter(torch.zeros(hidden_size))
        self.query_norm = nn.LayerNorm(hidden_size)
        self.query_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.key_value_norm = nn.LayerNorm(hidden_size)
        self.key_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.value_proj = nn.Linear(hidden_size, hidden_size, bias=False)
        self.out_proj = nn.Linear(hidden_size, hidden_size)
        self.init_like_original()

    @torch.no_grad()
    def init_like_original(self):
        """A transformer class token: normal with std ``hidden_size**-0.5`` (the original's CLIP-style scale)."""
        init.normal_(self.query, std=self.query.shape[0] ** -0.5)

    def forward(self, tokens: torch.Tensor, fast: bool = True) -> torch.Tensor:
        """``tokens``: ``(G, n, d)`` LSD tokens of G frames with the same grid; returns the class tokens ``(G, d)``."""
        query = (self.query_proj(self.query_norm(self.query)) * self.scale).unflatten(-1, (self.num_heads, -1))
        attended = _single_query_attention(
            query, self.key_value_norm(tokens), self.key_proj.weight, self.value_proj.weight, fast
        )
        return self.query + self.out_proj(attended)
