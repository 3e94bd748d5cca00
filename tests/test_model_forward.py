"""Forward pass of VideoPandaForConditionalGeneration: placeholder scattering, visual-token layout, loss,
logits_to_keep, hidden states, mixed image/video batches, activation checkpointing."""

import pytest
import torch

from videopanda.testing import frame_token_count, tiny_model, video_pixels

VIDEO = 32000
GRID = 4  # 112 px frames, patch 14, window 2 -> 4x4 LSD grid
TOKENS = frame_token_count(GRID, GRID)  # 21


def prompt(num_visual: int, before=(1, 319, 1799), after=(29892, 1724, 338, 372)) -> list[int]:
    return [*before, *([VIDEO] * num_visual), *after]


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=0)


def test_forward_scatters_video_features_and_reports_layout(model):
    pixels = video_pixels(4, seed=1)[None]
    ids = torch.tensor([prompt(4 * TOKENS)])
    with torch.no_grad():
        out = model(input_ids=ids, pixel_values_videos=pixels, output_hidden_states=True)
        features = model.get_video_features(pixels)
    assert out.logits.shape == (1, ids.shape[1], model.config.text_config.vocab_size)
    assert out.frame_grids.tolist() == [[GRID, GRID]] * 4
    assert out.tokens_per_frame.tolist() == [TOKENS] * 4
    assert out.frames_per_video.tolist() == [4]
    assert torch.equal(out.video_token_mask, ids == VIDEO)
    (video_features,) = features.pooler_output  # one tensor per video
    assert video_features.shape == (4 * TOKENS, model.config.text_config.hidden_size)
    assert features.last_hidden_state.shape == (4 * TOKENS, model.config.vision_hidden_size)
    torch.testing.assert_close(out.video_hidden_states, video_features, rtol=0, atol=0)
    # The embeddings entering the first decoder layer are the visual tokens at the placeholders, text elsewhere.
    embeddings = out.hidden_states[0][0]
    torch.testing.assert_close(embeddings[ids[0] == VIDEO], video_features, rtol=0, atol=0)
    text_embeddings = model.get_input_embeddings()(ids[0][ids[0] != VIDEO])
    torch.testing.assert_close(embeddings[ids[0] != VIDEO], text_embeddings, rtol=0, atol=0)


def test_inputs_embeds_path_equals_input_ids_path(model):
    pixels = video_pixels(4, seed=2)[None]
    ids = torch.tensor([prompt(4 * TOKENS)])
    with torch.no_grad():
        by_ids = model(input_ids=ids, pixel_values_videos=pixels).logits
        embeds = model.get_input_embeddings()(ids)
        by_embeds = model(inputs_embeds=embeds, pixel_values_videos=pixels).logits
    torch.testing.assert_close(by_embeds, by_ids, rtol=0, atol=0)


def test_output_hidden_states_and_logits_to_keep(model):
    pixels = video_pixels(4, seed=3)[None]
    ids = torch.tensor([prompt(4 * TOKENS)])
    with torch.no_grad():
        full = model(input_ids=ids, pixel_values_videos=pixels, output_hidden_states=True)
        last = model(input_ids=ids, pixel_values_videos=pixels, logits_to_keep=1)
        last3 = model(input_ids=ids, pixel_values_videos=pixels, logits_to_keep=3)
        picked = model(input_ids=ids, pixel_values_videos=pixels, logits_to_keep=torch.tensor([0, 5, 7]))
    assert len(full.hidden_states) == model.config.text_config.num_hidden_layers + 1
    assert all(h.shape == (1, ids.shape[1], model.config.text_config.hidden_size) for h in full.hidden_states)
    assert last.logits.shape == (1, 1, model.config.text_config.vocab_size)
    torch.testing.assert_close(last.logits, full.logits[:, -1:], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(last3.logits, full.logits[:, -3:], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(picked.logits, full.logits[:, [0, 5, 7]], rtol=1e-5, atol=1e-5)
    assert last.hidden_states is None


def test_loss_is_next_token_cross_entropy_ignoring_masked_labels(model):
    pixels = video_pixels(4, seed=4)[None]
    ids = torch.tensor([prompt(4 * TOKENS)])
    labels = ids.clone()
    labels[ids == VIDEO] = -100
    labels[0, :2] = -100
    with torch.no_grad():
        out = model(input_ids=ids, pixel_values_videos=pixels, labels=labels)
    shift_logits, shift_labels = out.logits[0, :-1], labels[0, 1:]
    expected = torch.nn.functional.cross_entropy(shift_logits.float(), shift_labels, ignore_index=-100)
    torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-6)


def test_return_dict_false_gives_a_tuple(model):
    ids = torch.tensor([prompt(0)])
    with torch.no_grad():
        as_tuple = model(input_ids=ids, return_dict=False)
        as_output = model(input_ids=ids)
    assert isinstance(as_tuple, tuple)
    torch.testing.assert_close(as_tuple[0], as_output.logits, rtol=0, atol=0)


def _single(model, ids, pixels, grids=None):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids]), pixel_values_videos=pixels, video_grids=grids).logits[0]


