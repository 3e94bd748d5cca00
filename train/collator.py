"""Batches for training: chat template + lazy video decoding, assistant-only labels, teacher-side frames.

Decoding happens here (not when the dataset is built) so that a 700K-sample dataset costs nothing until a batch is
drawn. A sample whose video fails to decode at this point (a file that passed the quick check but breaks later) or
that is longer than ``max_length`` is dropped from the batch and recorded in the `DataReport`, never replaced by
another sample.
"""

from __future__ import annotations

import logging

import torch

from .data import DataReport, to_messages
from .teacher_cache import stack_cached_teacher_features

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


class VideoPandaDataCollator:
    """Turns dataset rows (``id``, ``video``, ``turns``) into model inputs plus ``labels``.

    Args:
        processor: a `VideoPandaProcessor` (chat template with ``{% generation %}`` markers).
        teacher_inputs: also return ``teacher_pixel_values_videos`` (the teacher-scale frames with their mask).
        max_length: drop samples with more tokens than this (visual tokens must never be truncated).
        report: a `DataReport` to record dropped samples in (one is created if omitted).
    """

    def __init__(
        self, processor, teacher_inputs: bool = True, max_length: int | None = None, report: DataReport | None = None
    ):
        self.processor = processor
        self.teacher_inputs = teacher_inputs
        self.max_length = max_length
        self.report = report if report is not None else DataReport()

    def _encode(self, conversations: list[list[dict]]) -> dict:
        processor_kwargs = {"padding": True, "padding_side": "right"}
        if getattr(self, "_want_teacher_pixels", self.teacher_inputs):
            processor_kwargs["return_teacher_inputs"] = True
        return self.processor.apply_chat_template(
            conversations,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            return_assistant_tokens_mask=True,
            processor_kwargs=processor_kwargs,
        )

    def _usable(self, examples: list[dict]) -> list[tuple[dict, list[dict]]]:
        """Samples whose video decodes and that fit ``max_length``; the others go to the report."""
        kept = []
        for example in examples:
            conversation = to_messages(example["turns"], example["video"])
            try:
                encoded = self._encode([conversation])
            except (ValueError, OSError, RuntimeError) as error:
                self.report.reject("decode_failed", str(example.get("id")), f"{type(error).__name__}: {error}")
                logger.warning("Dropped sample %s from the batch: %s", example.get("id"), error)
                continue
            length = int(encoded["input_ids"].shape[-1])
            if self.max_length is not None and length > self.max_length:
                self.report.reject(
                    "too_long", str(example.get("id")), f"{length} tokens > max_length {self.max_length}"
                )
                continue
            kept.append((example, conversation))
        return kept

    def __call__(self, examples: list[dict]) -> dict:
        cached = self.teacher_inputs and "teacher_features" in examples[0]
        self._want_teacher_pixels = self.teacher_inputs and not cached
        conversations = [to_messages(example["turns"], example["video"]) for example in examples]
        try:
            batch = self._encode(conversations)
            if self.max_length is not None and batch["input_ids"].shape[-1] > self.max_length:
                raise ValueError("a sample is longer than max_length")
        except (ValueError, OSError, RuntimeError):
            kept = self._usable(examples)
            if not kept:
                raise ValueError(
                    f"no sample of this batch is usable ({self.report.summary()}); see the data report."
                ) from None
            examples = [example for example, _ in kept]
            batch = self._encode([conversation for _, conversation in kept])
        batch = dict(batch)
        if cached:
            batch.update(stack_cached_teacher_features(examples, batch["pixel_values_videos"].shape[1]))
        assistant = batch.pop("assistant_masks", None)
        if assistant is None:
            raise ValueError("the processor returned no assistant_masks: its chat template needs {% generation %}.")
        assistant = torch.as_tensor(assistant, dtype=torch.bool)
        labels = batch["input_ids"].masked_fill(~assistant, IGNORE_INDEX)
        if "attention_mask" in batch:
            labels = labels.masked_fill(batch["attention_mask"] == 0, IGNORE_INDEX)
        batch["labels"] = labels
        return batch


__all__ = ["IGNORE_INDEX", "VideoPandaDataCollator"]
