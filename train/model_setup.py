"""Preparing a Video-Panda model for a training stage: unwrap, freeze the LLM, make the STAB deterministic."""

from __future__ import annotations

from torch import nn


def core_model(model: nn.Module) -> nn.Module:
    """The `VideoPandaForConditionalGeneration` under DDP / DeepSpeed / PEFT wrappers."""
    while hasattr(model, "module"):
        model = model.module
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model


def language_model_parameter_names(model: nn.Module) -> set[str]:
    """Names of the LLM parameters (decoder incl. embeddings, and the LM head), as seen from ``model``."""
    core = core_model(model)
    llm = {id(p) for p in core.model.language_model.parameters()} | {id(p) for p in core.lm_head.parameters()}
    return {name for name, p in model.named_parameters() if id(p) in llm}


def freeze_language_model(model: nn.Module) -> int:
    """Stage 1: freeze every LLM parameter (embeddings, decoder, LM head); returns how many tensors were frozen."""
    core = core_model(model)
    frozen = 0
    for module in (core.model.language_model, core.lm_head):
        for parameter in module.parameters():
            parameter.requires_grad_(False)
            frozen += 1
    return frozen


def _force_eval(module, args):
    module.training = False


def freeze_batch_norm_statistics(model: nn.Module) -> int:
    """Keep BatchNorm layers (the LSTE's) on their running statistics even in train mode.

    The original trains with batch statistics, which couple the samples of a micro-batch: a batch of 2 is then not
    the same computation as 2 accumulated batches of 1 or 2 processes with 1 each. Freezing makes those equal.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.register_forward_pre_hook(_force_eval)
            count += 1
    return count


def disable_dropout(model: nn.Module) -> int:
    """Set every dropout probability to 0 (the STAB fusion's Dropout(0.5) and the GSTRA MLP's)."""
    count = 0
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = 0.0
            count += 1
    return count


__all__ = [
    "core_model",
    "disable_dropout",
    "freeze_batch_norm_statistics",
    "freeze_language_model",
    "language_model_parameter_names",
]
