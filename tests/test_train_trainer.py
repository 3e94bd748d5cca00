"""Trainer integration on hand-built batches: GA equivalence, TRL vs Trainer, stage-1 freeze, LR groups, saving."""

import pytest
import torch
from transformers import TrainingArguments
from videopanda.train.distillation_trainer_mixin import HEAD_FILE, DistillationArguments
from videopanda.train.model_setup import disable_dropout, freeze_batch_norm_statistics, freeze_language_model
from videopanda.train.teacher_languagebind import LanguageBindVideoConfig, LanguageBindVideoTeacher
from videopanda.train.trainer import VideoPandaTrainer

from videopanda.testing import frame_token_count, tiny_model, video_pixels

SIZE, FRAMES = 56, 4


def _teacher():
    config = LanguageBindVideoConfig(
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=SIZE // 2,
        projection_dim=8,
        num_frames=FRAMES,
    )
    torch.manual_seed(7)
    teacher = LanguageBindVideoTeacher(config)
    with torch.no_grad():
        for p in teacher.parameters():
            p.normal_(0, 0.2)
    return teacher


def _sample(seed, valid_frames, answer_len):
    """One sequence: <s>, 4 frames of visual tokens (the last ones all-zero padding frames), then an answer."""
    g = torch.Generator().manual_seed(seed)
    pixels = video_pixels(FRAMES, size=SIZE, seed=seed)
    pixels[valid_frames:] = 0
    visual = FRAMES * frame_token_count(2, 2)  # 56 px: 4x4 patches, 2x2 LSD grid; padded frames crop to 2x2 too
    answer = torch.randint(3, 500, (answer_len,), generator=g)
    ids = torch.cat([torch.tensor([1, 40, 41]), torch.full((visual,), 32000), answer])
    labels = ids.clone()
    labels[: 3 + visual] = -100
    teacher = torch.nn.functional.interpolate(pixels, size=(SIZE // 2, SIZE // 2), mode="nearest")
    return {
        "input_ids": ids,
        "labels": labels,
        "pixel_values_videos": pixels,
        "video_grids": torch.tensor([FRAMES, 2, 2]),
        "teacher_pixel_values_videos": teacher,
    }


def _collate(samples):
    length = max(len(s["input_ids"]) for s in samples)
    batch = {"input_ids": [], "labels": [], "attention_mask": []}
    for s in samples:
        pad = length - len(s["input_ids"])
        batch["input_ids"].append(torch.cat([s["input_ids"], torch.zeros(pad, dtype=torch.long)]))
        batch["labels"].append(torch.cat([s["labels"], torch.full((pad,), -100)]))
        batch["attention_mask"].append(
            torch.cat([torch.ones(len(s["input_ids"]), dtype=torch.long), torch.zeros(pad, dtype=torch.long)])
        )
    batch = {k: torch.stack(v) for k, v in batch.items()}
    for key in ("pixel_values_videos", "video_grids", "teacher_pixel_values_videos"):
        batch[key] = torch.stack([s[key] for s in samples])
    return batch


SAMPLES = [_sample(0, valid_frames=4, answer_len=9), _sample(1, valid_frames=2, answer_len=4)]


def _model():
    model = tiny_model(seed=3, image_size=SIZE, num_frames=FRAMES)
    freeze_batch_norm_statistics(model)
    disable_dropout(model)
    return model


def _trainer(tmp_path, per_device, accumulation, cls=VideoPandaTrainer, **kwargs):
    args_cls = kwargs.pop("args_cls", TrainingArguments)
    args = args_cls(
        output_dir=str(tmp_path),
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        use_cpu=True,
        report_to=[],
        remove_unused_columns=False,
        learning_rate=1e-3,
        **kwargs.pop("extra_args", {}),
    )
    dataset = kwargs.pop("train_dataset", SAMPLES)
    torch.manual_seed(11)  # the distillation head is created inside the trainer
    return cls(
        model=_model(),
        args=args,
        train_dataset=dataset,
        data_collator=_collate,
        teacher=_teacher(),
        distillation=DistillationArguments(layer_stride=1),
        **kwargs,
    )


def _one_optimizer_step_gradients(trainer):
    loader = trainer.get_train_dataloader()
    batches, num_items = trainer.get_batch_samples(
        iter(loader), trainer.args.gradient_accumulation_steps, trainer.args.device
    )
    trainer.current_gradient_accumulation_steps = len(batches)
    trainer.model.zero_grad()
    total = sum(trainer.training_step(trainer.model, batch, num_items) for batch in batches)
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return total.item(), grads, {k: v.item() for k, v in trainer._accumulated.items()}


def test_gradient_accumulation_matches_the_full_batch(tmp_path):
    loss_a, grads_a, parts_a = _one_optimizer_step_gradients(_trainer(tmp_path / "a", per_device=1, accumulation=2))
    loss_b, grads_b, parts_b = _one_optimizer_step_gradients(_trainer(tmp_path / "b", per_device=2, accumulation=1))
    assert loss_a == pytest.approx(loss_b, abs=1e-5)
    assert parts_a == pytest.approx(parts_b, abs=1e-5)
    assert parts_a["distill_loss"] > 0 and parts_a["lm_loss"] > 0
    assert set(grads_a) == set(grads_b) and any(n.startswith("distillation_head.") for n in grads_a)
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=1e-5, rtol=1e-4, msg=name)


def test_trl_and_trainer_paths_give_the_same_loss(tmp_path):
    from datasets import Dataset
    from trl import SFTConfig
    from videopanda.train.sft_trainer import VideoPandaSFTTrainer

    from videopanda.testing import tiny_processor

    batch = _collate(SAMPLES)
    plain = _trainer(tmp_path / "hf", per_device=2, accumulation=1)
    sft = _trainer(
        tmp_path / "trl",
        per_device=2,
        accumulation=1,
        cls=VideoPandaSFTTrainer,
        args_cls=SFTConfig,
        processing_class=tiny_processor(SIZE),
        train_dataset=Dataset.from_list([{k: v.tolist() for k, v in s.items()} for s in SAMPLES]),
        extra_args={
            "max_length": None,
            "dataset_kwargs": {"skip_prepare_dataset": True},
            "bf16": False,
            "activation_checkpointing": False,
        },
    )
    for trainer in (plain, sft):
        trainer.model.train()
    losses = [trainer.compute_loss(trainer.model, dict(batch)) for trainer in (plain, sft)]
    assert losses[0].item() == pytest.approx(losses[1].item(), abs=1e-5)
    assert plain._accumulated["distill_loss"].item() == pytest.approx(sft._accumulated["distill_loss"].item(), abs=1e-6)
    assert plain._accumulated["distill_loss"].item() > 0.05  # the distillation term really is in both
    assert "mean_token_accuracy" in sft._metrics["train"]  # TRL's own metrics still come from its fused path


def test_stage1_freeze_and_learning_rate_groups(tmp_path):
    trainer = _trainer(tmp_path, per_device=2, accumulation=1, alignment_learning_rate=5e-3)
    assert freeze_language_model(trainer.model) > 0
    optimizer = trainer.create_optimizer()
    lrs = {group["lr"] for group in optimizer.param_groups}
    assert lrs == {5e-3}  # only the alignment groups have trainable parameters
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    llm = [*trainer.model.model.language_model.parameters(), *trainer.model.lm_head.parameters()]
    assert not any(id(p) in in_optimizer for p in llm)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed and all(".language_model." not in n and not n.startswith("lm_head") for n in changed)
    assert any(n.startswith("model.video_tower.") for n in changed)


def test_two_learning_rates_when_everything_trains(tmp_path):
    trainer = _trainer(tmp_path, per_device=2, accumulation=1, alignment_learning_rate=5e-3)
    groups = trainer.create_optimizer().param_groups
    assert {g["lr"] for g in groups} == {5e-3, 1e-3}
    llm_ids = {id(p) for p in [*trainer.model.model.language_model.parameters(), *trainer.model.lm_head.parameters()]}
    for group in groups:
        in_llm = {id(p) in llm_ids for p in group["params"]}
        assert in_llm == ({True} if group["lr"] == 1e-3 else {False})


def test_saved_folder_is_the_model_plus_processor_and_the_head_beside_it(tmp_path):
    from videopanda.testing import tiny_processor

    trainer = _trainer(tmp_path / "run", per_device=2, accumulation=1, processing_class=tiny_processor(SIZE))
    trainer.save_model(str(tmp_path / "out"))
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"config.json", "model.safetensors", HEAD_FILE, "processor_config.json", "tokenizer.json"} <= files
    from safetensors import safe_open

    with safe_open(str(tmp_path / "out" / "model.safetensors"), "pt") as f:
        assert not any("distillation_head" in k for k in f.keys())  # noqa: SIM118 (safe_open is not iterable)
    from videopanda.modeling.modeling_videopanda import VideoPandaForConditionalGeneration

    reloaded = VideoPandaForConditionalGeneration.from_pretrained(tmp_path / "out")
    torch.testing.assert_close(reloaded.lm_head.weight, trainer.model.lm_head.weight)
