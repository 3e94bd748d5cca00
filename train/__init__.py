"""Training: data, collator, distillation, teachers, Trainer/TRL glue (installed as ``videopanda.train``).

Names are imported lazily so that `python -m videopanda.train.run --help` and light users don't import TRL.
"""

import importlib

_EXPORTS = {
    "VideoPandaTrainer": ".trainer",
    "VideoPandaSFTTrainer": ".sft_trainer",
    "DistillationHead": ".distillation",
    "LanguageBindVideoConfig": ".teacher_languagebind",
    "LanguageBindVideoTeacher": ".teacher_languagebind",
    "HFVisionTeacher": ".teacher_hf",
    "VideoPandaDataCollator": ".collator",
    "DataReport": ".data",
    "build_dataset": ".data",
    "Recipe": ".recipe",
    "load_recipe": ".recipe",
    "precompute_teacher_features": ".teacher_cache",
    "freeze_language_model": ".model_setup",
    "main": ".run",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_EXPORTS)
