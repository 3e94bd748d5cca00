"""Training recipes: the paper's three stages as YAML files (train/recipes/), with dotted command-line overrides.

A recipe fixes the data, what is frozen, the optimisation hyper-parameters (paper Table 6) and the distillation
setup. The global batch is a recipe value; the gradient accumulation that reaches it is derived from the per-device
batch and the number of processes at launch time.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import yaml

RECIPE_DIR = Path(__file__).with_name("recipes")
TEACHERS = ("languagebind", "hf", "none")


@dataclass
class DataRecipe:
    train_files: list[str] = field(default_factory=list)
    video_root: str = "."
    subset_fraction: float = 1.0
    subset_seed: int = 42
    verify_videos: bool = True


@dataclass
class ModelRecipe:
    freeze_llm: bool = False
    freeze_batch_norm: bool = False
    disable_dropout: bool = False


@dataclass
class TrainingRecipe:
    learning_rate: float = 2e-5
    alignment_learning_rate: float | None = None
    global_batch_size: int = 1024
    per_device_batch_size: int = 4
    num_train_epochs: float = 1
    max_steps: int = -1
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    optim: str = "adamw_torch"
    bf16: str | bool = "auto"
    tf32: str | bool = "auto"
    activation_checkpointing: bool = True
    max_length: int | None = 4096
    seed: int = 42
    logging_steps: int = 1
    save_steps: int = 200
    save_total_limit: int | None = 2
    dataloader_num_workers: int = 4
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    trainer: str = "hf"
    lora_r: int = 0
    lora_alpha: int = 16


@dataclass
class DistillationRecipe:
    loss_type: str = "cosine"
    weight: float = 1.0
    layer_stride: int = 4
    teacher: str = "languagebind"
    teacher_path: str | None = None


SECTIONS = {"data": DataRecipe, "model": ModelRecipe, "training": TrainingRecipe, "distillation": DistillationRecipe}


@dataclass
class Recipe:
    stage: int
    data: DataRecipe
    model: ModelRecipe
    training: TrainingRecipe
    distillation: DistillationRecipe

    def to_dict(self) -> dict:
        return asdict(self)

    def gradient_accumulation_steps(self, world_size: int) -> int:
        """Accumulation that turns ``per_device_batch_size x world_size`` into ``global_batch_size`` exactly."""
        per_step = self.training.per_device_batch_size * world_size
        if self.training.global_batch_size % per_step:
            raise ValueError(
                f"global_batch_size {self.training.global_batch_size} is not a multiple of per_device_batch_size "
                f"{self.training.per_device_batch_size} x {world_size} processes; change one of them."
            )
        return self.training.global_batch_size // per_step

    def validate(self) -> Recipe:
        if self.stage not in (1, 2, 3):
            raise ValueError(f"stage must be 1, 2 or 3, got {self.stage}.")
        if self.distillation.teacher not in TEACHERS:
            raise ValueError(f"distillation.teacher must be one of {TEACHERS}, got {self.distillation.teacher!r}.")
        if self.training.trainer not in ("hf", "trl"):
            raise ValueError(f"training.trainer must be 'hf' or 'trl', got {self.training.trainer!r}.")
        if self.training.lora_r and self.training.trainer != "trl":
            raise ValueError("LoRA (training.lora_r > 0) is offered through the TRL trainer: set training.trainer=trl.")
        if self.training.lora_r and self.model.freeze_llm:
            raise ValueError(
                "LoRA trains the LLM, which this recipe freezes (model.freeze_llm); use it in stage 2 or 3."
            )
        if self.training.per_device_batch_size < 1 or self.training.global_batch_size < 1:
            raise ValueError("batch sizes must be positive.")
        if not 0 <= self.training.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.training.warmup_ratio}.")
        return self


def recipe_path(name: str) -> Path:
    """``stage1`` / ``stage2`` / ``stage3`` (shipped) or a path to a YAML file."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    shipped = RECIPE_DIR / f"{name}.yaml"
    if shipped.is_file():
        return shipped
    available = sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))
    raise ValueError(f"unknown recipe {name!r}: use one of {available} or a path to a .yaml file.")


def _parse_value(text: str):
    """YAML scalar, with ``1e-3`` read as a number (YAML 1.1 wants ``1.0e-3``)."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _apply_override(raw: dict, override: str) -> None:
    if "=" not in override:
        raise ValueError(f"override {override!r} must look like section.key=value, e.g. training.learning_rate=1e-4.")
    key, value = override.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) == 1 and parts[0] == "stage":
        raw["stage"] = _parse_value(value)
        return
    if len(parts) != 2 or parts[0] not in SECTIONS:
        raise ValueError(f"override key {key!r} must be one of {sorted(SECTIONS)} followed by .field.")
    raw.setdefault(parts[0], {})[parts[1]] = _parse_value(value)


def recipe_from_dict(raw: dict) -> Recipe:
    unknown = set(raw) - set(SECTIONS) - {"stage"}
    if unknown:
        raise ValueError(f"unknown recipe sections {sorted(unknown)}; expected stage and {sorted(SECTIONS)}.")
    sections = {}
    for name, cls in SECTIONS.items():
        values = raw.get(name) or {}
        names = {f.name for f in fields(cls)}
        bad = set(values) - names
        if bad:
            raise ValueError(f"unknown {name} field(s) {sorted(bad)}; known: {sorted(names)}.")
        sections[name] = cls(**values)
    if "stage" not in raw:
        raise ValueError("the recipe has no 'stage'.")
    return Recipe(stage=int(raw["stage"]), **sections).validate()


def load_recipe(name: str, overrides: list[str] | None = None) -> Recipe:
    """Read a recipe and apply ``section.key=value`` overrides (values parsed as YAML)."""
    raw = yaml.safe_load(recipe_path(name).read_text()) or {}
    raw = copy.deepcopy(raw)
    for override in overrides or []:
        _apply_override(raw, override)
    return recipe_from_dict(raw)


__all__ = ["Recipe", "load_recipe", "recipe_from_dict", "recipe_path"]
