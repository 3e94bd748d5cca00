"""Generation: greedy KV-cache decoding equals a no-cache argmax loop, video inputs are consumed at prefill only, and a
left-padded batch equals one-by-one generation."""

import pytest
import torch

from videopanda.testing import frame_token_count, tiny_model, video_pixels

VIDEO = 32000
NEW_TOKENS = 6


@pytest.fixture(scope="module")
def model():
    model = tiny_model(seed=3)
    model.generation_config.pad_token_id = 0
    model.generation_config.eos_token_id = None  # always produce NEW_TOKENS tokens
    return model


def argmax_loop(model, ids, pixels, grids=None, steps=NEW_TOKENS):
    """Reference decoding: re-run the full sequence (with the video) every step, no cache, take the argmax."""
    ids = ids.clone()
    for _ in range(steps):
        with torch.no_grad():
            logits = model(input_ids=ids, pixel_values_videos=pixels, video_grids=grids, use_cache=False).logits
        ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids


def test_greedy_generate_equals_argmax_loop_without_cache(model):
    pixels = video_pixels(4, seed=11)[None]
    ids = torch.tensor([[1, 319, *([VIDEO] * 4 * frame_token_count(4, 4)), 1724, 338]])
    with torch.no_grad():
        generated = model.generate(
            input_ids=ids, pixel_values_videos=pixels, max_new_tokens=NEW_TOKENS, do_sample=False
        )
    assert generated.shape == (1, ids.shape[1] + NEW_TOKENS)
    assert torch.equal(generated, argmax_loop(model, ids, pixels))


def test_video_inputs_reach_the_model_at_prefill_only(model):
    """`generate` encodes the video once (get_video_features -> mm_encoder_outputs) and feeds it at prefill only;
    `pixel_values_videos`, `video_grids` and `mm_encoder_outputs` are all in its drop-after-prefill list."""
    from transformers.generation.utils import MULTIMODAL_INPUTS_TO_DROP_OUTSIDE_PREFILL

    assert {"pixel_values_videos", "video_grids", "mm_encoder_outputs"} <= set(
        MULTIMODAL_INPUTS_TO_DROP_OUTSIDE_PREFILL
    )
    pixels = video_pixels(4, seed=12)[None]
    grids = torch.tensor([[4, 4, 4]])
    ids = torch.tensor([[1, *([VIDEO] * 4 * frame_token_count(4, 4)), 338]])
    seen, tower_calls = [], []

    def record(module, args, kwargs):
        has_video = kwargs.get("pixel_values_videos") is not None or bool(kwargs.get("mm_encoder_outputs"))
        length = (kwargs["inputs_embeds"] if kwargs.get("inputs_embeds") is not None else kwargs["input_ids"]).shape[1]
        seen.append((has_video, kwargs.get("video_grids") is not None, length))

    handles = [
        model.model.register_forward_pre_hook(record, with_kwargs=True),
        model.model.video_tower.register_forward_hook(lambda *_: tower_calls.append(1)),
    ]
    try:
        with torch.no_grad():
            out = model.generate(
                input_ids=ids, pixel_values_videos=pixels, video_grids=grids, max_new_tokens=3, do_sample=False
            )
    finally:
        for handle in handles:
            handle.remove()
    assert seen == [(True, False, ids.shape[1]), (False, False, 1), (False, False, 1)]
    assert len(tower_calls) == 1
    assert torch.equal(out, argmax_loop(model, ids, pixels, grids, steps=3))


def test_left_padded_batch_of_two_videos_equals_single_runs(model):
    long_video = video_pixels(4, seed=13)
    short_grid = (2, 4)
    landscape = video_pixels(4, valid_rows=(28, 84), seed=14)
    first = [1, 319, 1799, *([VIDEO] * 4 * frame_token_count(4, 4)), 1724, 338, 372]
    second = [1, 450, *([VIDEO] * 4 * frame_token_count(*short_grid)), 338]
    pad = len(first) - len(second)
    ids = torch.tensor([first, [0] * pad + second])
    mask = torch.tensor([[1] * len(first), [0] * pad + [1] * len(second)])
    pixels = torch.stack([long_video, landscape])
    with torch.no_grad():
        batch = model.generate(
            input_ids=ids, attention_mask=mask, pixel_values_videos=pixels, max_new_tokens=NEW_TOKENS, do_sample=False
        )
        alone = [
            model.generate(
                input_ids=torch.tensor([row]),
                pixel_values_videos=video[None],
                max_new_tokens=NEW_TOKENS,
                do_sample=False,
            )[0]
            for row, video in ((first, long_video), (second, landscape))
        ]
    assert torch.equal(batch[0], alone[0])
    assert torch.equal(batch[1, pad:], alone[1])
    assert not torch.equal(alone[0][-NEW_TOKENS:], alone[1][-NEW_TOKENS:])  # the two prompts really differ


def test_generate_with_an_image_and_a_video_in_one_batch(model):
    video, image = video_pixels(4, seed=15), video_pixels(1, seed=16)
    tokens = frame_token_count(4, 4)
    first = [1, *([VIDEO] * 4 * tokens), 338]
    second = [1, 450, 1799, *([VIDEO] * tokens), 338]
    pad = len(first) - len(second)
    pixels = torch.stack([video, torch.cat([image, torch.zeros(3, 4, 112, 112)])])
    grids = torch.tensor([[4, 4, 4], [1, 4, 4]])
    with torch.no_grad():
        batch = model.generate(
            input_ids=torch.tensor([first, [0] * pad + second]),
            attention_mask=torch.tensor([[1] * len(first), [0] * pad + [1] * len(second)]),
            pixel_values_videos=pixels,
            video_grids=grids,
            max_new_tokens=NEW_TOKENS,
            do_sample=False,
        )
    image_alone = argmax_loop(model, torch.tensor([second]), image[None], torch.tensor([[1, 4, 4]]))
    assert torch.equal(batch[1, pad:], image_alone[0])


def test_beam_search_with_several_returns_per_prompt_equals_single_runs(model):
    """`generate` expands the pre-encoded per-video features for beams / return sequences (tuple pooler_output)."""
    first_video, second_video = video_pixels(4, seed=17), video_pixels(4, valid_rows=(28, 84), seed=18)
    first = [1, 319, *([VIDEO] * 4 * frame_token_count(4, 4)), 338]
    second = [1, *([VIDEO] * 4 * frame_token_count(2, 4)), 338, 450]
    pad = len(first) - len(second)
    settings = {"max_new_tokens": 4, "num_beams": 2, "num_return_sequences": 2, "do_sample": False}
    with torch.no_grad():
        batch = model.generate(
            input_ids=torch.tensor([first, [0] * pad + second]),
            attention_mask=torch.tensor([[1] * len(first), [0] * pad + [1] * len(second)]),
            pixel_values_videos=torch.stack([first_video, second_video]),
            **settings,
        )
        alone_first = model.generate(input_ids=torch.tensor([first]), pixel_values_videos=first_video[None], **settings)
        alone_second = model.generate(
            input_ids=torch.tensor([second]), pixel_values_videos=second_video[None], **settings
        )
    assert torch.equal(batch[:2], alone_first)
    assert torch.equal(batch[2:, pad:], alone_second)
