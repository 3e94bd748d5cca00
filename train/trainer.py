"""`VideoPandaTrainer`: `transformers.Trainer` with Video-Panda's distillation loss (paper Sec. 3.2).

Adds to the stock Trainer: the frozen teacher and the training-only distillation head, ``lm_loss`` and
``distill_loss`` logged separately, auxiliary-loss scaling that is exact under gradient accumulation and data
parallelism, separate learning rates for STAB/projector/head and the LLM, and checkpoints that stay complete
model + processor folders (the head is stored beside them in ``distillation_head.safetensors``).
"""

from __future__ import annotations

from transformers import Trainer

from .distillation_trainer_mixin import DistillationArguments, DistillationTrainerMixin


class VideoPandaTrainer(DistillationTrainerMixin, Trainer):
    """Trainer for the three Video-Panda stages.

    Args (besides `transformers.Trainer`'s):
        teacher: a frozen teacher (`LanguageBindVideoTeacher`, `HFVisionTeacher`) run on the batch's
            ``teacher_pixel_values_videos``; None when batches carry precomputed ``teacher_features``.
        distillation: `DistillationArguments` (loss type, weight, layer stride); loss ``"none"`` turns it off.
        alignment_learning_rate: learning rate of STAB, projector and distillation head (None: same as the LLM's).
        teacher_hidden_size: teacher width when there is no teacher module (precomputed features).
    """

    def __init__(
        self,
        model=None,
        args=None,
        *,
        teacher=None,
        distillation: DistillationArguments | None = None,
        alignment_learning_rate: float | None = None,
        teacher_hidden_size: int | None = None,
        **kwargs,
    ):
        if model is None:
            raise ValueError("VideoPandaTrainer needs a model.")
        self._init_distillation(model, teacher, distillation, alignment_learning_rate, teacher_hidden_size)
        super().__init__(model=model, args=args, **kwargs)
        self._move_teacher()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        teacher_inputs = self._pop_teacher_inputs(inputs)
        distill = self.distillation.enabled and bool(teacher_inputs)
        if num_items_in_batch is not None and self.model_accepts_loss_kwargs:
            inputs = {**inputs, "num_items_in_batch": num_items_in_batch}
        with self._capture_backbone(model) as captured:
            outputs = model(**inputs, output_hidden_states=distill)
        if outputs.loss is None:
            raise ValueError("the batch has no labels: the language-model loss cannot be computed.")
        loss = self._combine_losses(
            model, outputs.loss, captured.get("out"), teacher_inputs, inputs.get("video_grids"), num_items_in_batch
        )
        return (loss, outputs) if return_outputs else loss


__all__ = ["VideoPandaTrainer"]
