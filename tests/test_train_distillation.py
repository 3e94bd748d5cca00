"""Distillation head and loss against hand computations (issue 5: non-square frame, all-zero frame, pooling)."""

import math

import pytest
import torch
from videopanda.train.distillation import (
    DistillationHead,
    patch_token_positions,
    select_student_layers,
    teacher_targets,
    valid_patch_mask,
)


def test_layer_selection_matches_original_for_32_layers():
    assert select_student_layers(32, 4) == [32, 28, 24, 20, 16, 12, 8, 4, 0]
    assert select_student_layers(2, 4) == [2]
    assert select_student_layers(2, 1) == [2, 1, 0]
    with pytest.raises(ValueError, match="layer_stride"):
        select_student_layers(2, 0)


def test_patch_positions_skip_class_and_row_tokens():
    positions, frames = patch_token_positions(torch.tensor([[2, 2], [1, 3]]))
    # frame 0: [cls, p, p, row, p, p, row] -> 1, 2, 4, 5 ; frame 1 starts at 7: [cls, p, p, p, row] -> 8, 9, 10
    assert positions.tolist() == [1, 2, 4, 5, 8, 9, 10]
    assert frames.tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_valid_patch_mask_counts_partly_valid_patches():
    mask = torch.zeros(1, 28, 28)
    mask[0, :15, :] = 1  # row band covers patch row 0 fully and patch row 1 by one pixel
    assert valid_patch_mask(mask, 14).tolist() == [[[True, True], [True, True]]]
    mask[0, 14:] = 0
    assert valid_patch_mask(mask, 14).tolist() == [[[True, True], [False, False]]]


def _hand_example():
    """4 frames: 2x2 grid, non-square 1x2, all-zero (teacher mask 0) 1x1, and 1x1 against a pooled 2x2 teacher crop."""
    grids = torch.tensor([[2, 2], [1, 2], [1, 1], [1, 1]])
    # student (x, y) per patch token; the hidden vector is [x, y, -x, -y], whose LayerNorm is proportional to it
    student = {0: [(1, 0), (0, 1), (1, 1), (1, 0)], 1: [(1, 0), (0, 1)], 2: [(3, 1)], 3: [(1, 1)]}
    teacher = torch.zeros(4, 4, 2)  # 2x2 teacher grid per frame, D = 2
    mask = torch.zeros(4, 2, 2, dtype=torch.bool)
    teacher[0] = torch.tensor([(1, 0), (0, 1), (1, 0), (0, 1)], dtype=torch.float)
    mask[0] = True
    teacher[1] = torch.tensor([(-1, 0), (1, 1), (5, 5), (5, 5)], dtype=torch.float)  # bottom row is padding
    mask[1, 0] = True
    teacher[2] = torch.tensor([(9, 9)] * 4, dtype=torch.float)  # all-zero frame: no valid patch
    teacher[3] = torch.tensor([(1, 0), (1, 0), (0, 1), (0, 1)], dtype=torch.float)  # mean (0.5, 0.5)
    mask[3] = True

    tokens = []
    for frame, (h, w) in enumerate(grids.tolist()):
        patches = iter(student[frame])
        tokens.append([7, 7, 7, 7])  # class token: arbitrary, must be ignored
        for _ in range(h):
            for _ in range(w):
                x, y = next(patches)
                tokens.append([x, y, -x, -y])
            tokens.append([-8, 3, 2, 1])  # <row> token: arbitrary, must be ignored
    text = [[0.5, 0.1, 0.2, 0.3]]
    rows = text * 2 + tokens + text
    last = torch.tensor(rows, dtype=torch.float).unsqueeze(0)
    visual = torch.tensor([False] * 2 + [True] * len(tokens) + [False]).unsqueeze(0)
    noise = torch.randn_like(last)  # other layers must not matter when only the last one is selected
    return (noise, noise * 3, last), visual, grids, teacher, mask


def _single_layer_head(loss_type="cosine"):
    head = DistillationHead(
        llm_hidden_size=4, teacher_hidden_size=2, num_hidden_layers=2, layer_stride=4, loss_type=loss_type
    )
    assert head.layers == [2]
    with torch.no_grad():
        head.layer_projections[0][0].weight.fill_(1.0)
        head.layer_projections[0][0].bias.zero_()
        head.layer_projections[0][1].weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
        head.output_projection.weight.copy_(torch.eye(2))
        head.output_projection.bias.zero_()
    return head