def test_images_and_videos_mix_in_one_left_padded_batch(model):
    """Row 0: a 4-frame landscape video; row 1: an image (T=1) padded to 4 frames, flagged by video_grids."""
    video = video_pixels(4, valid_rows=(28, 84), seed=5)  # patch rows 2..5 -> LSD grid 2x4 -> 11 tokens per frame
    image = video_pixels(1, seed=6)
    video_ids = prompt(4 * frame_token_count(2, 4))
    image_ids = prompt(TOKENS, before=(1, 450), after=(1724, 338))
    pad = len(video_ids) - len(image_ids)
    assert pad > 0
    ids = torch.tensor([video_ids, [0] * pad + image_ids])
    mask = torch.tensor([[1] * len(video_ids), [0] * pad + [1] * len(image_ids)])
    pixels = torch.stack([video, torch.cat([image, torch.zeros(3, 4, 112, 112)])])
    grids = torch.tensor([[4, 2, 4], [1, GRID, GRID]])
    with torch.no_grad():
        batch = model(input_ids=ids, attention_mask=mask, pixel_values_videos=pixels, video_grids=grids)
    assert batch.tokens_per_frame.tolist() == [11, 11, 11, 11, TOKENS]
    assert batch.frames_per_video.tolist() == [4, 1]
    alone_video = _single(model, video_ids, video[None], torch.tensor([[4, 2, 4]]))
    alone_image = _single(model, image_ids, image[None], torch.tensor([[1, GRID, GRID]]))
    torch.testing.assert_close(batch.logits[0], alone_video, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(batch.logits[1, pad:], alone_image, rtol=1e-4, atol=1e-4)
    # An image given as a 1-frame video without grids takes the same (image) path.
    torch.testing.assert_close(_single(model, image_ids, image[None]), alone_image, rtol=0, atol=0)


def test_two_videos_in_one_prompt_follow_input_order(model):
    first, second = video_pixels(4, seed=7), video_pixels(4, valid_rows=(28, 84), seed=8)
    ids = prompt(4 * TOKENS) + [13] + [VIDEO] * (4 * frame_token_count(2, 4)) + [2]
    pixels = torch.stack([first, second])
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), pixel_values_videos=pixels)
        together = model.get_video_features(pixels).pooler_output
        alone = [model.get_video_features(v[None]).pooler_output[0] for v in pixels]
    assert [len(f) for f in together] == [4 * TOKENS, 4 * frame_token_count(2, 4)]
    for joint, single in zip(together, alone):
        torch.testing.assert_close(joint, single, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.video_hidden_states, torch.cat(alone), rtol=1e-5, atol=1e-5)


def test_pre_encoded_video_features_give_the_same_logits(model):
    pixels = video_pixels(4, seed=10)[None]
    ids = torch.tensor([prompt(4 * TOKENS)])
    with torch.no_grad():
        direct = model(input_ids=ids, pixel_values_videos=pixels).logits
        encoded = model.get_video_features(pixels)
        reused = model(input_ids=ids, mm_encoder_outputs={"video": encoded}).logits
    torch.testing.assert_close(reused, direct, rtol=0, atol=0)


def test_activation_checkpointing_recomputes_layers_and_keeps_gradients():
    model = tiny_model(seed=1)
    pixels = video_pixels(4, seed=9)[None]
    ids = torch.tensor([prompt(4 * TOKENS)])
    labels = ids.masked_fill(ids == VIDEO, -100)
    calls = []
    # The layer checkpoints its `forward`, so its attention runs again on backward (early stop cuts the replay
    # inside the MLP, the last module, so that one is not a good probe).
    model.model.language_model.layers[0].self_attn.register_forward_hook(lambda *_: calls.append(1))

    def gradients():
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)  # same dropout masks in the tower on both runs
        model(input_ids=ids, pixel_values_videos=pixels, labels=labels, use_cache=False).loss.backward()
        return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}

    model.train()
    reference = gradients()
    assert len(calls) == 1
    calls.clear()
    model.activation_checkpointing_enable()
    assert model.is_activation_checkpointing
    checkpointed = gradients()
    assert len(calls) == 2  # forward + recomputation during backward
    assert reference.keys() == checkpointed.keys()
    assert any(name.startswith("model.video_tower.") for name in reference)
    for name in reference:
        torch.testing.assert_close(checkpointed[name], reference[name], rtol=1e-5, atol=1e-6, msg=name)


