"""A reduced `videopanda quickstart` end to end: data, three stages, evaluation, a Hub-ready folder that reloads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from videopanda import quickstart
from videopanda.synthetic import QUESTION_TYPES, load_split


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("quickstart")
    settings = quickstart.small_settings(
        str(root / "model"), stages=quickstart.default_stages(0.01), threads=1, sample_question=True
    )
    results = quickstart.run_quickstart(settings)
    return settings, results


def test_folder_is_complete(run):
    settings, results = run
    folder = Path(settings.output_dir)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "processor_config.json", "chat_template.jinja",
                 "modeling_videopanda.py", "configuration_videopanda.py", "processing_videopanda.py",
                 "video_processing_videopanda.py", "README.md", "training_curve.png", "results.json",
                 "predictions_test.jsonl"):
        assert (folder / name).is_file(), name
    assert (folder / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    config = json.loads((folder / "config.json").read_text())
    assert config["auto_map"]["AutoModelForImageTextToText"].endswith("VideoPandaForConditionalGeneration")
    assert config["image_size"] == settings.image_size and config["use_lste"] and config["use_gstra"]


def test_results_cover_every_question_type(run):
    settings, results = run
    saved = json.loads((Path(settings.output_dir) / "results.json").read_text())
    assert set(QUESTION_TYPES) <= set(saved["accuracy"]) and "overall" in saved["accuracy"]
    assert sum(saved["counts"].values()) == settings.num_test
    assert all(0.0 <= v <= 1.0 for v in saved["accuracy"].values())
    assert [len(v) for v in [saved["stage_seconds"]]] == [3]
    predictions = (Path(settings.output_dir) / "predictions_test.jsonl").read_text().splitlines()
    assert len(predictions) == settings.num_test
    row = json.loads(predictions[0])
    assert row["correct"] == int(row["pred"].strip().lower() == row["answer"])
    assert set(saved["sample"]) == {"video", "question", "answer", "ground_truth"}


def test_model_card_has_measured_results(run):
    from huggingface_hub.repocard import metadata_load

    settings, results = run
    card = Path(settings.output_dir) / "README.md"
    metadata = metadata_load(card)
    entries = metadata["model-index"][0]["results"]
    by_name = {e["dataset"]["name"]: e["metrics"][0]["value"] for e in entries}
    assert by_name["Synthetic VideoQA (colour)"] == round(results["accuracy"]["colour"], 4)
    assert "| direction |" in card.read_text()


def test_ask_on_the_quickstart_folder_in_a_fresh_process(run, tmp_path):
    """What a user does next: the console script, another working directory, offline, remote code only."""
    settings, _ = run
    clip = load_split(settings.data_dir, "test")[2]["video"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "videopanda.cli", "ask", clip, "Which direction does the object move?",
               "--model", str(Path(settings.output_dir).resolve()), "--max-new-tokens", "3", "--device", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("\n") == 1  # the streamed answer, then a newline


def _tiny_training(settings, records, temporal: bool, steps: int = 3):
    local = quickstart.small_settings(settings.output_dir, temporal=temporal, batch_size=4)
    generator = quickstart.seed_everything(local.seed)
    processor = quickstart.build_processor(local)
    model = quickstart.build_model(local, processor.tokenizer)
    clips = quickstart.ClipCache([r["video"] for r in records], processor)
    encoded = quickstart.EncodedRecords(records, processor, clips)
    stage = quickstart.Stage("s", "qa", "all", steps=steps, lr=1e-3, warmup_steps=1)
    return model, processor, clips, encoded, quickstart.train_stage(model, stage, encoded, clips, processor, local,
                                                                     generator)


def test_training_is_deterministic_and_ablation_switches_modules(run):
    settings, _ = run
    records = load_split(settings.data_dir, "train")[:8]
    torch.set_num_threads(1)
    model_a, *_, first = _tiny_training(settings, records, True)
    *_, second = _tiny_training(settings, records, True)
    assert first == second and all(torch.isfinite(torch.tensor(first)))
    ablated, *_ = _tiny_training(settings, records, False, steps=1)
    assert not ablated.config.use_lste and not ablated.config.use_gstra
    assert ablated.model.video_tower.temporal_encoding is None
    assert ablated.model.video_tower.temporal_aggregation is None
    assert model_a.model.video_tower.temporal_encoding is not None


def test_cached_training_inputs_equal_the_processor_output(run):
    """The cache + pre-tokenised records must give exactly what processor(text=..., videos=path) gives."""
    settings, _ = run
    records = load_split(settings.data_dir, "train")[:3]
    processor = quickstart.build_processor(settings)
    clips = quickstart.ClipCache([r["video"] for r in records], processor)
    encoded = quickstart.EncodedRecords(records, processor, clips)
    batch = quickstart.collate(encoded, [0, 1, 2], clips, processor.tokenizer.pad_token_id)
    assert max(len(r["turns"]) for r in records) == 3  # single-object clips are asked all their facts
    for row, record in enumerate(records):
        text = processor.apply_chat_template(quickstart._multi_turn(record["turns"]), tokenize=False)
        reference = processor(text=[text], videos=[record["video"]], return_tensors="pt")
        length = int(batch["attention_mask"][row].sum())
        assert batch["input_ids"][row, :length].tolist() == reference["input_ids"][0].tolist()
        assert torch.equal(batch["video_grids"][row], reference["video_grids"][0])
        assert torch.allclose(batch["pixel_values_videos"][row], reference["pixel_values_videos"][0], atol=2e-3)
        answer_ids = batch["labels"][row][batch["labels"][row] != -100].tolist()
        expected = [word for _, answer in record["turns"] for word in (answer, "</s>")]
        assert processor.tokenizer.decode(answer_ids).split() == expected  # every answer is labelled, nothing else


def test_stage_one_trains_only_the_tower(run):
    settings, _ = run
    processor = quickstart.build_processor(settings)
    model = quickstart.build_model(settings, processor.tokenizer)
    trainable = quickstart.set_trainable(model, "tower")
    assert trainable == sum(p.numel() for p in model.model.video_tower.parameters())
    assert not any(p.requires_grad for p in model.model.language_model.parameters())
    assert not model.lm_head.weight.requires_grad
    with pytest.raises(ValueError, match="trainable"):
        quickstart.set_trainable(model, "llm")


def test_cli_options_reach_the_settings(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(quickstart, "run_quickstart", lambda s: seen.setdefault("s", s) and {
        "accuracy": {"overall": 0.0}, "counts": {}, "train_seconds": 0.0, "total_seconds": 0.0})
    assert quickstart.main(["--small", "--no-temporal", "--seed", "3", "--output-dir", str(tmp_path / "o")]) == 0
    s = seen["s"]
    assert not s.temporal and s.seed == 3 and s.num_train == 40 and s.data_dir == f"{tmp_path / 'o'}-data"


def test_alignment_lr_applies_to_the_tower_only(run):
    """With the LLM's rate at zero and the STAB + projector's above it, one step moves only the tower."""
    settings, _ = run
    records = load_split(settings.data_dir, "train")[:4]
    local = quickstart.small_settings(settings.output_dir, batch_size=4)
    processor = quickstart.build_processor(local)
    model = quickstart.build_model(local, processor.tokenizer)
    clips = quickstart.ClipCache([r["video"] for r in records], processor)
    encoded = quickstart.EncodedRecords(records, processor, clips)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    stage = quickstart.Stage("s", "qa", "all", steps=1, lr=0.0, warmup_steps=1, alignment_lr=1e-2)
    quickstart.train_stage(model, stage, encoded, clips, processor, local, quickstart.seed_everything(0))
    moved = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert moved and all(name.startswith("model.video_tower.") for name in moved)
