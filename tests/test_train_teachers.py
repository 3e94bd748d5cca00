"""Distillation teachers: LanguageBind key names and strict loading, frame order and temporal attention, HF backbones."""

import json

import pytest
import torch
from safetensors.torch import save_file
from videopanda.train.teacher_hf import HFVisionTeacher
from videopanda.train.teacher_languagebind import (
    LanguageBindVideoConfig,
    LanguageBindVideoTeacher,
    languagebind_vision_key_shapes,
)
from videopanda.train.teacher_outputs import frames_of_videos, teacher_patch_mask

SMALL = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "image_size": 56,
    "projection_dim": 24,
    "num_frames": 4,
}


def _random_checkpoint(config, seed=0):
    """A LanguageBind-style full state dict: vision tower, text tower and logit scale, random values."""
    g = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(s, generator=g) * 0.2 for k, s in languagebind_vision_key_shapes(config).items()}
    state["text_model.embeddings.token_embedding.weight"] = torch.randn(10, 8, generator=g)
    state["text_model.final_layer_norm.weight"] = torch.ones(8)
    state["text_projection.weight"] = torch.randn(6, 8, generator=g)
    state["logit_scale"] = torch.tensor(2.6592)
    state["vision_model.embeddings.position_ids"] = torch.arange(config.grid_size**2 + 1).unsqueeze(0)
    return state


def test_full_size_key_names_are_clip_vit_l14_plus_temporal_modules():
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    full = LanguageBindVideoConfig()
    shapes = languagebind_vision_key_shapes(full)
    with torch.device("meta"):
        clip = CLIPVisionModelWithProjection(
            CLIPVisionConfig(
                hidden_size=1024,
                intermediate_size=4096,
                num_hidden_layers=24,
                num_attention_heads=16,
                patch_size=14,
                image_size=224,
                projection_dim=768,
                hidden_act="gelu",
            )
        )
    clip_shapes = {k: tuple(v.shape) for k, v in clip.state_dict().items() if not k.endswith("position_ids")}
    temporal = {k: v for k, v in shapes.items() if ".temporal_" in k}
    assert {k: v for k, v in shapes.items() if k not in temporal} == clip_shapes
    assert len(temporal) == 24 * 11  # embedding + layer norm (2) + q/k/v/out (8) per layer
    assert shapes["vision_model.encoder.layers.23.temporal_embedding"] == (1, 8, 1024)
    assert shapes["vision_model.encoder.layers.0.temporal_attn.out_proj.bias"] == (1024,)
    assert sum(torch.Size(s).numel() for s in shapes.values()) == 303_966_208 + 24 * (
        4 * 1024 * 1025 + 2 * 1024 + 8 * 1024
    )


def test_random_checkpoint_loads_strictly_at_reduced_size():
    config = LanguageBindVideoConfig(**SMALL)
    state = _random_checkpoint(config)
    teacher = LanguageBindVideoTeacher(config)
    assert set(teacher.state_dict()) == set(languagebind_vision_key_shapes(config))
    skipped = teacher.load_checkpoint_state_dict(state)
    assert sorted(skipped) == sorted(k for k in state if k.startswith(("text_", "logit")))
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert not any(p.requires_grad for p in teacher.parameters())

    missing = dict(state)
    del missing["vision_model.encoder.layers.2.temporal_layer_norm1.bias"]
    with pytest.raises(ValueError, match="missing"):
        LanguageBindVideoTeacher(config).load_checkpoint_state_dict(missing)
    extra = {**state, "vision_model.encoder.layers.3.mlp.fc1.bias": torch.zeros(64)}
    with pytest.raises(ValueError, match="unexpected"):
        LanguageBindVideoTeacher(config).load_checkpoint_state_dict(extra)


def test_from_pretrained_reads_a_languagebind_folder(tmp_path):
    config = LanguageBindVideoConfig(**SMALL)
    save_file(_random_checkpoint(config), str(tmp_path / "model.safetensors"))
    hub_config = {
        "model_type": "LanguageBindVideo",
        "projection_dim": 24,
        "vision_config": {**SMALL, "patch_size": 14, "add_time_attn": True, "lora_r": 64},
    }
    (tmp_path / "config.json").write_text(json.dumps(hub_config))
    teacher = LanguageBindVideoTeacher.from_pretrained(tmp_path)
    assert teacher.config.num_hidden_layers == 3 and teacher.config.num_frames == 4
    out = teacher(torch.randn(1, 4, 4, 56, 56))
    assert out.features.shape == (1, 4, 16, 32) and out.grid == (4, 4)


