"""The LoRA recipe of docs/hub.md: LoRA on the language model, STAB + projector fully trained and saved in the adapter,
adapter save/reload, merge_and_unload, merged model saved as a full remote-code folder; outputs within 1e-5."""

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors import safe_open
from transformers import AutoModelForImageTextToText

from videopanda.hub import save_hub_folder, validate_folder
from videopanda.testing import make_video, tiny_model
from videopanda.testing import tiny_processor as build_processor

# The recipe (docs/hub.md): every linear layer of the language model gets LoRA; the STAB and its projector
# (`video_tower`) are trained in full and stored in the adapter file.
LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def lora_config():
    return LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        task_type="CAUSAL_LM",
        target_modules=LORA_TARGETS,
        modules_to_save=["video_tower"],
    )


def _logits(model, inputs):
    with torch.no_grad():
        return model(**inputs).logits


def test_lora_round_trip(tmp_path):
    processor = build_processor()
    base_dir = save_hub_folder(tiny_model(), processor, tmp_path / "base", card=False)
    clip = make_video(tmp_path / "clip.mp4", num_frames=8)
    messages = [
        {"role": "user", "content": [{"type": "video", "path": str(clip)}, {"type": "text", "text": "what moves ?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "a square moves right ."}]},
    ]
    inputs = processor.apply_chat_template(messages, tokenize=True, return_dict=True, return_tensors="pt")

    model = AutoModelForImageTextToText.from_pretrained(base_dir, trust_remote_code=True)
    peft_model = get_peft_model(model, lora_config())
    trainable = {name for name, p in peft_model.named_parameters() if p.requires_grad}
    assert any("lora_A" in name for name in trainable) and any("video_tower" in name for name in trainable)
    assert not any("lm_head" in name or "embed_tokens" in name for name in trainable)

    # Two real training steps so that LoRA (zero-initialised B) and the tower copy actually change the outputs
    before = _logits(peft_model, inputs)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    peft_model.train()
    for _ in range(2):
        loss = peft_model(**inputs, labels=inputs["input_ids"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    peft_model.eval()
    trained = _logits(peft_model, inputs)
    assert (trained - before).abs().max() > 1e-3

    adapter_dir = tmp_path / "adapter"
    peft_model.save_pretrained(adapter_dir)
    with safe_open(str(adapter_dir / "adapter_model.safetensors"), "pt") as weights:
        keys = list(weights.keys())
    assert any("lora_A" in key for key in keys) and any(".video_tower." in key for key in keys)

    base = AutoModelForImageTextToText.from_pretrained(base_dir, trust_remote_code=True)
    reloaded = PeftModel.from_pretrained(base, adapter_dir).eval()
    torch.testing.assert_close(_logits(reloaded, inputs), trained, atol=1e-5, rtol=0)

    merged = reloaded.merge_and_unload()
    assert not any("lora_" in name for name, _ in merged.named_parameters())
    torch.testing.assert_close(_logits(merged, inputs), trained, atol=1e-5, rtol=0)

    merged_dir = save_hub_folder(
        merged, processor, tmp_path / "merged", repo_id="me/videopanda-lora-merged", base_model=None
    )
    assert validate_folder(merged_dir) == []
    again = AutoModelForImageTextToText.from_pretrained(merged_dir, trust_remote_code=True).eval()
    torch.testing.assert_close(_logits(again, inputs), trained, atol=1e-5, rtol=0)


def test_lora_wraps_only_the_language_model_linears():
    """The target regex hits the 7 linear layers of each decoder layer and nothing else (no lm_head, no STAB)."""
    model = tiny_model()
    peft_model = get_peft_model(model, lora_config())
    wrapped = {name for name, module in peft_model.named_modules() if hasattr(module, "lora_A")}
    assert wrapped and all(".language_model." in name for name in wrapped)
    assert len(wrapped) == 2 * 7  # 2 layers x (q, k, v, o, gate, up, down)
    with pytest.raises(AttributeError):
        peft_model.base_model.model.lm_head.lora_A  # noqa: B018
