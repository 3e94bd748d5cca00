"""STAB behaviour beyond the fixture: all-zero padding frames, temporal chunking of odd frame counts, mixed batches of
images and videos with batch padding, input validation, ablation switches, parameter count and init."""

import pytest
import torch
from test_stab_common import naive_tower, random_frames, random_tower, tiny_stab_config
from videopanda.modeling import VideoPandaConfig
from videopanda.modeling.modeling_stab import VideoPandaVisionTower
from videopanda.modeling.modeling_stab_layout import temporal_chunk_lengths

ATOL = 1e-10


def _features(tower, videos, num_frames=None, fast=True):
    with torch.no_grad():
        return tower(videos, num_frames=num_frames, use_fast_path=fast)


@pytest.fixture(scope="module")
def big_frames():
    """Frames of 280 px: a 20x20 patch grid, larger than the 16-patch crop of all-zero frames."""
    config = tiny_stab_config(image_size=280)
    return config, random_tower(config, seed=1)


def test_all_zero_padding_frames_keep_top_left_crop(big_frames):
    config, tower = big_frames
    video = random_frames(6, 280, seed=2)
    video[4:] = 0  # the original pads short clips with all-zero frames (pixels and mask)
    out = _features(tower, video.unsqueeze(0))
    assert out.frame_grids.tolist() == [[10, 10]] * 4 + [[8, 8]] * 2
    assert out.tokens_per_frame.tolist() == [111] * 4 + [73] * 2
    expected = naive_tower(tower, video, config)
    torch.testing.assert_close(out.features, expected, atol=ATOL, rtol=0)


