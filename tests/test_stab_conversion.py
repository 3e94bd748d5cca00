"""The pure key mapping of the converter (``videopanda.conversion.convert_original_state_dict``)."""

import json

import pytest
import torch
from test_stab_common import FIXTURES, text_config_for
from videopanda.modeling import VideoPandaConfig
from videopanda.modeling.modeling_stab import VideoPandaVisionTower

from videopanda.conversion import (
    DROPPED_ALIAS,
    DROPPED_BOOKKEEPING,
    DROPPED_DISABLED,
    DROPPED_TIED,
    DROPPED_TRAINING,
    DROPPED_UNUSED,
    convert_original_state_dict,
)


def _full_size_original_keys():
    """``{key: shape}`` of every module listed in ``full_size_keys.json``."""
    listing = json.loads((FIXTURES / "full_size_keys.json").read_text())
    return {
        entry["key"]: entry["shape"]
        for module in listing["modules"].values()
        for group in module["groups"].values()
        for entry in group["keys"]
    }


def test_every_full_size_key_maps_with_matching_shapes():
    originals = _full_size_original_keys()
    with torch.device("meta"):
        state_dict = {key: torch.empty(shape) for key, shape in originals.items()}
        converted, report = convert_original_state_dict(state_dict, VideoPandaConfig(), expect_language_model=False)
        ours = {
            f"model.video_tower.{k}": v.shape for k, v in VideoPandaVisionTower(VideoPandaConfig()).state_dict().items()
        }
    assert report.unmapped == []
    assert set(converted) == set(ours)
    assert all(converted[key].shape == ours[key] for key in ours)
    dropped = {key for keys in report.dropped.values() for key in keys}
    assert dropped | {k for k in originals if k.startswith(("model.video_tower.", "model.video_projector."))} >= set(
        originals
    )
    assert all(".lmhra2." in key for key in report.dropped[DROPPED_UNUSED])
    assert len(report.dropped[DROPPED_UNUSED]) == 10  # its num_batches_tracked counts as bookkeeping
    assert all(key.endswith("num_batches_tracked") for key in report.dropped[DROPPED_BOOKKEEPING])
    assert {key.split(".")[1] for key in report.dropped[DROPPED_TRAINING]} == {
        "video_tower_compressor",
        "vision_tower_compressor",
    }
    # Every original STAB/projector parameter except lmhra2 lands somewhere: the element counts agree.
    kept = sum(
        torch.Size(s).numel()
        for k, s in originals.items()
        if k.startswith(("model.video_tower.", "model.video_projector."))
        and ".lmhra2." not in k
        and not k.endswith("num_batches_tracked")
    )
    assert kept == sum(shape.numel() for shape in ours.values())


