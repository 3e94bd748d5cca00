"""`VideoPandaSFTTrainer`: TRL's `SFTTrainer` that keeps Video-Panda's distillation loss.

TRL 1.16 replaces ``model.forward`` with a fused LM head that calls the backbone (`VideoPandaModel`) directly and
computes the token loss itself, so a loss added in the causal-LM forward would be dropped silently. Here TRL's own
`compute_loss` still computes the token loss and its metrics (entropy, token accuracy); the backbone's output
(hidden states, frame layout) is captured with a forward hook and the distillation term is added on top with the
same scaling as `VideoPandaTrainer`. Labels come from the project's collator (assistant turns only); optional LoRA
via ``peft_config`` keeps STAB, projector and head fully trainable.
"""

from __future__ import annotations

from trl import SFTTrainer

from .distillation_trainer_mixin import HEAD_ATTRIBUTE, DistillationArguments, DistillationTrainerMixin, core_model


class VideoPandaSFTTrainer(DistillationTrainerMixin, SFTTrainer):
    """`SFTTrainer` + distillation; pass the project's `VideoPandaDataCollator` as ``data_collator``.

    Use ``SFTConfig(remove_unused_columns=False, dataset_kwargs={"skip_prepare_dataset": True}, max_length=None)``:
    the collator tokenises and decodes videos itself.
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
        if model is None or isinstance(model, str):
            raise ValueError("VideoPandaSFTTrainer needs a loaded model (load the stage folder first).")
        self._init_distillation(model, teacher, distillation, alignment_learning_rate, teacher_hidden_size)
        super().__init__(model=model, args=args, **kwargs)
        if kwargs.get("peft_config") is not None:
            # PEFT freezes everything but the adapters; the alignment block and the head keep training in full
            core = core_model(self.model)
            for module in (core.model.video_tower, getattr(core, HEAD_ATTRIBUTE, None)):
                if module is not None:
                    module.requires_grad_(True)
        self._move_teacher()

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        teacher_inputs = self._pop_teacher_inputs(inputs)
        distill = self.distillation.enabled and bool(teacher_inputs)
        if distill:
            inputs["output_hidden_states"] = True
        scale = (
            self.accelerator.num_processes
            if (num_items_in_batch is not None and self.args.average_tokens_across_devices)
            else 1
        )
        with self._capture_backbone(model) as captured:  # keeps the first backbone output of this call
            result = super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
        token_loss, outputs = result if return_outputs else (result, None)
        lm_loss = token_loss / scale  # TRL already multiplied by the number of processes; undo, then redo once
        loss = self._combine_losses(
            model, lm_loss, captured.get("out"), teacher_inputs, inputs.get("video_grids"), num_items_in_batch
        )
        return (loss, outputs) if return_outputs else loss


__all__ = ["VideoPandaSFTTrainer"]