def test_loss_sums_over_num_items_in_batch_for_gradient_accumulation(model):
    """`Trainer` passes `num_items_in_batch`; the loss is then a sum divided by it, not a per-batch mean."""
    ids = torch.tensor([prompt(0)])
    with torch.no_grad():
        mean = model(input_ids=ids, labels=ids).loss
        scaled = model(input_ids=ids, labels=ids, num_items_in_batch=torch.tensor(10)).loss
    torch.testing.assert_close(scaled, mean * (ids.shape[1] - 1) / 10, rtol=1e-5, atol=1e-6)


def test_an_empty_video_tensor_means_a_text_only_batch(model):
    ids = torch.tensor([prompt(0)])
    with torch.no_grad():
        text_only = model(input_ids=ids).logits
        empty = model(
            input_ids=ids,
            pixel_values_videos=torch.zeros(0, 4, 4, 112, 112),
            video_grids=torch.zeros(0, 3, dtype=torch.long),
        )
    torch.testing.assert_close(empty.logits, text_only, rtol=0, atol=0)
    assert empty.video_hidden_states is None and empty.video_token_mask is None


def test_a_fresh_model_initialises_the_stab_like_the_original():
    """post_init runs the generic init and then every STAB stage's `init_like_original` (zero inits survive)."""
    from videopanda.modeling.modeling_videopanda import VideoPandaForConditionalGeneration
    from videopanda.testing import tiny_config

    torch.manual_seed(0)
    tower = VideoPandaForConditionalGeneration(tiny_config(vision_hidden_size=256)).model.video_tower
    for zero in (
        tower.temporal_encoding.expand.weight,
        tower.temporal_encoding.expand.bias,
        tower.temporal_encoding.position_conv.bias,
        tower.temporal_aggregation.query,
        tower.temporal_aggregation.out_proj.weight,
        tower.temporal_aggregation.fc2.weight,
        tower.class_fusion.balance,
    ):
        assert not zero.any()
    for vector in (tower.row_embedding, tower.frame_aggregation.query):
        assert abs(vector.std().item() - 256**-0.5) < 0.3 * 256**-0.5
    assert tower.patch_embedding.weight.std() > 0 and tower.temporal_encoding.reduce.weight.std() > 0


@pytest.mark.parametrize("vision_initializer_range", [None, 0.02])
def test_stab_layers_start_at_unit_gain_unless_a_fixed_std_is_configured(vision_initializer_range):
    """STAB/projector Linear and Conv weights ~ N(0, 1/fan_in) by default (or the configured std); the LLM keeps
    the generic N(0, initializer_range)."""
    from videopanda.modeling.modeling_videopanda import VideoPandaForConditionalGeneration
    from videopanda.testing import tiny_config

    torch.manual_seed(0)
    config = tiny_config(vision_hidden_size=256, vision_initializer_range=vision_initializer_range)
    model = VideoPandaForConditionalGeneration(config)
    tower = model.model.video_tower
    for layer in (
        tower.patch_embedding,
        tower.temporal_encoding.reduce,
        tower.spatial_downsample.query_proj,
        tower.frame_aggregation.key_proj,
        tower.class_fusion.linear,
        tower.projector.linear_1,
    ):
        expected = vision_initializer_range or layer.weight[0].numel() ** -0.5
        assert abs(layer.weight.std().item() - expected) < 0.1 * expected, layer
        assert layer.bias is None or not layer.bias.any()
    assert not tower.temporal_encoding.expand.weight.any()  # the original's own inits still win
    fc1 = tower.temporal_aggregation.fc1.weight  # Xavier-uniform: std sqrt(2 / (fan_in + fan_out))
    assert abs(fc1.std().item() - (2 / sum(fc1.shape)) ** 0.5) < 0.1 * (2 / sum(fc1.shape)) ** 0.5
    llm_weight = model.model.language_model.layers[0].self_attn.q_proj.weight
    assert abs(llm_weight.std().item() - config.initializer_range) < 0.1 * config.initializer_range
