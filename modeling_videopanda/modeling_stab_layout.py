"""Bookkeeping of the STAB that is not learned: which frames form a temporal chunk, which patches of a frame are
cropped before LSD, and how a frame's tokens are laid out for the language model (class token, rows, ``<row>``).

These rules reproduce the original exactly, quirks included (``torch.chunk(T // 4)`` grouping, the literal top-left
``[:16, :16]`` crop of all-zero frames), and are shared by the processor-facing contract in ``docs/internals.md``.
"""

import torch


def temporal_chunk_lengths(num_frames: int, chunk_size: int) -> list[int]:
    """Frame counts of the chunks of a ``num_frames`` video: ``torch.chunk(frames, num_frames // chunk_size)``.

    ``torch.chunk`` makes chunks of ``ceil(T / n)`` frames (the last one shorter, and possibly fewer than ``n`` chunks),
    e.g. T=8 -> 4+4, T=6 -> 6, T=10 -> 5+5, T=13 -> 5+5+3. A video shorter than one chunk (where the original crashes)
    is one chunk of all its frames.
    """
    count = max(num_frames // chunk_size, 1)
    size = -(-num_frames // count)
    return [min(size, num_frames - start) for start in range(0, num_frames, size)]


def crop_boxes(patch_valid: torch.Tensor, padded_frame_crop: int) -> torch.Tensor:
    """Patch crop of every frame, ``(N, 4)`` long = ``(top, left, height, width)`` in patches.

    ``patch_valid``: ``(N, grid_h, grid_w)`` bool, True where any pixel of the patch is valid. The crop is the bounding
    box of valid patches (for the rectangular regions preprocessing produces, this equals the original's first/last
    nonzero rule). A frame without any valid patch keeps the top-left ``padded_frame_crop`` square, clipped to the grid.
    """
    _, grid_h, grid_w = patch_valid.shape
    rows, cols = patch_valid.any(dim=2), patch_valid.any(dim=1)
    row_ids = torch.arange(grid_h, device=patch_valid.device)
    col_ids = torch.arange(grid_w, device=patch_valid.device)
    top = torch.where(rows, row_ids, grid_h).amin(dim=1)
    bottom = torch.where(rows, row_ids, -1).amax(dim=1)
    left = torch.where(cols, col_ids, grid_w).amin(dim=1)
    right = torch.where(cols, col_ids, -1).amax(dim=1)
    empty = ~rows.any(dim=1)
    zero = torch.zeros_like(top)
    boxes = torch.stack(
        [
            torch.where(empty, zero, top),
            torch.where(empty, zero, left),
            torch.where(empty, zero + min(padded_frame_crop, grid_h), bottom - top + 1),
            torch.where(empty, zero + min(padded_frame_crop, grid_w), right - left + 1),
        ],
        dim=1,
    )
    return boxes


def tokens_per_frame(grids: torch.Tensor) -> torch.Tensor:
    """``1 + h * (w + 1)`` for each ``(h, w)`` row of ``grids``: the class token, then each row followed by ``<row>``."""
    return 1 + grids[:, 0] * (grids[:, 1] + 1)


def layout_frame_tokens(class_tokens: torch.Tensor, grid_tokens: torch.Tensor, row_token: torch.Tensor) -> torch.Tensor:
    """``(G, D)`` class tokens, ``(G, h, w, D)`` grid tokens and one ``(D,)`` row token -> ``(G, 1 + h*(w+1), D)``."""
    groups, h, _, dim = grid_tokens.shape
    rows = torch.cat([grid_tokens, row_token.view(1, 1, 1, dim).expand(groups, h, 1, dim)], dim=2)
    return torch.cat([class_tokens.unsqueeze(1), rows.flatten(1, 2)], dim=1)
