"""One command per training stage: ``python -m videopanda.train.run --recipe stage1 --model BASE --data-root DATA
--output-dir OUT1``, then ``--recipe stage2 --model OUT1 ...``, then ``--recipe stage3 --model OUT2 ...``.

Every stage reads the previous stage's output folder (model, processor and the distillation head), writes a complete
model + processor folder, the data report and the resolved recipe, and can resume from its own checkpoints. Launch
it with ``accelerate launch`` or ``torchrun`` for several processes (see docs/training.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import torch
import yaml

from .recipe import Recipe, load_recipe

logger = logging.getLogger("videopanda.train")

STAGE_FILE = "videopanda_training_stage.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videopanda train",
        description="Train one Video-Panda stage (paper Sec. 3.2): stage1 aligns STAB with a frozen LLM on half of "
        "Valley, stage2 trains everything on Valley, stage3 instruction-tunes on Video-ChatGPT. Each stage starts "
        "from the previous stage's output folder.",
    )
    parser.add_argument("--recipe", required=True, help="stage1, stage2, stage3 or a path to a recipe .yaml")
    parser.add_argument("--model", required=True, help="model folder to start from (the previous stage's output)")
    parser.add_argument("--output-dir", required=True, help="where checkpoints and the final folder go")
    parser.add_argument("--data", nargs="+", help="LLaVA-style JSON/JSONL file(s); replaces the recipe's train_files")
    parser.add_argument("--data-root", default=".", help="folder the recipe's relative data paths start from")
    parser.add_argument("--video-root", help="folder the videos' relative paths start from (overrides the recipe)")
    parser.add_argument("--teacher-path", help="teacher folder (LanguageBind_Video_merge or a transformers backbone)")
    parser.add_argument(
        "--teacher-cache",
        help="dataset folder with precomputed teacher features: reused when it holds "
        "this stage's samples, (re)computed otherwise; training then runs without the teacher",
    )
    parser.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        help="resume from CHECKPOINT, or the latest one in --output-dir when given without a value",
    )
    parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (smoke runs)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a recipe value, e.g. --set training.learning_rate=1e-4 (repeatable)",
    )
    parser.add_argument("--print-recipe", action="store_true", help="print the resolved recipe and exit")
    return parser


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def resolve_recipe(args) -> Recipe:
    overrides = list(args.overrides)
    recipe = load_recipe(args.recipe, overrides)
    if args.data:
        recipe.data.train_files = list(args.data)
    if args.video_root:
        recipe.data.video_root = args.video_root
    if args.teacher_path:
        recipe.distillation.teacher_path = args.teacher_path
    if args.max_steps is not None:
        recipe.training.max_steps = args.max_steps
    return recipe


def _under(root: str, path: str) -> str:
    return path if os.path.isabs(path) else os.path.join(root, path)


def load_model_and_processor(folder: str, dtype: torch.dtype):
    from videopanda.modeling.modeling_videopanda import VideoPandaForConditionalGeneration
    from videopanda.processing.processing_videopanda import VideoPandaProcessor

    if not Path(folder, "config.json").is_file():
        raise ValueError(f"--model {folder} is not a model folder (no config.json).")
    model = VideoPandaForConditionalGeneration.from_pretrained(folder, dtype=dtype)
    processor = VideoPandaProcessor.from_pretrained(folder, trust_remote_code=True)
    return model, processor


def build_teacher(recipe: Recipe):
    """The frozen teacher named by the recipe (None when distillation is off)."""
    distill = recipe.distillation
    if distill.loss_type == "none":
        return None
    if distill.teacher == "none":
        raise ValueError(
            "distillation.loss_type is on but distillation.teacher is 'none'; pick a teacher or set "
            "distillation.loss_type=none."
        )
    if not distill.teacher_path:
        raise ValueError("distillation.teacher_path is not set (use --teacher-path).")
    path = distill.teacher_path
    if not os.path.isdir(path):
        from huggingface_hub import snapshot_download

        path = snapshot_download(path)
    if distill.teacher == "languagebind":
        from .teacher_languagebind import LanguageBindVideoTeacher

        return LanguageBindVideoTeacher.from_pretrained(path)
    from .teacher_hf import HFVisionTeacher

    return HFVisionTeacher.from_pretrained(path)


def _bf16(setting) -> bool:
    if setting == "auto":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(setting)


def _tf32(setting) -> bool | None:
    if setting == "auto":
        return True if torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8 else None
    return bool(setting) or None


def training_arguments(recipe: Recipe, output_dir: str, trl: bool):
    t = recipe.training
    kwargs = {
        "output_dir": output_dir,
        "per_device_train_batch_size": t.per_device_batch_size,
        "gradient_accumulation_steps": recipe.gradient_accumulation_steps(world_size()),
        "learning_rate": t.learning_rate,
        "num_train_epochs": t.num_train_epochs,
        "max_steps": t.max_steps,
        "lr_scheduler_type": t.lr_scheduler_type,
        "warmup_steps": t.warmup_ratio,
        "weight_decay": t.weight_decay,
        "optim": t.optim,
        "bf16": _bf16(t.bf16),
        "tf32": _tf32(t.tf32),
        "activation_checkpointing": t.activation_checkpointing,
        "activation_checkpointing_kwargs": {"use_reentrant": False} if t.activation_checkpointing else None,
        "seed": t.seed,
        "data_seed": t.seed,
        "logging_steps": t.logging_steps,
        "save_steps": t.save_steps,
        "save_total_limit": t.save_total_limit,
        "dataloader_num_workers": t.dataloader_num_workers,
        "report_to": t.report_to,
        "remove_unused_columns": False,
        "use_cpu": not torch.cuda.is_available(),
        "ddp_find_unused_parameters": False,
    }
    if trl:
        from trl import SFTConfig

        return SFTConfig(max_length=None, dataset_kwargs={"skip_prepare_dataset": True}, **kwargs)
    from transformers import TrainingArguments

    return TrainingArguments(**kwargs)


def check_previous_stage(recipe: Recipe, model_folder: str) -> None:
    marker = Path(model_folder, STAGE_FILE)
    previous = json.loads(marker.read_text())["stage"] if marker.is_file() else None
    if recipe.stage > 1 and previous != recipe.stage - 1:
        logger.warning(
            "Stage %d usually starts from stage %d's output folder; %s is %s.",
            recipe.stage,
            recipe.stage - 1,
            model_folder,
            f"stage {previous}" if previous else "not a stage output",
        )


def cached_teacher_dataset(cache_dir: str, dataset, processor, teacher):
    """Reuse ``cache_dir`` (a dataset with teacher features) when it holds exactly this stage's samples, else build it.

    Only global rank 0 computes; the other processes wait at a barrier and then read the saved cache.
    """
    from datasets import load_from_disk

    from .teacher_cache import precompute_teacher_features

    def matches():
        if not Path(cache_dir, "dataset_info.json").is_file():
            return None
        cached = load_from_disk(cache_dir)
        return cached if cached["id"] == dataset["id"] else None

    cached = matches()
    if cached is None and _is_main_process():
        logger.info("Computing teacher features for %d samples into %s.", len(dataset), cache_dir)
        precompute_teacher_features(dataset, processor.video_processor, teacher, cache_dir=cache_dir + ".tmp")
        if Path(cache_dir).exists():
            import shutil

            shutil.rmtree(cache_dir)
        Path(cache_dir + ".tmp").rename(cache_dir)
    if world_size() > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        dist.barrier()
    cached = cached if cached is not None else matches()
    if cached is None:
        raise ValueError(f"the teacher cache {cache_dir} does not hold this stage's samples.")
    return cached


def save_merged_lora(trainer, output_dir: Path) -> None:
    """LoRA runs: the adapter goes to ``OUTPUT/adapter``; the merged model + processor make the usual folder."""
    from .distillation_trainer_mixin import HEAD_ATTRIBUTE

    trainer.save_model(str(output_dir / "adapter"))
    if not trainer.args.should_save:
        return
    merged = trainer.accelerator.unwrap_model(trainer.model).merge_and_unload()
    state = {k: v for k, v in merged.state_dict().items() if not k.startswith(f"{HEAD_ATTRIBUTE}.")}
    merged.save_pretrained(str(output_dir), state_dict=state)
    trainer.processing_class.save_pretrained(str(output_dir))
    head = output_dir / "adapter" / "distillation_head.safetensors"
    if head.is_file():
        (output_dir / head.name).write_bytes(head.read_bytes())


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def train(args) -> Path:
    """Run one stage and return the output folder."""
    from transformers import set_seed

    from .collator import VideoPandaDataCollator
    from .data import build_dataset
    from .distillation_trainer_mixin import DistillationArguments, load_distillation_head
    from .model_setup import disable_dropout, freeze_batch_norm_statistics, freeze_language_model

    recipe = resolve_recipe(args)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    set_seed(recipe.training.seed)
    check_previous_stage(recipe, args.model)
    bf16 = _bf16(recipe.training.bf16)
    model, processor = load_model_and_processor(args.model, torch.float32)
    if recipe.model.freeze_llm:
        logger.info("Stage %d: froze %d LLM tensors.", recipe.stage, freeze_language_model(model))
    if recipe.model.freeze_batch_norm:
        freeze_batch_norm_statistics(model)
    if recipe.model.disable_dropout:
        disable_dropout(model)

    files = [_under(args.data_root, f) for f in recipe.data.train_files]
    if not files:
        raise ValueError("no training data: give --data or set data.train_files in the recipe.")
    dataset, report = build_dataset(
        files,
        _under(args.data_root, recipe.data.video_root),
        subset_fraction=recipe.data.subset_fraction,
        seed=recipe.data.subset_seed,
        verify_videos=recipe.data.verify_videos,
        report_path=output_dir / "data_report.json" if _is_main_process() else None,
    )
    teacher = build_teacher(recipe)
    teacher_hidden_size = None
    if args.teacher_cache and teacher is not None:
        dataset = cached_teacher_dataset(args.teacher_cache, dataset, processor, teacher)
        teacher_hidden_size, teacher = teacher.hidden_size, None  # features come from the cache
    distillation = DistillationArguments(
        recipe.distillation.loss_type, recipe.distillation.weight, recipe.distillation.layer_stride
    )
    collator = VideoPandaDataCollator(
        processor, teacher_inputs=distillation.enabled, max_length=recipe.training.max_length, report=report
    )
    trl = recipe.training.trainer == "trl"
    targs = training_arguments(recipe, str(output_dir), trl)
    common = {
        "model": model,
        "args": targs,
        "train_dataset": dataset,
        "data_collator": collator,
        "processing_class": processor,
        "teacher": teacher,
        "distillation": distillation,
        "teacher_hidden_size": teacher_hidden_size,
        "alignment_learning_rate": recipe.training.alignment_learning_rate,
    }
    if trl:
        from .sft_trainer import VideoPandaSFTTrainer

        peft_config = None
        if recipe.training.lora_r:
            from peft import LoraConfig

            peft_config = LoraConfig(
                r=recipe.training.lora_r,
                lora_alpha=recipe.training.lora_alpha,
                lora_dropout=0.0,
                task_type="CAUSAL_LM",
                target_modules=r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)",
                modules_to_save=["video_tower"],
            )
        trainer = VideoPandaSFTTrainer(peft_config=peft_config, **common)
    else:
        from .trainer import VideoPandaTrainer

        trainer = VideoPandaTrainer(**common)
    if load_distillation_head(trainer.model, args.model):
        logger.info("Continuing the distillation head of %s.", args.model)
    if bf16:
        logger.info("Training in bf16 mixed precision.")

    resume = args.resume
    if resume == "latest":
        from transformers.trainer_utils import get_last_checkpoint

        resume = get_last_checkpoint(str(output_dir))
        if resume is None:
            raise ValueError(f"--resume: no checkpoint-* folder in {output_dir}.")
    trainer.train(resume_from_checkpoint=resume)
    if recipe.training.lora_r:
        save_merged_lora(trainer, output_dir)
    else:
        trainer.save_model(str(output_dir))
    if trainer.args.should_save:
        (output_dir / "training_recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
        (output_dir / STAGE_FILE).write_text(json.dumps({"stage": recipe.stage, "started_from": args.model}))
        report.save(output_dir / "data_report.json")
        (output_dir / "log_history.json").write_text(json.dumps(trainer.state.log_history, indent=1))
        logger.info("Stage %d done: %s. Data: %s", recipe.stage, output_dir, report.summary())
    return output_dir


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m videopanda.train.run`` and ``videopanda train``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.print_recipe:
            print(yaml.safe_dump(resolve_recipe(args).to_dict(), sort_keys=False))
            return 0
        train(args)
    except ValueError as error:
        print(f"videopanda train: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