def test_zero_frame_crop_is_clipped_to_small_grids():
    config = tiny_stab_config()  # 112 px: 8x8 patches, smaller than the 16-patch crop
    tower = random_tower(config)
    video = random_frames(4, 112, seed=3)
    video[3] = 0
    out = _features(tower, video.unsqueeze(0))
    assert out.frame_grids.tolist() == [[4, 4]] * 4
    torch.testing.assert_close(out.features, naive_tower(tower, video, config), atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    ("frames", "chunks"), [(2, [2]), (3, [3]), (6, [6]), (7, [7]), (8, [4, 4]), (10, [5, 5]), (13, [5, 5, 3])]
)
def test_chunking_follows_torch_chunk(frames, chunks):
    assert temporal_chunk_lengths(frames, 4) == chunks
    if frames >= 4:
        assert [len(c) for c in torch.chunk(torch.arange(frames), frames // 4)] == chunks


@pytest.mark.parametrize("frames", [2, 6, 13])
def test_odd_frame_counts_match_naive_per_chunk(frames):
    config = tiny_stab_config()
    tower = random_tower(config, seed=frames)
    video = random_frames(frames, 112, valid=(28, 84, 0, 112), seed=frames)
    out = _features(tower, video.unsqueeze(0))
    assert out.chunk_class_tokens.shape[0] == len(temporal_chunk_lengths(frames, 4))
    torch.testing.assert_close(out.features, naive_tower(tower, video, config), atol=ATOL, rtol=0)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
def test_mixed_batch_equals_videos_one_by_one(big_frames, fast):
    """Images, videos, aspect ratios and zero frames in one batch, with batch-padding frames that must be ignored."""
    config, tower = big_frames
    videos = [
        random_frames(8, 280, valid=(56, 224, 0, 280), seed=10),  # landscape video
        random_frames(1, 280, seed=11),  # an image
        random_frames(5, 280, valid=(0, 280, 84, 196), seed=12),  # portrait, one 5-frame chunk
        random_frames(1, 280, valid=(0, 140, 0, 280), seed=13),  # landscape image
    ]
    videos[2][3:] = 0  # zero padding frames inside a video
    batch = torch.full((len(videos), 8, 4, 280, 280), 7.0, dtype=torch.float64)  # batch padding: garbage
    for index, video in enumerate(videos):
        batch[index, : len(video)] = video
    num_frames = torch.tensor([len(v) for v in videos])
    out = _features(tower, batch, num_frames, fast=fast)
    expected = torch.cat([naive_tower(tower, video, config) for video in videos])
    torch.testing.assert_close(out.features, expected, atol=ATOL, rtol=0)
    assert out.tokens_per_frame.shape[0] == int(num_frames.sum())
    assert int(out.tokens_per_frame.sum()) == out.features.shape[0] == out.pre_projector.shape[0]


@pytest.mark.parametrize("fast", [True, False])
def test_same_grid_at_different_crop_positions_matches_naive(fast):
    """Frames whose valid regions have one shape at different positions share an LSD group but need their own crops
    (the gather branch); the full frames beside them take the shared-crop branch."""
    config = tiny_stab_config(image_size=168)
    tower = random_tower(config, seed=4)
    videos = [
        random_frames(4, 168, valid=(0, 84, 0, 84), seed=1),
        random_frames(4, 168, valid=(42, 126, 42, 126), seed=2),
        random_frames(4, 168, seed=3),
    ]
    out = _features(tower, torch.stack(videos), fast=fast)
    expected = torch.cat([naive_tower(tower, video, config) for video in videos])
    torch.testing.assert_close(out.features, expected, atol=ATOL, rtol=0)
    assert out.frame_grids[:8].tolist() == [[3, 3]] * 8


def test_num_frames_none_uses_every_frame():
    config = tiny_stab_config()
    tower = random_tower(config)
    batch = torch.stack([random_frames(4, 112, seed=1), random_frames(4, 112, seed=2)])
    full = _features(tower, batch)
    explicit = _features(tower, batch, torch.tensor([4, 4]))
    torch.testing.assert_close(full.features, explicit.features, atol=0, rtol=0)


@pytest.mark.parametrize(
    ("pixels", "num_frames", "message"),
    [
        (torch.zeros(2, 4, 112, 112), None, "5-D"),
        (torch.zeros(1, 2, 3, 112, 112), None, "validity mask"),
        (torch.zeros(1, 2, 4, 112, 112, dtype=torch.long), None, "floating-point"),
        (torch.zeros(1, 2, 4, 100, 112), None, "multiple of patch_size"),
        (torch.zeros(1, 2, 4, 112, 112), torch.tensor([3]), "num_frames"),
        (torch.zeros(2, 2, 4, 112, 112), torch.tensor([1]), "num_frames"),
        (torch.zeros(1, 2, 4, 112, 112), torch.tensor([0]), "num_frames"),
        (torch.zeros(1, 2, 4, 112, 112), torch.tensor([1.0]), "num_frames"),
    ],
)
def test_bad_inputs_raise_value_errors(pixels, num_frames, message):
    tower = VideoPandaVisionTower(tiny_stab_config()).eval()
    with pytest.raises(ValueError, match=message):
        tower(pixels, num_frames=num_frames)


def test_valid_region_smaller_than_a_window_is_an_error():
    tower = VideoPandaVisionTower(tiny_stab_config()).eval()
    frames = random_frames(1, 112, valid=(0, 14, 0, 112), dtype=torch.float32)  # one patch row -> h = 0
    with pytest.raises(ValueError, match="LSD window"):
        tower(frames.unsqueeze(0))


def test_ablation_switches():
    """use_gstra=False: video frames keep the FSRA class token (no fusion); use_lste=False: no LSTE modules."""
    no_gstra = random_tower(tiny_stab_config(use_gstra=False))
    assert no_gstra.temporal_aggregation is None and no_gstra.class_fusion is None
    video = random_frames(8, 112, seed=4).unsqueeze(0)
    out = _features(no_gstra, video)
    assert out.chunk_class_tokens is None
    torch.testing.assert_close(out.class_tokens, out.frame_class_tokens, atol=0, rtol=0)

    no_lste = random_tower(tiny_stab_config(use_lste=False))
    assert no_lste.temporal_encoding is None
    out = _features(no_lste, video)
    assert out.chunk_class_tokens.shape == (2, 32)
    # Without LSTE the frames reaching LSD are the raw patch embeddings, so the LSD tokens equal the image path's.
    image_out = _features(no_lste, video[0].unsqueeze(1))
    grid = out.pre_projector.view(8, 21, 32)[:, 1:]
    torch.testing.assert_close(grid, image_out.pre_projector.view(8, 21, 32)[:, 1:], atol=ATOL, rtol=0)


def test_untrained_tower_starts_like_the_original():
    """The original's zero inits: LSTE branch off, GSTRA returns its (zero) query, balance gives a 0.5 mix."""
    tower = VideoPandaVisionTower(tiny_stab_config()).double().eval()
    assert torch.count_nonzero(tower.temporal_encoding.expand.weight) == 0
    assert torch.count_nonzero(tower.temporal_encoding.position_conv.bias) == 0
    gstra = tower.temporal_aggregation
    for tensor in (gstra.query, gstra.out_proj.weight, gstra.out_proj.bias, gstra.fc2.weight, gstra.fc2.bias):
        assert torch.count_nonzero(tensor) == 0
    assert torch.count_nonzero(tower.class_fusion.balance) == 0
    out = _features(tower, random_frames(4, 112).unsqueeze(0))
    assert torch.count_nonzero(out.chunk_class_tokens) == 0
    assert torch.isfinite(out.features).all()


def test_full_size_parameter_count():
    """Run ``python -m pytest tests/test_stab_behaviour.py -k parameter_count`` to check the paper's 45M."""
    with torch.device("meta"):
        tower = VideoPandaVisionTower(VideoPandaConfig())
    assert sum(p.numel() for p in tower.parameters()) == 45_066_578
    assert sum(p.numel() for p in tower.projector.parameters()) == 20_979_712


def test_no_frame_size_limit_other_than_patches():
    """Non-square frames whose sides are multiples of the patch size run (the grid follows the valid region)."""
    config = tiny_stab_config()
    tower = random_tower(config)
    video = torch.cat(
        [torch.randn(2, 3, 84, 140, dtype=torch.float64), torch.ones(2, 1, 84, 140, dtype=torch.float64)], 1
    )
    out = _features(tower, video.unsqueeze(0))
    assert out.frame_grids.tolist() == [[3, 5], [3, 5]]