def _tiny_original(config, seed=0):
    """A small original-format state dict: STAB + projector + Llama, with aliases and training-only keys."""
    generator = torch.Generator().manual_seed(seed)
    tower_names = {  # original name -> shape, at the tiny config's sizes
        "class_embedding": (32,),
        "split_embedding": (32,),
        "temporal_cls_token": (1, 1, 32),
        "balance": (32,),
        "patch_embedding.weight": (32, 3, 14, 14),
        **{
            f"lmhra{i}.pos_embed.0.{n}": (32,)
            for i in (1, 2)
            for n in ("weight", "bias", "running_mean", "running_var")
        },
        **{f"lmhra{i}.pos_embed.0.num_batches_tracked": () for i in (1, 2)},
        **{f"lmhra{i}.pos_embed.1.weight": (21, 32, 1, 1, 1) for i in (1, 2)},
        **{f"lmhra{i}.pos_embed.1.bias": (21,) for i in (1, 2)},
        **{f"lmhra{i}.pos_embed.2.weight": (21, 1, 3, 1, 1) for i in (1, 2)},
        **{f"lmhra{i}.pos_embed.2.bias": (21,) for i in (1, 2)},
        **{f"lmhra{i}.pos_embed.3.weight": (32, 21, 1, 1, 1) for i in (1, 2)},
        **{f"lmhra{i}.pos_embed.3.bias": (32,) for i in (1, 2)},
        "dpe.weight": (32, 1, 3, 3, 3),
        "dpe.bias": (32,),
        "dec.attn.in_proj_weight": (96, 32),
        "dec.attn.in_proj_bias": (96,),
        "dec.attn.out_proj.weight": (32, 32),
        "dec.attn.out_proj.bias": (32,),
        **{f"dec.ln_{i}.{n}": (32,) for i in (1, 2, 3) for n in ("weight", "bias")},
        "dec.mlp.c_fc.weight": (128, 32),
        "dec.mlp.c_fc.bias": (128,),
        "dec.mlp.c_proj.weight": (32, 128),
        "dec.mlp.c_proj.bias": (32,),
        "proj.0.weight": (32,),
        "proj.0.bias": (32,),
        "proj.2.weight": (32, 32),
        "proj.2.bias": (32,),
        **{
            f"{a}_attention.{p}.0.{n}": (32,)
            for a in ("local", "global")
            for p in ("q", "kv")
            for n in ("weight", "bias")
        },
        **{f"{a}_attention.q.1.weight": (32, 32) for a in ("local", "global")},
        **{f"{a}_attention.kv.1.weight": (64, 32) for a in ("local", "global")},
        **{
            f"{a}_attention.proj.{n}": (32, 32) if n == "weight" else (32,)
            for a in ("local", "global")
            for n in ("weight", "bias")
        },
    }
    state = {}
    for name, shape in tower_names.items():
        value = (
            torch.zeros(shape, dtype=torch.long)
            if name.endswith("tracked")
            else torch.randn(shape, generator=generator)
        )
        state[f"model.video_tower.{name}"] = value
        state[f"model.vision_tower.{name}"] = value.clone()
    hidden = config.text_config.hidden_size
    for name, shape in {
        "0.weight": (hidden, 32),
        "0.bias": (hidden,),
        "2.weight": (hidden, hidden),
        "2.bias": (hidden,),
    }.items():
        state[f"model.video_projector.{name}"] = torch.randn(shape, generator=generator)
        state[f"model.mm_projector.{name}"] = state[f"model.video_projector.{name}"].clone()
    from transformers import AutoModelForCausalLM

    llm = AutoModelForCausalLM.from_config(config.text_config)
    for key, value in llm.state_dict().items():
        if key in ("model.embed_tokens.weight", "lm_head.weight"):
            value = value[:100]  # fewer rows than the target vocabulary, like Vicuna's 32000 vs 32064
        state[key] = torch.randn(value.shape, generator=generator)
    state["model.video_tower_compressor.input_layer.weight"] = torch.randn(4, 4)
    state["model.video_teacher.encoder.weight"] = torch.randn(4, 4)
    return state


@pytest.fixture(scope="module")
def tiny():
    config = VideoPandaConfig(
        text_config=text_config_for(48) | {"vocab_size": 128}, vision_hidden_size=32, vision_num_heads=4, image_size=112
    )
    return config, _tiny_original(config)