def _teacher(seed=0):
    config = LanguageBindVideoConfig(**SMALL)
    teacher = LanguageBindVideoTeacher(config)
    teacher.load_checkpoint_state_dict(_random_checkpoint(config, seed))
    return teacher


def test_temporal_attention_mixes_frames_of_one_clip_only():
    teacher = _teacher()
    video = torch.randn(2, 4, 3, 56, 56)
    base = teacher(video).features
    changed = video.clone()
    changed[0, 2] += 1.0
    out = teacher(changed).features
    assert not torch.allclose(out[0, 0], base[0, 0], atol=1e-4)  # other frames of the same clip see the change
    torch.testing.assert_close(out[1], base[1])  # the other clip does not


def test_frame_permutation_is_equivariant_without_temporal_embedding_only():
    teacher = _teacher()
    video = torch.randn(2, 4, 3, 56, 56)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        for layer in teacher.vision_model.encoder.layers:
            layer.temporal_embedding.zero_()
    # attention over time is order-agnostic: permuting the frames permutes the features (per clip, same order)
    torch.testing.assert_close(teacher(video[:, perm]).features, teacher(video).features[:, perm], atol=1e-5, rtol=1e-5)
    # the temporal embedding makes the position of a frame matter
    teacher = _teacher()
    assert not torch.allclose(teacher(video[:, perm]).features, teacher(video).features[:, perm], atol=1e-3)


def test_teacher_uses_penultimate_layer_and_drops_class_token():
    teacher = _teacher()
    video = torch.randn(1, 4, 3, 56, 56)
    features = teacher(video).features
    x = teacher.vision_model.pre_layrnorm(teacher.vision_model.embeddings(video[0]))
    for layer in teacher.vision_model.encoder.layers[:2]:  # 3 layers, penultimate output = after layer index 1
        x = layer(x, 4)
    torch.testing.assert_close(features[0], x[:, 1:])


def test_teacher_input_errors():
    teacher = _teacher()
    with pytest.raises(ValueError, match="positions"):
        teacher(torch.randn(1, 5, 3, 56, 56))
    with pytest.raises(ValueError, match="56px"):
        teacher(torch.randn(1, 4, 3, 28, 28))


def test_hf_backbones_give_patch_features_and_renormalise(tmp_path):
    from transformers import Dinov2Config, Dinov2Model, SiglipVisionConfig, SiglipVisionModel

    video = torch.randn(2, 3, 4, 56, 56)
    small = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "patch_size": 14,
    }
    siglip = HFVisionTeacher(SiglipVisionModel(SiglipVisionConfig(image_size=56, **small)))
    assert siglip(video).features.shape == (2, 3, 16, 32)
    Dinov2Model(Dinov2Config(image_size=56, **small)).save_pretrained(tmp_path)
    dino = HFVisionTeacher.from_pretrained(str(tmp_path))
    out = dino(video)
    assert out.features.shape == (2, 3, 16, 32) and out.grid == (4, 4)
    # CLIP-normalised input is converted to ImageNet statistics before the backbone
    raw = video[:, :, :3] * torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(3, 1, 1) + torch.tensor(
        [0.48145466, 0.4578275, 0.40821073]
    ).view(3, 1, 1)
    imagenet = (raw - torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
        3, 1, 1
    )
    direct = dino.backbone(pixel_values=imagenet.flatten(0, 1), output_hidden_states=True).hidden_states[-2][:, 1:]
    torch.testing.assert_close(out.features.flatten(0, 1), direct, atol=1e-5, rtol=1e-5)


def test_teacher_patch_mask_and_frame_selection():
    pixels = torch.zeros(2, 3, 4, 56, 56)
    pixels[0, :, 3, 14:42] = 1  # landscape band: patch rows 1..2
    pixels[1, 0, 3] = 1
    mask = teacher_patch_mask(pixels, 14, (4, 4))
    assert mask[0, 0].any(dim=1).tolist() == [False, True, True, False]
    assert mask[1, 0].all() and not mask[1, 1].any()
    selected = frames_of_videos(mask, torch.tensor([3, 1]))
    assert selected.shape == (4, 4, 4) and torch.equal(selected[3], mask[1, 0])
    with pytest.raises(ValueError, match="frame counts"):
        frames_of_videos(mask, [4, 1])
