"""Bad inputs raise ValueErrors that name the problem."""

import pytest
import torch

from videopanda.testing import frame_token_count, tiny_model, video_pixels

VIDEO = 32000
TOKENS = 4 * frame_token_count(4, 4)  # 4 frames of 112 px


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=0, randomize=False)


def ids_with(num_placeholders):
    return torch.tensor([[1, 319, *([VIDEO] * num_placeholders), 338]])


def test_placeholder_feature_mismatch_names_both_counts(model):
    with pytest.raises(ValueError, match=rf"{TOKENS - 1} placeholder tokens.*{TOKENS} visual tokens"):
        model(input_ids=ids_with(TOKENS - 1), pixel_values_videos=video_pixels(4)[None])


def test_pixel_values_without_placeholders(model):
    with pytest.raises(ValueError, match="no <video> placeholder tokens"):
        model(input_ids=ids_with(0), pixel_values_videos=video_pixels(4)[None])


def test_wrong_channel_count_mentions_the_validity_mask(model):
    with pytest.raises(ValueError, match=r"4 channels .*validity mask.*got 3"):
        model(input_ids=ids_with(TOKENS), pixel_values_videos=video_pixels(4)[None, :, :3])


def test_uint8_pixels_are_rejected(model):
    pixels = (video_pixels(4)[None].clamp(0, 1) * 255).to(torch.uint8)
    with pytest.raises(ValueError, match="floating-point.*uint8"):
        model(input_ids=ids_with(TOKENS), pixel_values_videos=pixels)


def test_pixel_values_must_be_five_dimensional(model):
    with pytest.raises(ValueError, match=r"\(num_videos, num_frames, 4, height, width\)"):
        model(input_ids=ids_with(TOKENS), pixel_values_videos=video_pixels(4))


@pytest.mark.parametrize(
    "grids, message",
    [
        (torch.tensor([[4, 4, 4], [4, 4, 4]]), r"shape \(num_videos, 3\) = \(1, 3\)"),
        (torch.tensor([4, 4, 4]), r"shape \(num_videos, 3\)"),
        (torch.tensor([[5, 4, 4]]), r"must lie in \[1, 4\]"),
        (torch.tensor([[0, 4, 4]]), r"must lie in \[1, 4\]"),
        (torch.tensor([[4.0, 4.0, 4.0]]), "integer tensor"),
    ],
)
def test_bad_video_grids(model, grids, message):
    with pytest.raises(ValueError, match=message):
        model(input_ids=ids_with(TOKENS), pixel_values_videos=video_pixels(4)[None], video_grids=grids)


def test_video_grids_without_pixels(model):
    with pytest.raises(ValueError, match="video_grids was given without pixel_values_videos"):
        model(input_ids=ids_with(0), video_grids=torch.tensor([[4, 4, 4]]))


def test_exactly_one_of_input_ids_and_inputs_embeds(model):
    ids = ids_with(0)
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model(input_ids=ids, inputs_embeds=model.get_input_embeddings()(ids))
    with pytest.raises(ValueError, match="exactly one of input_ids or inputs_embeds"):
        model()