def test_tiny_checkpoint_lands_where_it_should(tiny):
    config, original = tiny
    converted, report = convert_original_state_dict(original, config)
    assert report.unmapped == []
    assert len(report.dropped[DROPPED_ALIAS]) == len(
        [k for k in original if k.startswith(("model.vision_tower.", "model.mm_projector."))]
    )
    assert sorted(report.dropped[DROPPED_TRAINING]) == [
        "model.video_teacher.encoder.weight",
        "model.video_tower_compressor.input_layer.weight",
    ]
    in_proj = original["model.video_tower.dec.attn.in_proj_weight"]
    torch.testing.assert_close(converted["model.video_tower.temporal_aggregation.k_proj.weight"], in_proj[32:64])
    kv = original["model.video_tower.local_attention.kv.1.weight"]
    torch.testing.assert_close(converted["model.video_tower.spatial_downsample.value_proj.weight"], kv[32:])
    torch.testing.assert_close(
        converted["model.video_tower.frame_aggregation.query"], original["model.video_tower.class_embedding"]
    )
    torch.testing.assert_close(
        converted["model.video_tower.projector.linear_2.weight"], original["model.video_projector.2.weight"]
    )
    torch.testing.assert_close(
        converted["model.language_model.layers.0.mlp.up_proj.weight"], original["model.layers.0.mlp.up_proj.weight"]
    )
    embed = converted["model.language_model.embed_tokens.weight"]
    assert embed.shape[0] == 128 and report.padded["model.language_model.embed_tokens.weight"] == (100, 128)
    torch.testing.assert_close(embed[:100], original["model.embed_tokens.weight"])
    torch.testing.assert_close(embed[100:], original["model.embed_tokens.weight"].mean(0).expand(28, -1))
    assert converted["lm_head.weight"].shape[0] == 128
    # The converted tower loads strictly.
    tower = VideoPandaVisionTower(config)
    prefix = "model.video_tower."
    tower.load_state_dict({k[len(prefix) :]: v for k, v in converted.items() if k.startswith(prefix)}, strict=True)


def test_missing_weight_is_refused(tiny):
    config, original = tiny
    broken = {k: v for k, v in original.items() if not k.endswith("dpe.weight")}
    with pytest.raises(ValueError, match="position_conv.weight"):
        convert_original_state_dict(broken, config)
    no_llm = {k: v for k, v in original.items() if not k.startswith("model.layers.0.self_attn.")}
    with pytest.raises(ValueError, match="lacks"):
        convert_original_state_dict(no_llm, config)


def test_alias_only_checkpoint_and_inconsistent_alias(tiny):
    config, original = tiny
    alias_only = {k: v for k, v in original.items() if not k.startswith("model.video_tower.")}
    converted, report = convert_original_state_dict(alias_only, config)
    assert "model.video_tower.row_embedding" in converted and report.unmapped == []
    broken = dict(original)
    broken["model.vision_tower.balance"] = original["model.video_tower.balance"] + 1
    with pytest.raises(ValueError, match="alias"):
        convert_original_state_dict(broken, config)


def test_unknown_keys_are_reported_and_wrong_shapes_refused(tiny):
    config, original = tiny
    extra = dict(
        original, **{"model.something_new.weight": torch.zeros(2), "model.video_tower.mystery": torch.zeros(2)}
    )
    _, report = convert_original_state_dict(extra, config)
    assert sorted(report.unmapped) == ["model.something_new.weight", "model.video_tower.mystery"]
    wrong = dict(
        original, **{"model.video_tower.balance": torch.zeros(31), "model.vision_tower.balance": torch.zeros(31)}
    )
    with pytest.raises(ValueError, match="wrong shape"):
        convert_original_state_dict(wrong, config)


def test_disabled_stages_drop_their_weights(tiny):
    config, original = tiny
    ablated = VideoPandaConfig(**{**config.to_dict(), "use_gstra": False, "text_config": config.text_config.to_dict()})
    converted, report = convert_original_state_dict(original, ablated)
    assert not any("temporal_aggregation" in k or "class_fusion" in k for k in converted)
    assert "model.video_tower.dec.mlp.c_fc.weight" in report.dropped[DROPPED_DISABLED]


def test_surplus_layers_are_refused_and_tied_heads_dropped(tiny):
    config, original = tiny
    extra = dict(original, **{"model.layers.7.mlp.up_proj.weight": torch.zeros(96, 48)})
    with pytest.raises(ValueError, match="no place"):
        convert_original_state_dict(extra, config)
    tied = VideoPandaConfig(
        **{
            **config.to_dict(),
            "tie_word_embeddings": True,
            "text_config": {**config.text_config.to_dict(), "tie_word_embeddings": True},
        }
    )
    converted, report = convert_original_state_dict(original, tied)
    assert "lm_head.weight" not in converted
    assert report.dropped[DROPPED_TIED] == ["lm_head.weight"]
