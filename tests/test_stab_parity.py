"""Parity of the STAB + projector with the original Video-Panda code, on the fixture it produced.

Weights go through the converter's key mapping, the config is built from the fixture's json, so any fixture in the
same format (other widths, heads, frame sizes) passes the same tests.
"""

import pytest
import torch
from test_stab_common import case_input, load_parity_fixture, tower_from_fixture

META, TENSORS = load_parity_fixture()
CASES = sorted(META["cases"])
TOLERANCE = {torch.float64: 1e-10, torch.float32: 5e-5}


@pytest.fixture(scope="module")
def towers():
    return {dtype: tower_from_fixture(META, TENSORS, dtype) for dtype in TOLERANCE}


def _run(tower, case, dtype, fast):
    with torch.no_grad():
        return tower(case_input(META, TENSORS, case).to(dtype), use_fast_path=fast)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("case", CASES)
def test_output_matches_original(towers, case, dtype, fast):
    info = META["cases"][case]
    out = _run(towers[dtype], case, dtype, fast)
    expected = TENSORS[f"cases.{case}.expected_f64"]
    assert out.features.dtype == dtype
    assert list(out.features.shape) == info["expected_shape"]
    torch.testing.assert_close(out.features.double(), expected, atol=TOLERANCE[dtype], rtol=0)
    assert out.frame_grids.tolist() == info["per_frame_hw"]
    assert out.tokens_per_frame.tolist() == info["per_frame_token_counts"]
    assert (out.tokens_per_frame.cumsum(0) - out.tokens_per_frame).tolist() == info["token_offsets"][:-1]


@pytest.mark.parametrize("case", CASES)
def test_intermediates_match_original(towers, case):
    """Every stage the fixture recorded: pre-projector tokens, LSD tokens, FSRA / GSTRA / fused class tokens."""
    info, tower = META["cases"][case], towers[torch.float64]
    out = _run(tower, case, torch.float64, fast=True)

    def close(got, name):
        torch.testing.assert_close(got, TENSORS[f"cases.{case}.inter.{name}"], atol=1e-10, rtol=0)

    close(out.pre_projector, "pre_projector")
    close(out.frame_class_tokens, "fsra_cls")
    # LSD tokens are the pre-projector rows that are neither the class token nor a <row> token.
    is_grid = torch.ones(out.pre_projector.shape[0], dtype=torch.bool)
    for offset, (h, w) in zip(info["token_offsets"], info["per_frame_hw"]):
        is_grid[offset] = False
        is_grid[offset + 1 + w : offset + 1 + h * (w + 1) : w + 1] = False
    close(out.pre_projector[is_grid], "lsd")
    if info["kind"] == "video":
        close(out.chunk_class_tokens, "gstra_cls")
        close(out.class_tokens, "fused_cls")
        assert len(info["chunks"]) == out.chunk_class_tokens.shape[0]
    else:
        assert out.chunk_class_tokens is None
        torch.testing.assert_close(out.class_tokens, out.frame_class_tokens, atol=0, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_patch_embedding_and_lste_match_original(towers, case):
    """The stages before cropping, where the fixture kept them (some were dropped to keep the repository small)."""
    info, tower = META["cases"][case], towers[torch.float64]
    pixels = TENSORS[f"cases.{case}.input"].double()
    names = [n for n in ("patch_embed", "lmhra1", "lste") if f"cases.{case}.inter.{n}" in TENSORS]
    if not names:
        pytest.skip("no pre-crop intermediates stored for this case")
    with torch.no_grad():
        x = tower.patch_embedding(pixels[:, :3])
        if "patch_embed" in names:
            for fast in (True, False):
                got = tower._embed_patches(pixels[:, :3], fast).permute(0, 3, 1, 2)
                torch.testing.assert_close(got, TENSORS[f"cases.{case}.inter.patch_embed"], atol=1e-10, rtol=0)
        lste = tower.temporal_encoding
        for chunk in info.get("chunks") or []:
            clip = x[chunk].transpose(0, 1).unsqueeze(0)
            branch = lste.expand(lste.temporal_conv(lste.reduce(lste.norm(clip))))[0].transpose(0, 1)
            if "lmhra1" in names:
                torch.testing.assert_close(branch, TENSORS[f"cases.{case}.inter.lmhra1"][chunk], atol=1e-10, rtol=0)
            for fast in (True, False):
                encoded = lste(clip.permute(0, 2, 3, 4, 1), fast=fast)[0].permute(0, 3, 1, 2)
                torch.testing.assert_close(encoded, TENSORS[f"cases.{case}.inter.lste"][chunk], atol=1e-10, rtol=0)


def test_projector_of_pre_projector_is_expected(towers):
    """The fixture's own consistency claim, through our projector: projector(pre_projector) == expected."""
    tower = towers[torch.float64]
    for case in CASES:
        with torch.no_grad():
            got = tower.projector(TENSORS[f"cases.{case}.inter.pre_projector"])
        torch.testing.assert_close(got, TENSORS[f"cases.{case}.expected_f64"], atol=1e-12, rtol=0)
