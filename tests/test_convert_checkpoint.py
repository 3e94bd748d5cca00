"""Converter round trip on a synthetic checkpoint in the original format.

The synthetic checkpoint is what a released `VideoPandaLlamaForCausalLM` folder holds, at tiny size: the STAB and
projector weights of the parity fixture (original key names, run through the original code to produce
`expected_f32`), a random 2-layer Llama under `model.layers.*` / `model.embed_tokens.*` / `model.norm.*` / `lm_head.*`
with Vicuna's 32000-row vocabulary, the `model.vision_tower.*` / `model.mm_projector.*` aliases, training-only
distillation keys, rotary `inv_freq` buffers and one key nobody knows; sharded `.bin` (or safetensors) plus index.
"""

import json
import logging
import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM
from videopanda.modeling.modeling_videopanda import VideoPandaForConditionalGeneration

from videopanda.convert_checkpoint import convert_checkpoint, load_original_state_dict, main

FIXTURES = Path(__file__).parent / "fixtures"
VIDEO = 32000
VICUNA_ROWS = 32000
UNKNOWN_KEY = "model.some_future_module.weight"


def parity_fixture():
    meta = json.loads((FIXTURES / "stab_parity_small.json").read_text())
    with safe_open(str(FIXTURES / "stab_parity_small.safetensors"), "pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    return meta, tensors


def original_llm(hidden_size: int) -> LlamaForCausalLM:
    """The LLM part of the original checkpoint: a random 2-layer Llama with weights large enough to matter."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VICUNA_ROWS,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
    )
    llm = LlamaForCausalLM(config)
    with torch.no_grad():
        for parameter in llm.parameters():
            parameter.normal_(0, 0.1) if parameter.ndim > 1 else parameter.add_(torch.randn_like(parameter) * 0.1)
    return llm.eval()


def original_config_json(llm_config: LlamaConfig, stab_width: int) -> dict:
    """A LLaVA-style config.json like the released folders carry (LLM fields plus `mm_*` fields)."""
    return {
        "architectures": ["VideoPandaLlamaForCausalLM"],
        "model_type": "videopanda_llama",
        "hidden_size": llm_config.hidden_size,
        "intermediate_size": llm_config.intermediate_size,
        "num_hidden_layers": llm_config.num_hidden_layers,
        "num_attention_heads": llm_config.num_attention_heads,
        "num_key_value_heads": llm_config.num_key_value_heads,
        "max_position_embeddings": llm_config.max_position_embeddings,
        "rms_norm_eps": llm_config.rms_norm_eps,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "vocab_size": VICUNA_ROWS,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "mm_hidden_size": stab_width,
        "mm_projector_type": "mlp2x_gelu",
        "mm_use_im_start_end": False,
        "unified_pel": True,
    }


def original_state_dict(tensors: dict, llm: LlamaForCausalLM) -> dict:
    state = {key: value for key, value in tensors.items() if not key.startswith("cases.")}
    for key in list(state):  # aliases: the same module objects under a second name
        if key.startswith("model.video_tower."):
            state["model.vision_tower." + key[len("model.video_tower.") :]] = state[key]
        elif key.startswith("model.video_projector."):
            state["model.mm_projector." + key[len("model.video_projector.") :]] = state[key]
    state.update(llm.state_dict())
    d, llm_width = tensors["model.video_tower.class_embedding"].shape[0], llm.config.hidden_size
    generator = torch.Generator().manual_seed(1)
    training_only = {
        "model.video_tower_compressor.norm_layer.0.0.weight": (llm_width,),
        "model.video_tower_compressor.norm_layer.0.1.weight": (d, llm_width),
        "model.video_tower_compressor.input_layer.weight": (d, llm_width),
        "model.video_tower_compressor.output_layer.bias": (d,),
        "model.video_tower_compressor.teacher_layer.embeddings.patch_embedding.weight": (8, 3, 14, 14),
        "model.video_teacher.embeddings.patch_embedding.weight": (8, 3, 14, 14),
    }
    state.update({key: torch.randn(shape, generator=generator) for key, shape in training_only.items()})
    for layer in range(llm.config.num_hidden_layers):  # old LLaVA checkpoints store the rotary buffer
        state[f"model.layers.{layer}.self_attn.rotary_emb.inv_freq"] = torch.rand(llm_width // 8, generator=generator)
    state[UNKNOWN_KEY] = torch.zeros(3)
    return state


def write_sharded(state: dict, folder: Path, fmt: str, shards: int = 3) -> None:
    folder.mkdir(parents=True)
    keys = sorted(state)
    weight_map = {}
    for index in range(shards):
        part = {key: state[key] for key in keys[index::shards]}
        if fmt == "bin":
            name = f"pytorch_model-{index + 1:05d}-of-{shards:05d}.bin"
            torch.save(part, folder / name)
        else:
            name = f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
            save_file({key: value.clone().contiguous() for key, value in part.items()}, str(folder / name))
        weight_map.update(dict.fromkeys(part, name))
    index_name = "pytorch_model.bin.index.json" if fmt == "bin" else "model.safetensors.index.json"
    total = sum(value.numel() * value.element_size() for value in state.values())
    (folder / index_name).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}))


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    meta, tensors = parity_fixture()
    llm = original_llm(meta["config"]["llm_hidden_size"])
    state = original_state_dict(tensors, llm)
    root = tmp_path_factory.mktemp("original")
    for fmt in ("bin", "safetensors"):
        write_sharded(state, root / fmt, fmt)
        (root / fmt / "config.json").write_text(
            json.dumps(original_config_json(llm.config, meta["config"]["stab_hidden_size"]))
        )
    return {"meta": meta, "tensors": tensors, "llm": llm, "state": state, "root": root}


@pytest.fixture(scope="module")
def converted(synthetic, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted") / "videopanda"
    report = convert_checkpoint(synthetic["root"] / "bin", out)
    model, info = VideoPandaForConditionalGeneration.from_pretrained(out, output_loading_info=True)
    return {"dir": out, "report": report, "model": model.eval(), "info": info}


def test_reads_sharded_bin_and_safetensors_identically(synthetic):
    from_bin = load_original_state_dict(synthetic["root"] / "bin")
    from_safetensors = load_original_state_dict(synthetic["root"] / "safetensors")
    assert from_bin.keys() == from_safetensors.keys() == synthetic["state"].keys()
    for key, value in synthetic["state"].items():
        assert torch.equal(from_bin[key], value) and torch.equal(from_safetensors[key], value), key


def test_writes_a_complete_save_pretrained_folder(converted):
    folder = converted["dir"]
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    assert (folder / "modeling_videopanda.py").is_file() and (folder / "configuration_videopanda.py").is_file()
    assert not list(folder.parent.glob(".*converting*")), "temporary folder left behind"
    assert not converted["info"]["missing_keys"]
    assert not converted["info"]["unexpected_keys"]
    config = converted["model"].config
    assert config.vision_hidden_size == 64 and config.projector_type == "mlp2x_gelu"
    assert config.text_config.hidden_size == 96 and config.text_config.num_hidden_layers == 2
    assert config.text_config.vocab_size == 32064  # Vicuna's 32000 rows plus a row for <video>, padded to 64


def test_every_llm_tensor_lands_where_it_should(synthetic, converted):
    ours = converted["model"].state_dict()
    for key, value in synthetic["llm"].state_dict().items():
        target = "model.language_model." + key[len("model.") :] if key.startswith("model.") else key
        if key in ("model.embed_tokens.weight", "lm_head.weight"):
            assert torch.equal(ours[target][:VICUNA_ROWS], value), key
            torch.testing.assert_close(ours[target][VICUNA_ROWS:], value.mean(0).expand(64, -1), rtol=0, atol=1e-6)
        else:
            assert torch.equal(ours[target], value), key


def test_every_stab_tensor_is_used_once(synthetic, converted):
    """Element count of the converted tower = original tower + projector, minus lmhra2 and the BN step counters."""
    original = sum(
        value.numel()
        for key, value in synthetic["tensors"].items()
        if key.startswith(("model.video_tower.", "model.video_projector."))
        and ".lmhra2." not in key
        and not key.endswith("num_batches_tracked")
    )
    ours = sum(
        value.numel() for key, value in converted["model"].state_dict().items() if key.startswith("model.video_tower.")
    )
    assert ours == original


@pytest.mark.parametrize("case", ["video_4frames", "video_landscape", "image"])
def test_converted_stab_reproduces_the_original_outputs(synthetic, converted, case):
    meta, tensors = synthetic["meta"], synthetic["tensors"]
    pixels = tensors[f"cases.{case}.input"]
    pixels = pixels[None] if meta["cases"][case]["kind"] == "video" else pixels[:, None]
    with torch.no_grad():
        features = torch.cat(converted["model"].get_video_features(pixels).pooler_output)
    torch.testing.assert_close(features.double(), tensors[f"cases.{case}.expected_f64"], rtol=0, atol=5e-5)


def test_logits_equal_the_same_weights_assembled_by_hand(synthetic, converted):
    """Original LLM + original STAB outputs spliced into its input embeddings by hand == the converted model."""
    meta, tensors, llm, model = synthetic["meta"], synthetic["tensors"], synthetic["llm"], converted["model"]
    pixels = tensors["cases.video_landscape.input"][None]
    num_visual = meta["cases"]["video_landscape"]["expected_shape"][0]
    ids = torch.tensor([[1, 319, 29871, 13, *([VIDEO] * num_visual), 1724, 338, 372, 29973]])
    with torch.no_grad():
        ours = model(input_ids=ids, pixel_values_videos=pixels).logits
        features = torch.cat(model.get_video_features(pixels).pooler_output)
        spliced = llm.get_input_embeddings()(ids.masked_fill(ids == VIDEO, 0))
        spliced[ids == VIDEO] = features
        by_hand = llm(inputs_embeds=spliced).logits
        spliced[ids == VIDEO] = tensors["cases.video_landscape.expected_f32"]  # the original run's own tokens
        by_original_tokens = llm(inputs_embeds=spliced).logits
    torch.testing.assert_close(ours[..., :VICUNA_ROWS], by_hand, rtol=0, atol=1e-5)
    torch.testing.assert_close(ours[..., :VICUNA_ROWS], by_original_tokens, rtol=0, atol=1e-3)


def test_report_names_dropped_and_unmapped_keys(synthetic, converted, caplog):
    report = converted["report"]
    dropped = {key for keys in report.dropped.values() for key in keys}
    state = synthetic["state"]
    for key in state:
        if (
            key.startswith(
                ("model.vision_tower.", "model.mm_projector.", "model.video_tower_compressor.", "model.video_teacher.")
            )
            or ".lmhra2." in key
            or key.endswith("inv_freq")
        ):
            assert key in dropped, key
    assert report.unmapped == [UNKNOWN_KEY]
    with caplog.at_level(logging.WARNING, logger="videopanda.convert_checkpoint"):
        convert_checkpoint(synthetic["root"] / "safetensors", converted["dir"].parent / "again")
    assert UNKNOWN_KEY in caplog.text


def test_safetensors_source_converts_to_the_same_weights(synthetic, converted, tmp_path):
    out = tmp_path / "from_safetensors"
    assert main([str(synthetic["root"] / "safetensors"), str(out), "--max-shard-size", "1MB"]) == 0
    assert (out / "model.safetensors.index.json").is_file()  # sharded output
    model = VideoPandaForConditionalGeneration.from_pretrained(out)
    reference = converted["model"].state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(value, reference[key]), key


def test_refuses_a_checkpoint_with_a_missing_weight_and_writes_nothing(synthetic, tmp_path):
    state = dict(synthetic["state"])
    del state["model.layers.1.mlp.down_proj.weight"]
    src = tmp_path / "broken"
    write_sharded(state, src, "bin", shards=2)
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"model.language_model.layers.1.mlp.down_proj.weight"):
        convert_checkpoint(src, out)
    assert not out.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken"]


def test_refuses_an_index_that_names_absent_shards(synthetic, tmp_path):
    src = tmp_path / "incomplete"
    write_sharded(synthetic["state"], src, "bin", shards=2)
    (src / "pytorch_model-00002-of-00002.bin").unlink()
    with pytest.raises(ValueError, match="pytorch_model-00002-of-00002.bin"):
        convert_checkpoint(src, tmp_path / "out")


def test_refuses_a_non_empty_destination(synthetic, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        convert_checkpoint(synthetic["root"] / "bin", out)
    assert (out / "keep.txt").read_text() == "mine"


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "save_pretrained" in capsys.readouterr().out


def test_dtype_option_casts_floating_weights(synthetic, tmp_path):
    out = tmp_path / "bf16"
    convert_checkpoint(synthetic["root"] / "safetensors", out, dtype="bfloat16")
    with safe_open(str(out / "model.safetensors"), "pt") as handle:
        dtypes = {handle.get_slice(key).get_dtype() for key in handle.keys()}  # noqa: SIM118
    assert dtypes == {"BF16"}
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # not the private mode of the temporary folder


@pytest.mark.parametrize("fmt", ["bin", "safetensors"])
def test_reads_a_single_unsharded_file(synthetic, tmp_path, fmt):
    state = {key: value for key, value in synthetic["state"].items() if key.startswith("model.video_projector.")}
    if fmt == "bin":
        torch.save(state, tmp_path / "pytorch_model.bin")
    else:
        save_file(state, str(tmp_path / "model.safetensors"))
    loaded = load_original_state_dict(tmp_path)
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], v) for k, v in state.items())


def test_config_from_shapes_alone_when_config_json_has_no_llm_fields(synthetic):
    from videopanda.convert_checkpoint import config_from_original

    config = config_from_original({"num_attention_heads": 4, "num_key_value_heads": 2}, synthetic["state"])
    assert (config.text_config.hidden_size, config.text_config.num_hidden_layers) == (96, 2)
    assert config.text_config.intermediate_size == 192 and config.text_config.vocab_size == 32064
    assert (config.vision_hidden_size, config.patch_size, config.projector_type) == (64, 14, "mlp2x_gelu")


def test_full_size_original_layout_fits_the_paper_configuration():
    """The released 7B layout (STAB/projector/compressor keys of full_size_keys.json + Vicuna-7B), as meta tensors:
    the derived config is the paper's, and every weight of the model gets exactly one source of the right shape."""
    from videopanda.conversion import convert_original_state_dict
    from videopanda.convert_checkpoint import _check_against_model, config_from_original

    def meta(*shape, dtype=torch.float16):
        return torch.empty(shape, device="meta", dtype=dtype)

    listing = json.loads((FIXTURES / "full_size_keys.json").read_text())
    state = {
        entry["key"]: meta(*entry["shape"], dtype=torch.int64 if entry["dtype"] == "int64" else torch.float16)
        for module in listing["modules"].values()
        for group in module["groups"].values()
        for entry in group["keys"]
    }
    hidden, mlp, layers, rows = 4096, 11008, 32, 32000
    state.update({"model.embed_tokens.weight": meta(rows, hidden), "lm_head.weight": meta(rows, hidden)})
    state["model.norm.weight"] = meta(hidden)
    for layer in range(layers):
        prefix = f"model.layers.{layer}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            state[f"{prefix}self_attn.{name}.weight"] = meta(hidden, hidden)
        state.update({f"{prefix}mlp.{name}.weight": meta(mlp, hidden) for name in ("gate_proj", "up_proj")})
        state[f"{prefix}mlp.down_proj.weight"] = meta(hidden, mlp)
        state.update(
            {f"{prefix}{name}.weight": meta(hidden) for name in ("input_layernorm", "post_attention_layernorm")}
        )
    llava_config = {
        "hidden_size": hidden,
        "intermediate_size": mlp,
        "num_hidden_layers": layers,
        "vocab_size": rows,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "mm_projector_type": "mlp2x_gelu",
        "mm_hidden_size": 1024,
    }

    config = config_from_original(llava_config, state)
    assert (config.vision_hidden_size, config.patch_size, config.lste_reduction) == (1024, 14, 1.5)
    assert config.text_config.vocab_size == 32064 and config.video_token_id == 32000
    converted, report = convert_original_state_dict(state, config)
    assert not report.unmapped
    with torch.device("meta"):
        model = VideoPandaForConditionalGeneration(config)
    _check_against_model(converted, model)  # raises on a missing, extra or mis-shaped weight
    assert len(converted) == len(model.state_dict())
