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


def frame_token_positions(h: int, w: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions inside one frame's ``1 + h*(w+1)`` tokens: ``(class + grid tokens in row-major order, <row> tokens)``.

    The class token is at 0, grid token ``(r, c)`` at ``1 + r*(w+1) + c`` and the ``<row>`` token of row ``r`` at
    ``1 + r*(w+1) + w``; scattering with these indices lays tokens out without building the sequence by concatenation.
    """
    starts = 1 + torch.arange(h, device=device) * (w + 1)
    grid = (starts[:, None] + torch.arange(w, device=device)).flatten()
    return torch.cat([torch.zeros(1, dtype=grid.dtype, device=device), grid]), starts + w
