"""Precomputed teacher features: the cache equals the live teacher, and training reads it without a teacher."""

import pytest
import torch
from transformers import TrainingArguments
from videopanda.train.collator import VideoPandaDataCollator
from videopanda.train.data import build_dataset
from videopanda.train.distillation_trainer_mixin import DistillationArguments
from videopanda.train.teacher_cache import precompute_teacher_features
from videopanda.train.teacher_languagebind import LanguageBindVideoTeacher
from videopanda.train.trainer import VideoPandaTrainer

from videopanda.testing import write_tiny_training_setup


@pytest.mark.slow
def test_cached_features_match_the_live_teacher_and_the_loss(tmp_path):
    from datasets import load_from_disk
    from videopanda.modeling.modeling_videopanda import VideoPandaForConditionalGeneration
    from videopanda.processing.processing_videopanda import VideoPandaProcessor

    paths = write_tiny_training_setup(tmp_path, num_samples=2)
    dataset, _ = build_dataset(paths["data"], paths["videos"])
    processor = VideoPandaProcessor.from_pretrained(paths["model"], trust_remote_code=True)
    teacher = LanguageBindVideoTeacher.from_pretrained(paths["teacher"])
    precompute_teacher_features(
        dataset,
        processor.video_processor,
        teacher,
        batch_size=2,
        dtype=torch.float32,
        cache_dir=str(tmp_path / "cache"),
    )
    cached = load_from_disk(str(tmp_path / "cache"))

    collator = VideoPandaDataCollator(processor)
    live_batch = collator([dataset[0], dataset[1]])
    cached_batch = collator([cached[0], cached[1]])
    assert "teacher_pixel_values_videos" not in cached_batch
    live = teacher(live_batch["teacher_pixel_values_videos"]).features
    torch.testing.assert_close(cached_batch["teacher_features"], live)

    losses = []
    for batch, kwargs in ((live_batch, {"teacher": teacher}), (cached_batch, {"teacher_hidden_size": 32})):
        model = VideoPandaForConditionalGeneration.from_pretrained(paths["model"]).eval()
        torch.manual_seed(0)
        trainer = VideoPandaTrainer(
            model=model,
            args=TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, report_to=[]),
            distillation=DistillationArguments(layer_stride=1),
            **kwargs,
        )
        losses.append(trainer.compute_loss(trainer.model, dict(batch)).item())
    assert abs(losses[0] - losses[1]) < 1e-5
