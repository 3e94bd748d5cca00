"""Resize / pad / mask geometry and pixel values against the original preprocessing (preprocess_reference)."""

import json

import numpy as np
import pytest
import torch
from videopanda.processing.frame_geometry_videopanda import (
    BACKGROUND_RGB,
    OPENAI_CLIP_MEAN,
    OPENAI_CLIP_STD,
    model_layout,
    teacher_layout,
    tokens_per_frame,
    valid_token_grid,
)
from videopanda.processing.video_processing_videopanda import VideoPandaVideoProcessor


@pytest.fixture(scope="module")
def reference(fixtures_dir):
    return json.loads((fixtures_dir / "preprocess_reference.json").read_text())


@pytest.fixture(scope="module")
def stored(fixtures_dir):
    with np.load(fixtures_dir / "preprocess_reference_uint8.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def processor():
    return VideoPandaVideoProcessor()


def synthetic_frame(width: int, height: int) -> np.ndarray:
    """The fixture's deterministic frame (json `synthetic_frame`)."""
    x = np.arange(width)[None, :]
    y = np.arange(height)[:, None]
    red = np.broadcast_to((x * 255) // max(width - 1, 1), (height, width))
    green = np.broadcast_to((y * 255) // max(height - 1, 1), (height, width))
    blue = ((x // 4 + y // 4) % 2) * 200 + 28
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def reference_tensor(stored, key: str, side: str) -> torch.Tensor:
    """The original's float tensor, rebuilt from the stored uint8 stage by the documented steps 4, 5 and 8."""
    pixels = torch.from_numpy(stored[f"{key}.{side}_uint8_after_resize_pad"].copy()).float() / 255.0
    mean = torch.tensor(OPENAI_CLIP_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(OPENAI_CLIP_STD, dtype=torch.float32).view(3, 1, 1)
    pixels = (pixels - mean) / std
    canvas = pixels.shape[-1]
    mask = np.unpackbits(stored[f"{key}.{side}_mask_packbits"], axis=-1)[:, :canvas].astype(np.float32)
    return torch.cat([pixels, torch.from_numpy(mask)[None]], dim=0)


def all_rows(reference):
    return reference["sizes"] + reference["extra_sizes"]


def test_fixture_has_every_row(reference):
    assert len(all_rows(reference)) == 15


def test_layouts_match_every_row(reference):
    for row in all_rows(reference):
        teacher = teacher_layout(row["W"], row["H"])
        student = model_layout(row["W"], row["H"])
        assert teacher.as_list() == row["basehw_teacher_224"], row
        assert student.as_list() == row["needhw_student_448"], row
        band = row["mask_band"]
        if isinstance(band, dict):
            assert student.axis == band["axis"]
            assert [student.pre, student.pre + student.valid] == band["student_pixels"]
            assert [teacher.pre, teacher.pre + teacher.valid] == band["teacher_pixels"]
        else:
            assert student.axis is None and teacher.axis is None
        assert (student.pre == student.post) == row["symmetric_padding"]


def test_processor_masks_grids_and_tokens_match_every_row(reference, processor):
    rng = np.random.default_rng(0)
    for row in all_rows(reference):
        frame = rng.integers(0, 256, size=(row["H"], row["W"], 3), dtype=np.uint8)
        out = processor(frame, return_teacher_inputs=True)
        mask = out["pixel_values_videos"][0, 0, 3]
        teacher_mask = out["teacher_pixel_values_videos"][0, 0, 3]
        band = row["mask_band"]
        if isinstance(band, dict):
            lo, hi = band["student_pixels"]
            expected = torch.zeros(448, 448)
            (expected[lo:hi] if band["axis"] == "rows" else expected[:, lo:hi]).fill_(1)
            tlo, thi = band["teacher_pixels"]
            expected_teacher = torch.zeros(224, 224)
            (expected_teacher[tlo:thi] if band["axis"] == "rows" else expected_teacher[:, tlo:thi]).fill_(1)
        else:
            expected, expected_teacher = torch.ones(448, 448), torch.ones(224, 224)
        assert torch.equal(mask, expected), row
        assert torch.equal(teacher_mask, expected_teacher), row
        valid = (mask.reshape(32, 14, 32, 14).amax(dim=(1, 3)) > 0).nonzero()
        assert [int(valid[:, 0].min()), int(valid[:, 0].max())] == row["student_patch_grid_valid_rows"]
        assert [int(valid[:, 1].min()), int(valid[:, 1].max())] == row["student_patch_grid_valid_cols"]
        assert list(valid_token_grid(mask)) == row["lsd_grid_hw"]
        assert list(valid_token_grid(teacher_mask, downsample_window=1)) == row["teacher_valid_patch_grid_hw"]
        assert out["video_grids"].tolist() == [[1, *row["lsd_grid_hw"]]]
        assert tokens_per_frame(*row["lsd_grid_hw"]) == row["tokens_per_frame"]


@pytest.mark.parametrize("key", ["1280x720", "17x300", "256x256"])
def test_pixel_values_match_stored_tensors(key, reference, stored, processor):
    width, height = map(int, key.split("x"))
    out = processor(synthetic_frame(width, height), return_teacher_inputs=True)
    for side, got in (
        ("student_448", out["pixel_values_videos"][0, 0]),
        ("teacher_224", out["teacher_pixel_values_videos"][0, 0]),
    ):
        expected = reference_tensor(stored, key, side)
        # The rebuilt tensor is the stored float tensor (checked through the stored checksum).
        assert expected.double().sum().item() == pytest.approx(float(stored[f"{key}.{side}_float_sum"]), rel=1e-6)
        assert got.shape == expected.shape
        assert torch.equal(got[3], expected[3]), f"{key} {side}: mask differs"
        mae = (got[:3] - expected[:3]).abs().mean().item()
        assert mae < 0.02, f"{key} {side}: MAE {mae}"
        # Padding uses the CLIP-mean colour, i.e. the normalised value of int(255 * mean).
        padded = got[3] == 0
        if padded.any():
            background = (torch.tensor(BACKGROUND_RGB) / 255.0 - torch.tensor(OPENAI_CLIP_MEAN)) / torch.tensor(
                OPENAI_CLIP_STD
            )
            expected_pad = torch.tensor(reference["tensors"][key]["padded_value_per_channel"])
            assert torch.allclose(background.float(), expected_pad, atol=1e-6)
            assert torch.allclose(got[:3][:, padded].mean(dim=1), expected_pad, atol=1e-6)


@pytest.mark.parametrize(
    ("size", "width", "height", "band", "grid"),
    [
        # 112: half 56 = 4 patches; 1280x720 -> ceil(56*720/1280/14) = 3 patches, padding (4-3)//2 = 0 before.
        (112, 1280, 720, ("rows", 0, 84), (3, 4)),
        (112, 720, 1280, ("cols", 0, 84), (4, 3)),
        (112, 320, 240, ("rows", 0, 84), (3, 4)),
        (112, 400, 100, ("rows", 28, 56), (1, 4)),
        (112, 64, 64, None, (4, 4)),
        # 224: half 112 = 8 patches; 1280x720 -> ceil(4.5) = 5 patches, 1 patch before (28 px), 2 after.
        (224, 1280, 720, ("rows", 28, 168), (5, 8)),
        (224, 17, 300, ("cols", 84, 112), (8, 1)),
    ],
)
def test_rule_generalises_to_other_sizes(size, width, height, band, grid):
    processor = VideoPandaVideoProcessor(size={"height": size, "width": size})
    out = processor(np.full((height, width, 3), 200, dtype=np.uint8))
    mask = out["pixel_values_videos"][0, 0, 3]
    assert mask.shape == (size, size)
    expected = torch.zeros(size, size)
    if band is None:
        expected.fill_(1)
    elif band[0] == "rows":
        expected[band[1] : band[2]] = 1
    else:
        expected[:, band[1] : band[2]] = 1
    assert torch.equal(mask, expected)
    assert out["video_grids"].tolist() == [[1, *grid]]


def test_layout_invariants_for_many_sizes():
    for size in (112, 224, 448):
        for width in (1, 13, 100, 333, 1920, 4000):
            for height in (1, 17, 99, 480, 1080):
                layout = model_layout(width, height, size)
                assert layout.pre + layout.valid + layout.post == size
                assert 0 <= layout.post - layout.pre <= 28
                assert layout.valid % 28 == 0 and layout.valid > 0
                assert max(layout.new_width, layout.new_height) == size


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError, match="height == width"):
        VideoPandaVideoProcessor(size={"height": 448, "width": 224})
    with pytest.raises(ValueError, match="multiple of 2 \\* patch_size"):
        VideoPandaVideoProcessor(size={"height": 100, "width": 100})


def test_no_flip_by_default_and_augmentation_moves_pixels_and_mask_together():
    processor = VideoPandaVideoProcessor(size={"height": 112, "width": 112})
    frame = np.random.default_rng(1).integers(0, 256, size=(90, 30, 3), dtype=np.uint8)  # portrait, uneven padding
    plain = processor(frame)["pixel_values_videos"]
    assert torch.equal(processor(frame)["pixel_values_videos"], plain)
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        out = processor(frame, do_augment=True, return_teacher_inputs=True)
        pixels = out["pixel_values_videos"]
        if torch.equal(pixels, plain):
            seen.add("plain")
        else:
            assert torch.equal(pixels, plain.flip(-1)), "augmentation must flip pixels and mask together"
            assert torch.equal(
                out["teacher_pixel_values_videos"],
                processor(frame, return_teacher_inputs=True)["teacher_pixel_values_videos"].flip(-1),
            )
            seen.add("flipped")
    assert seen == {"plain", "flipped"}
