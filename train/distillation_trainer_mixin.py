"""Distillation, loss bookkeeping, optimizer groups and saving shared by `VideoPandaTrainer` and the TRL trainer.

Loss normalisation (why it is exact under gradient accumulation and data parallelism): with ``num_items_in_batch``
the Trainer hands each micro-batch the token count of the whole accumulated batch of all processes, so
``lm_loss = token-loss sum / global tokens``. The distillation term gets the same treatment with the number of frames
that have a teacher target in the whole accumulated batch of all processes (counted in ``get_batch_samples``). Both
are multiplied by the number of processes when ``average_tokens_across_devices`` is on, since DDP averages gradients.
Without ``num_items_in_batch`` (evaluation, or no labels) both are per-micro-batch means and the Trainer divides by
the accumulation steps itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .distillation import LOSS_TYPES, DistillationHead, DistillationOutput
from .model_setup import core_model, language_model_parameter_names
from .teacher_outputs import frames_of_videos, teacher_patch_mask

logger = logging.getLogger(__name__)

HEAD_ATTRIBUTE = "distillation_head"
HEAD_FILE = "distillation_head.safetensors"
TEACHER_PIXELS = "teacher_pixel_values_videos"
TEACHER_FEATURES = "teacher_features"
TEACHER_PATCH_MASK = "teacher_patch_mask"
TEACHER_KEYS = (TEACHER_PIXELS, TEACHER_FEATURES, TEACHER_PATCH_MASK)


@dataclass
class DistillationArguments:
    """How the visual distillation runs: loss (``cosine`` / ``mse`` / ``none``), weight, LLM layer stride."""

    loss_type: str = "cosine"
    weight: float = 1.0
    layer_stride: int = 4

    def __post_init__(self):
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"distillation loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}.")
        if self.weight < 0:
            raise ValueError(f"distillation weight must be >= 0, got {self.weight}.")

    @property
    def enabled(self) -> bool:
        return self.loss_type != "none"


def attach_distillation_head(
    model: nn.Module, teacher_hidden_size: int, args: DistillationArguments
) -> DistillationHead:
    """Create (or keep a matching) training-only head on the model, so wrappers (DDP, ZeRO) see its parameters."""
    core = core_model(model)
    text = core.config.text_config
    head = getattr(core, HEAD_ATTRIBUTE, None)
    if head is not None:
        head.loss_type = args.loss_type
        return head
    head = DistillationHead(
        text.hidden_size,
        teacher_hidden_size,
        text.num_hidden_layers,
        args.layer_stride,
        args.loss_type,
        layer_norm_eps=1e-5,
    )
    head.to(device=core.lm_head.weight.device)
    setattr(core, HEAD_ATTRIBUTE, head)
    return head


def load_distillation_head(model: nn.Module, folder: str | os.PathLike) -> bool:
    """Load ``distillation_head.safetensors`` from a previous stage or a checkpoint, if present and attached."""
    path = os.path.join(folder, HEAD_FILE)
    head = getattr(core_model(model), HEAD_ATTRIBUTE, None)
    if head is None or not os.path.isfile(path):
        return False
    head.load_state_dict(load_file(path, device=str(next(head.parameters()).device)))
    logger.info("Loaded the distillation head from %s.", path)
    return True


class DistillationTrainerMixin:
    """Mixed into `transformers.Trainer` subclasses; call `_init_distillation` before `Trainer.__init__`."""

    def _init_distillation(self, model, teacher, distillation, alignment_learning_rate, teacher_hidden_size=None):
        self.distillation = distillation or DistillationArguments()
        self.teacher = teacher
        self.alignment_learning_rate = alignment_learning_rate
        self._distill_frames_in_batch = None
        self._accumulated = {"lm_loss": None, "distill_loss": None}
        self._global_scaled = True
        self._loss_log_first_step = 0
        if self.distillation.enabled:
            hidden = teacher.hidden_size if teacher is not None else teacher_hidden_size
            if hidden is None and getattr(core_model(model), HEAD_ATTRIBUTE, None) is None:
                raise ValueError(
                    "distillation is on but there is neither a teacher module nor teacher_hidden_size (for "
                    "precomputed teacher_features); pass one, or set the distillation loss_type to 'none'."
                )
            if teacher is None:
                logger.info("No teacher module: distillation reads precomputed teacher_features from the batches.")
            attach_distillation_head(model, hidden, self.distillation)

    def _move_teacher(self):
        if self.teacher is not None:
            dtype = torch.bfloat16 if self.args.bf16 else torch.float16 if self.args.fp16 else torch.float32
            self.teacher.to(device=self.args.device, dtype=dtype)

    # ----- batch bookkeeping -------------------------------------------------------------------------------------
    @staticmethod
    def _frames_with_target(batch: dict) -> int:
        if TEACHER_PATCH_MASK in batch:
            mask = batch[TEACHER_PATCH_MASK]
        elif TEACHER_PIXELS in batch:
            mask = batch[TEACHER_PIXELS][:, :, 3] if batch[TEACHER_PIXELS].shape[2] == 4 else None
            if mask is None:
                return int(sum(batch["video_grids"][:, 0])) if "video_grids" in batch else 0
        else:
            return 0
        grids = batch.get("video_grids")
        per_frame = frames_of_videos(mask, grids[:, 0] if grids is not None else None)
        return int(per_frame.flatten(1).any(dim=1).sum())

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batch_samples, num_items_in_batch = super().get_batch_samples(epoch_iterator, num_batches, device)
        frames = torch.tensor(sum(self._frames_with_target(b) for b in batch_samples), device=device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            frames = self.accelerator.gather(frames.reshape(1)).sum()
        self._distill_frames_in_batch = frames
        return batch_samples, num_items_in_batch

    # ----- the loss ----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _capture_backbone(self, model):
        """Record the `VideoPandaModel` output of the next forward (TRL's fused LM head never returns it)."""
        captured = {}
        backbone = core_model(model).model
        handle = backbone.register_forward_hook(lambda module, args, output: captured.setdefault("out", output))
        try:
            yield captured
        finally:
            handle.remove()

    def _teacher_inputs(self, teacher_inputs: dict, video_grids):
        frames = video_grids[:, 0] if video_grids is not None else None
        if TEACHER_FEATURES in teacher_inputs:
            features, mask = teacher_inputs[TEACHER_FEATURES], teacher_inputs.get(TEACHER_PATCH_MASK)
            if mask is None:
                raise ValueError("teacher_features need a teacher_patch_mask in the batch.")
        else:
            if self.teacher is None:
                raise ValueError("the batch has teacher pixels but the trainer was given no teacher module.")
            pixels = teacher_inputs[TEACHER_PIXELS]
            out = self.teacher(pixels)
            features, mask = out.features, teacher_patch_mask(pixels, out.patch_size, out.grid)
        return frames_of_videos(features, frames), frames_of_videos(mask, frames)

    def _distillation(self, model, backbone_output, teacher_inputs, video_grids) -> DistillationOutput:
        head = getattr(core_model(model), HEAD_ATTRIBUTE)
        features, mask = self._teacher_inputs(teacher_inputs, video_grids)
        if backbone_output.hidden_states is None:
            raise ValueError("the model returned no hidden_states; distillation needs output_hidden_states=True.")
        return head(
            backbone_output.hidden_states,
            backbone_output.video_token_mask,
            backbone_output.frame_grids,
            features.to(head.output_projection.weight.dtype),
            mask,
        )

    def _combine_losses(self, model, lm_loss, backbone_output, teacher_inputs, video_grids, num_items_in_batch):
        """``lm_loss`` (already normalised by the model) + weight * distillation, scaled as described on top."""
        global_scaled = num_items_in_batch is not None
        distill_term = None
        if (
            self.distillation.enabled
            and teacher_inputs
            and backbone_output is not None
            and backbone_output.frame_grids is not None
        ):
            out = self._distillation(model, backbone_output, teacher_inputs, video_grids)
            if global_scaled and self._distill_frames_in_batch is not None:
                denominator = self._distill_frames_in_batch.clamp(min=1).to(out.loss_sum.device)
            else:
                denominator = max(out.num_frames, 1)
            distill_term = out.loss_sum / denominator
        loss = lm_loss if distill_term is None else lm_loss + self.distillation.weight * distill_term
        if global_scaled and self.args.average_tokens_across_devices:
            loss = loss * self.accelerator.num_processes
        if model.training:
            self._global_scaled = global_scaled
            self._accumulate("lm_loss", lm_loss)
            if distill_term is not None:
                self._accumulate("distill_loss", distill_term)
        return loss

    def _accumulate(self, key, value):
        if all(v is None for v in self._accumulated.values()):
            self._loss_log_first_step = self.state.global_step  # the optimizer step being computed (also on resume)
        value = value.detach().float()
        if not self._global_scaled:
            value = value / getattr(self, "current_gradient_accumulation_steps", self.args.gradient_accumulation_steps)
        self._accumulated[key] = value if self._accumulated[key] is None else self._accumulated[key] + value

    def _pop_teacher_inputs(self, inputs: dict) -> dict:
        return {key: inputs.pop(key) for key in TEACHER_KEYS if key in inputs}

    def _flush_loss_log(self) -> dict:
        """Global-batch means of ``lm_loss`` and ``distill_loss`` since the last log (gathered over processes)."""
        logs = {}
        steps = self.state.global_step - self._loss_log_first_step
        for key, value in self._accumulated.items():
            present = torch.tensor(0.0 if value is None else 1.0, device=self.args.device)
            value = torch.zeros((), device=self.args.device) if value is None else value.to(self.args.device)
            if self.args.world_size > 1:
                value = self.accelerator.reduce(value, reduction="sum")
                present = self.accelerator.reduce(present, reduction="sum")
                if not self._global_scaled:
                    value = value / self.args.world_size
            if present.item() > 0 and steps > 0:
                logs[key] = round(value.item() / steps, 6)
            self._accumulated[key] = None
        return logs

    def log(self, logs, start_time=None):
        if "loss" in logs and not any(key.startswith("eval_") for key in logs):
            logs.update(self._flush_loss_log())
        super().log(logs, start_time)

    # ----- optimizer -----------------------------------------------------------------------------------------------
    def create_optimizer(self, model=None):
        """Two learning rates: `learning_rate` for the LLM, `alignment_learning_rate` for STAB, projector and head."""
        opt_model = self.model if model is None else model
        if self.optimizer is not None or self.alignment_learning_rate is None:
            return super().create_optimizer(model)
        decay = set(self.get_decay_parameter_names(opt_model))
        llm = language_model_parameter_names(opt_model)
        groups = []
        for is_llm, lr in ((False, self.alignment_learning_rate), (True, self.args.learning_rate)):
            for with_decay in (True, False):
                params = [
                    p
                    for n, p in opt_model.named_parameters()
                    if p.requires_grad and (n in llm) == is_llm and (n in decay) == with_decay
                ]
                if params:
                    groups.append(
                        {"params": params, "lr": lr, "weight_decay": self.args.weight_decay if with_decay else 0.0}
                    )
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, opt_model)
        optimizer_kwargs.pop("lr", None)
        self.optimizer = optimizer_cls(groups, lr=self.args.learning_rate, **optimizer_kwargs)
        return self.optimizer

    # ----- saving ------------------------------------------------------------------------------------------------
    def _save(self, output_dir=None, state_dict=None):
        """A complete model + processor folder; the training-only head goes to its own file beside it."""
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if state_dict is None:
            state_dict = self.accelerator.unwrap_model(self.model).state_dict()
        head_state = {
            k.split(f"{HEAD_ATTRIBUTE}.", 1)[1]: v for k, v in state_dict.items() if f"{HEAD_ATTRIBUTE}." in k
        }
        state_dict = {k: v for k, v in state_dict.items() if f"{HEAD_ATTRIBUTE}." not in k}
        super()._save(output_dir, state_dict=state_dict)
        if head_state and self.args.should_save:
            os.makedirs(output_dir, exist_ok=True)
            save_file(
                {k: v.detach().contiguous().cpu() for k, v in head_state.items()}, os.path.join(output_dir, HEAD_FILE)
            )

    def _issue_warnings_after_load(self, load_result):
        """The head lives in its own file (loaded next), so its keys are expected to be missing from the weights."""
        load_result.missing_keys[:] = [k for k in load_result.missing_keys if f"{HEAD_ATTRIBUTE}." not in k]
        super()._issue_warnings_after_load(load_result)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        load_distillation_head(model if model is not None else self.model, resume_from_checkpoint)


__all__ = [
    "HEAD_FILE",
    "DistillationArguments",
    "DistillationTrainerMixin",
    "attach_distillation_head",
    "load_distillation_head",
]