def test_cosine_loss_equals_hand_computation():
    hidden, visual, grids, teacher, mask = _hand_example()
    out = _single_layer_head()(hidden, visual, grids, teacher, mask)
    frame0 = (0 + 0 + (1 - 1 / math.sqrt(2)) + 1) / 4
    frame1 = ((1 - -1) + (1 - 1 / math.sqrt(2))) / 2  # non-square 1x2 frame, teacher crop = its top row
    frame3 = 0.0  # the 2x2 teacher crop average-pools to (0.5, 0.5), parallel to (1, 1)
    assert out.num_frames == 3  # the all-zero frame does not count
    assert out.frame_losses[[0, 1, 3]].tolist() == pytest.approx([frame0, frame1, frame3], abs=1e-6)
    assert out.loss_sum.item() == pytest.approx(frame0 + frame1 + frame3, abs=1e-6)


def test_mse_loss_equals_hand_computation():
    hidden, visual, grids, teacher, mask = _hand_example()
    out = _single_layer_head("mse")(hidden, visual, grids, teacher, mask)
    eps = 1e-5

    def pred(x, y):  # LayerNorm of [x, y, -x, -y], first two coordinates
        s = math.sqrt((x * x + y * y) / 2 + eps)
        return x / s, y / s

    def se(p, t):
        return ((p[0] - t[0]) ** 2 + (p[1] - t[1]) ** 2) / 2

    frame0 = (se(pred(1, 0), (1, 0)) + se(pred(0, 1), (0, 1)) + se(pred(1, 1), (1, 0)) + se(pred(1, 0), (0, 1))) / 4
    frame1 = (se(pred(1, 0), (-1, 0)) + se(pred(0, 1), (1, 1))) / 2
    frame3 = se(pred(1, 1), (0.5, 0.5))
    assert out.loss_sum.item() == pytest.approx(frame0 + frame1 + frame3, abs=1e-5)


def test_multi_layer_fusion_matches_loop_reference():
    torch.manual_seed(0)
    head = DistillationHead(llm_hidden_size=4, teacher_hidden_size=3, num_hidden_layers=2, layer_stride=1)
    grids = torch.tensor([[1, 2], [2, 1]])
    n_visual = 4 + 5
    hidden = tuple(torch.randn(1, n_visual + 1, 4) for _ in range(3))
    visual = torch.tensor([[False] + [True] * n_visual])
    teacher = torch.randn(2, 4, 3)
    mask = torch.ones(2, 2, 2, dtype=torch.bool)
    mask[0, 1] = False  # frame 0: top row of the 2x2 teacher grid matches the 1x2 student grid
    mask[1, :, 1] = False  # frame 1: left column matches 2x1
    out = head(hidden, visual, grids, teacher, mask)

    patch_rows = {0: [2, 3], 1: [6, 8]}  # sequence positions (offset 1 for the leading text token)
    targets = {0: [teacher[0, 0], teacher[0, 1]], 1: [teacher[1, 0], teacher[1, 2]]}
    expected = 0.0
    for frame in (0, 1):
        losses = []
        for pos, target in zip(patch_rows[frame], targets[frame]):
            keys = [head.layer_projections[k](hidden[layer][0, pos]) for k, layer in enumerate([2, 1, 0])]
            query = head.query_projection(hidden[2][0, pos])
            weights = torch.softmax(torch.stack([query @ k / math.sqrt(3) for k in keys]), 0)
            pred = head.output_projection(sum(w * k for w, k in zip(weights, keys)))
            losses.append(1 - torch.dot(pred, target) / (pred.norm() * target.norm()))
        expected += sum(losses) / len(losses)
    assert out.num_frames == 2
    assert out.loss_sum.item() == pytest.approx(expected.item(), abs=1e-6)
    out.loss_sum.backward()
    assert all(p.grad is not None for p in head.parameters())


def test_all_padded_frames_give_zero_that_reaches_every_parameter():
    hidden, visual, grids, teacher, mask = _hand_example()
    head = _single_layer_head()
    out = head(hidden, visual, grids, teacher, torch.zeros_like(mask))
    assert out.num_frames == 0 and out.loss_sum.item() == 0.0
    out.loss_sum.backward()
    assert all(p.grad is not None and torch.all(p.grad == 0) for p in head.parameters())


def test_token_count_mismatch_is_a_clear_error():
    hidden, visual, _, teacher, mask = _hand_example()
    with pytest.raises(ValueError, match="placeholders"):
        _single_layer_head()(hidden, visual, torch.tensor([[2, 2], [1, 2], [1, 1], [2, 2]]), teacher, mask)


def test_teacher_targets_rejects_mismatched_grids():
    with pytest.raises(ValueError, match="teacher patch grid"):
        teacher_targets(torch.zeros(2, 5, 3), torch.ones(2, 2, 2, dtype=torch.bool), torch.tensor([[1, 1], [1, 1]]))


def test_invalid_loss_type():
    with pytest.raises(ValueError, match="loss_type"):
        DistillationHead(4, 2, 2, loss_type="kl")
