"""The fast STAB path (factorised single-query attention, batched windows, ``<row>`` projected once) gives the same
numbers as the straightforward reference path, compiles with ``torch.compile`` and runs in bfloat16 and float16."""

import pytest
import torch
from test_stab_common import (
    case_input,
    load_parity_fixture,
    random_frames,
    random_tower,
    tiny_stab_config,
    tower_from_fixture,
)

META, TENSORS = load_parity_fixture()


def _both(tower, videos, num_frames=None):
    with torch.no_grad():
        return tower(videos, num_frames, use_fast_path=True), tower(videos, num_frames, use_fast_path=False)


def _assert_same(fast, reference, atol):
    for name in ("features", "pre_projector", "frame_class_tokens", "class_tokens", "chunk_class_tokens"):
        got, expected = getattr(fast, name), getattr(reference, name)
        if expected is None:
            assert got is None
        else:
            torch.testing.assert_close(got, expected, atol=atol, rtol=0, msg=name)
    assert torch.equal(fast.frame_grids, reference.frame_grids)
    assert torch.equal(fast.tokens_per_frame, reference.tokens_per_frame)


def test_fast_equals_reference_on_fixture_cases():
    tower = tower_from_fixture(META, TENSORS, torch.float64)
    for case in META["cases"]:
        _assert_same(*_both(tower, case_input(META, TENSORS, case).double()), atol=1e-10)


def _random_batch(seed: int, size: int = 168):
    """Videos and images of random lengths, aspect ratios and zero padding frames, padded to one batch."""
    generator = torch.Generator().manual_seed(seed)
    videos = []
    for index in range(4):
        frames = int(torch.randint(1, 10, (), generator=generator))
        band = int(torch.randint(2, size // 14 + 1, (), generator=generator)) * 14
        start = (size - band) // 2
        valid = [(start, start + band, 0, size), (0, size, start, start + band), None][index % 3]
        video = random_frames(frames, size, valid=valid, seed=seed * 10 + index)
        if frames > 2 and index % 2:
            video[frames - 2 :] = 0  # all-zero padding frames
        videos.append(video)
    batch = torch.zeros(len(videos), max(len(v) for v in videos), 4, size, size, dtype=torch.float64)
    for index, video in enumerate(videos):
        batch[index, : len(video)] = video
    return batch, torch.tensor([len(v) for v in videos])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_equals_reference_on_random_mixed_batches(seed):
    tower = random_tower(tiny_stab_config(image_size=168), seed=seed)
    batch, num_frames = _random_batch(seed)
    _assert_same(*_both(tower, batch, num_frames), atol=1e-10)


def test_tiled_window_attention_equals_reference(monkeypatch):
    """Full-size LSD tiles its windows to keep temporaries cache-sized; force many tiles (the last one ragged)."""
    from videopanda.modeling import modeling_stab_spatial

    tower = random_tower(tiny_stab_config(image_size=168), seed=5)
    batch, num_frames = _random_batch(5)
    untiled, _ = _both(tower, batch, num_frames)
    layer = tower.spatial_downsample  # 7 windows per tile: (7, heads, hidden) elements
    monkeypatch.setattr(modeling_stab_spatial, "_TILE_ELEMENTS", 7 * layer.num_heads * layer.key_proj.in_features)
    fast, reference = _both(tower, batch, num_frames)
    _assert_same(fast, reference, atol=1e-10)
    _assert_same(fast, untiled, atol=1e-12)


def test_fast_path_gradients_match_reference():
    tower = random_tower(tiny_stab_config(), seed=5)
    batch, num_frames = _random_batch(5, size=112)
    grads = []
    for fast in (True, False):
        tower.zero_grad()
        tower(batch, num_frames, use_fast_path=fast).features.square().sum().backward()
        grads.append({n: p.grad.clone() for n, p in tower.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-9, rtol=1e-9, msg=name)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_runs_and_tracks_float32(dtype):
    tower = random_tower(tiny_stab_config(), seed=3, dtype=torch.float32)
    batch, num_frames = _random_batch(3, size=112)
    with torch.no_grad():
        full = tower(batch.float(), num_frames).features
        half = tower.to(dtype)(batch.float(), num_frames).features
    assert half.dtype == dtype and torch.isfinite(half).all()
    assert (half.float() - full).abs().max() < 0.1 * full.abs().max()


@pytest.mark.parametrize("backend", ["aot_eager", pytest.param("inductor", marks=pytest.mark.slow)])
def test_torch_compile_matches_eager(backend):
    """One video and one image (a few graphs: the data-dependent crop sizes are one deliberate graph break).

    ``aot_eager`` checks that Dynamo and AOTAutograd trace the tower; ``inductor`` (slow: minutes of C++ compilation
    on a small CPU) checks the generated kernels too."""
    tower = random_tower(tiny_stab_config(), seed=4, dtype=torch.float32)
    batch = torch.stack([random_frames(4, 112, valid=(28, 84, 0, 112), seed=1), random_frames(4, 112, seed=2)])
    num_frames = torch.tensor([4, 1])
    torch._dynamo.reset()
    compiled = torch.compile(tower, backend=backend)
    with torch.no_grad():
        eager = tower(batch.float(), num_frames)
        out = compiled(batch.float(), num_frames)
    torch.testing.assert_close(out.features, eager.features, atol=5e-5, rtol=1e-5)
    torch.testing.assert_close(out.pre_projector, eager.pre_projector, atol=5e-5, rtol=1e-5)


def test_fast_equals_reference_in_train_mode():
    """Train mode: BatchNorm uses batch statistics in both paths (dropout switched off to compare)."""
    tower = random_tower(tiny_stab_config(), seed=6).train()
    tower.temporal_aggregation.dropout.p = tower.class_fusion.dropout.p = 0.0
    batch, num_frames = _random_batch(6, size=112)
    fast = tower(batch, num_frames, use_fast_path=True)
    reference = tower(batch, num_frames, use_fast_path=False)
    _assert_same(fast, reference, atol=1e-10)
