"""``videopanda quickstart``: the project's main job on a fresh machine, offline, in minutes on a CPU.

Why: it shows end to end that the architecture learns spatial and temporal concepts, with nothing downloaded.
It generates the synthetic VideoQA benchmark (:mod:`videopanda.synthetic`), trains a word-level tokenizer on its
language, builds a tiny Video-Panda (small STAB + a random-init 2-layer Llama), runs the three training stages of the
paper scaled down (1: align the STAB with the LLM frozen on video-caption pairs, 2: train everything on the captions,
3: instruction-tune on the questions), scores the held-out test split per question type, and writes a Hub-ready folder
(model, processor, remote code, model card with the measured results, training curve, results.json). It finally
reloads that folder as a user would (``trust_remote_code``) and answers one test question.

Scoring: the prediction is the greedy first answer word, i.e. the arg-max of the next-token logits at the end of the
prompt over the whole vocabulary (every answer is one word of the tokenizer), compared with the ground truth.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .synthetic import (
    ANSWERS,
    CAPTION_PROMPT,
    QUESTION_TYPES,
    SyntheticConfig,
    build_synthetic_videoqa,
    load_split,
    normalize_answer,
    vocabulary_corpus,
)

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ("<unk>", "<pad>", "<s>", "</s>", "<video>")
CHANCE = {qtype: 1.0 / len(ANSWERS[qtype]) for qtype in QUESTION_TYPES}
CHANCE["order"] = 0.5  # two colours are named in the question


@dataclass
class Stage:
    """One training stage: which data, which parameters train, and its optimiser schedule."""

    name: str
    data: str  # "captions" (video-text pairs) or "qa" (instruction data)
    trainable: str  # "tower" (STAB + projector, LLM frozen) or "all"
    steps: int
    lr: float
    warmup_steps: int
    # STAB + projector learning rate (None: ``lr``), like the library's ``alignment_learning_rate``: the randomly
    # initialised visual side needs a larger step than the language model to learn shape (docs/experiments.md).
    alignment_lr: float | None = None


@dataclass
class QuickstartSettings:
    """Everything that defines a quickstart run (stored in results.json so a run documents itself)."""

    output_dir: str = "videopanda-quickstart"
    data_dir: str | None = None  # default: <output_dir>-data
    seed: int = 0
    temporal: bool = True  # False = Table 4 ablation (no LSTE, no GSTRA)
    image_size: int = 84
    # 7 px patches pooled 4x4 by LSD: the same 3x3 tokens per frame as 14 px patches pooled 2x2 (so the LLM's cost is
    # unchanged), but LSD's per-patch LayerNorm and attention act on 16 small patches. Shape accuracy: about 80% with
    # 14 px patches, 92-99% with these over three seeds (docs/experiments.md, fifth round).
    patch_size: int = 7
    downsample_window: int = 4
    num_frames: int = 8
    num_train: int = 2000
    num_validation: int = 100
    num_test: int = 500
    batch_size: int = 32
    eval_batch_size: int = 64
    vision_hidden_size: int = 64
    vision_num_heads: int = 4
    text_hidden_size: int = 128
    text_layers: int = 2
    text_heads: int = 4
    stages: list[Stage] = field(default_factory=list)
    threads: int | None = None
    sample_question: bool = True

    def __post_init__(self):
        if not self.stages:
            self.stages = default_stages()
        if self.data_dir is None:
            self.data_dir = f"{str(self.output_dir).rstrip('/')}-data"


def default_stages(scale: float = 1.0) -> list[Stage]:
    """The paper's three stages, scaled to a CPU: alignment (LLM frozen), end-to-end pre-training, instruction tuning.

    Learning rates follow what made a tiny model learn on this kind of data: AdamW 1e-3 with warm-up for the language
    model and 3e-3 for the STAB + projector (see docs/quickstart.md); the tuning stage uses half the rates, as the
    paper halves them from stage 2 to stage 3.
    """
    steps = lambda n: max(1, int(round(n * scale)))  # noqa: E731
    return [
        Stage("stage1-align", "captions", "tower", steps(100), 3e-3, steps(20)),
        Stage("stage2-pretrain", "captions", "all", steps(500), 1e-3, steps(80), alignment_lr=3e-3),
        Stage("stage3-instruct", "qa", "all", steps(500), 5e-4, steps(40), alignment_lr=1.5e-3),
    ]


def small_settings(output_dir: str, **overrides) -> QuickstartSettings:
    """A reduced run for CI: few clips, few steps, a smaller model; checks the pipeline, not the accuracy."""
    kwargs = dict(
        output_dir=output_dir, num_train=40, num_validation=10, num_test=20, batch_size=8, eval_batch_size=20,
        vision_hidden_size=32, text_hidden_size=64, stages=default_stages(0.02), image_size=56, num_frames=4,
    )
    kwargs.update(overrides)
    return QuickstartSettings(**kwargs)


# ----------------------------------------------------------------------------------------------------------------------
# Tokenizer, processor and model


def build_tokenizer(extra_text: list[str]):
    """A word-level tokenizer trained on the fly on the benchmark's language (questions, answers, captions, prompt)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=list(SPECIAL_TOKENS), min_frequency=1)
    tokenizer.train_from_iterator(vocabulary_corpus() + list(extra_text), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={"video_token": "<video>"},
        padding_side="right",
    )


def build_processor(settings: QuickstartSettings):
    """The project's processor (chat template, video processor) around the on-the-fly tokenizer."""
    from .processing.processing_videopanda import VideoPandaProcessor
    from .processing.video_processing_videopanda import VideoPandaVideoProcessor

    size = {"height": settings.image_size, "width": settings.image_size}
    video_processor = VideoPandaVideoProcessor(
        size=size,
        num_frames=settings.num_frames,
        patch_size=settings.patch_size,
        downsample_window=settings.downsample_window,
    )
    probe = VideoPandaProcessor(video_processor=video_processor, tokenizer=build_tokenizer([]))
    # Train the tokenizer on the rendered chat template too, so that the system prompt has no unknown words.
    template_text = probe.apply_chat_template(
        [{"role": "user", "content": [{"type": "text", "text": "q"}]}, {"role": "assistant", "content": "a"}],
        tokenize=False,
    )
    tokenizer = build_tokenizer([template_text])
    return VideoPandaProcessor(video_processor=video_processor, tokenizer=tokenizer)


def build_model(settings: QuickstartSettings, tokenizer):
    """A tiny Video-Panda: STAB (width 64) + projector + a random-init 2-layer Llama with the tokenizer's vocabulary."""
    from .modeling import VideoPandaConfig
    from .modeling.modeling_videopanda import VideoPandaForConditionalGeneration

    text_config = {
        "model_type": "llama",
        "vocab_size": len(tokenizer),
        "hidden_size": settings.text_hidden_size,
        "intermediate_size": 2 * settings.text_hidden_size,
        "num_hidden_layers": settings.text_layers,
        "num_attention_heads": settings.text_heads,
        "num_key_value_heads": settings.text_heads,
        "max_position_embeddings": 512,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "tie_word_embeddings": False,
    }
    config = VideoPandaConfig(
        text_config=text_config,
        vision_hidden_size=settings.vision_hidden_size,
        vision_num_heads=settings.vision_num_heads,
        image_size=settings.image_size,
        patch_size=settings.patch_size,
        downsample_window=settings.downsample_window,
        num_frames=settings.num_frames,
        video_token_id=tokenizer.convert_tokens_to_ids("<video>"),
        use_lste=settings.temporal,
        use_gstra=settings.temporal,
    )
    torch.manual_seed(settings.seed)
    model = VideoPandaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


# ----------------------------------------------------------------------------------------------------------------------
# Data: every training clip goes through the video processor once; every record is tokenised once


class ClipCache:
    """The training clips after the video processor (decoded from their files with PyAV), kept as float16.

    Why: the model step of a tiny Video-Panda costs about as much CPU as preprocessing its batch, so each clip is
    decoded, resized, masked and normalised once instead of once per epoch. float16 keeps 2000 clips of 8 frames at
    84x84 under 1 GB; values are normalised pixels and a 0/1 mask, well inside float16 precision for training.
    """

    def __init__(self, videos: list[str], processor, chunk: int = 64, desc: str = "preprocess clips"):
        self.index = {video: i for i, video in enumerate(videos)}
        self.pixels: torch.Tensor | None = None
        self.grids: torch.Tensor | None = None
        for start in tqdm(range(0, len(videos), chunk), desc=desc, leave=False):
            out = processor.video_processor(videos=videos[start : start + chunk], return_tensors="pt")
            pixels, grids = out["pixel_values_videos"], out["video_grids"]
            if self.pixels is None:
                self.pixels = torch.empty((len(videos), *pixels.shape[1:]), dtype=torch.float16)
                self.grids = torch.empty((len(videos), grids.shape[1]), dtype=grids.dtype)
            if pixels.shape[1:] != self.pixels.shape[1:]:
                raise ValueError(f"clips of different shapes in one cache: {tuple(pixels.shape)} vs "
                                 f"{tuple(self.pixels.shape)}; the synthetic clips should all have the same size.")
            self.pixels[start : start + len(pixels)] = pixels.to(torch.float16)
            self.grids[start : start + len(pixels)] = grids
        # The placeholder run of each clip, from the processor's own expansion rule (it reads the validity mask).
        self._runs: dict[int, str] = {}
        self._processor = processor

    def __len__(self):
        return len(self.index)

    def placeholder_run(self, clip: int) -> str:
        if clip not in self._runs:
            inputs = {"pixel_values_videos": self.pixels[clip : clip + 1].float(), "video_grids": self.grids[clip : clip + 1]}
            self._runs[clip] = self._processor.replace_video_token(inputs, video_idx=0)
        return self._runs[clip]

    def batch(self, clips: list[int]) -> dict:
        return {"pixel_values_videos": self.pixels[clips].float(), "video_grids": self.grids[clips]}


def _conversation(question: str, answer: str | None = None) -> list[dict]:
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    if answer is not None:
        messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages


def _multi_turn(turns: list) -> list[dict]:
    """Chat messages of ``[(question, answer), ...]``; the video opens the first question."""
    messages = _conversation(*turns[0])
    for question, answer in turns[1:]:
        messages += [{"role": "user", "content": [{"type": "text", "text": question}]},
                     {"role": "assistant", "content": [{"type": "text", "text": answer}]}]
    return messages


def prompt_text(processor, question: str) -> str:
    """The chat-template prompt (system, ``USER: <video>\\n{question} ASSISTANT:``) for one question."""
    return processor.apply_chat_template(_conversation(question), tokenize=False, add_generation_prompt=True)


class EncodedRecords:
    """Token ids and answer-only labels of a list of records, with the index of each record's clip in a ClipCache.

    The text is the chat template of the processor; each ``<video>`` is expanded with the processor's own rule for
    that clip (``replace_video_token``) and tokenised by the processor's tokenizer, which is what
    ``processor(text=..., videos=...)`` does (tests/test_quickstart.py checks the two agree). A record with several
    ``turns`` is one multi-turn conversation whose every answer is labelled.
    """

    def __init__(self, records: list[dict], processor, clips: ClipCache):
        self.records = records
        self.clip_index = [clips.index[r["video"]] for r in records]
        self.input_ids: list[torch.Tensor] = []
        self.labels: list[torch.Tensor] = []
        for record, clip in tqdm(list(zip(records, self.clip_index)), desc="tokenise", leave=False):
            ids, labels = self._encode(record, processor, clips.placeholder_run(clip))
            self.input_ids.append(ids)
            self.labels.append(labels)

    @staticmethod
    def _encode(record: dict, processor, run: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Ids of the whole conversation; labels keep the tokens between each prompt and the end of its answer."""
        tokenizer, token = processor.tokenizer, processor.video_token
        turns = record.get("turns") or [(record["question"], record["answer"])]

        def ids_of(messages, add_generation_prompt=False):
            text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
            return tokenizer(text.replace(token, run), add_special_tokens=True)["input_ids"]

        ids = ids_of(_multi_turn(turns))
        labels = [-100] * len(ids)
        for k in range(1, len(turns) + 1):
            prompt = ids_of(_multi_turn(turns[:k])[:-1], add_generation_prompt=True)
            answered = ids_of(_multi_turn(turns[:k]))
            if ids[: len(answered)] != answered or answered[: len(prompt)] != prompt or len(answered) <= len(prompt):
                raise ValueError(f"record {record['id']}: turn {k} does not extend the conversation before it.")
            labels[len(prompt) : len(answered)] = answered[len(prompt) :]
        return torch.tensor(ids), torch.tensor(labels)

    def __len__(self):
        return len(self.records)


def collate(encoded: EncodedRecords, indices, clips: ClipCache, pad_id: int) -> dict:
    """A right-padded training batch: token ids and labels from the records, pixels from the clip cache."""
    ids = [encoded.input_ids[i] for i in indices]
    labels = [encoded.labels[i] for i in indices]
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    label_batch = torch.full((len(ids), width), -100, dtype=torch.long)
    attention = torch.zeros((len(ids), width), dtype=torch.long)
    for row, (x, y) in enumerate(zip(ids, labels)):
        input_ids[row, : len(x)], label_batch[row, : len(y)], attention[row, : len(x)] = x, y, 1
    batch = {"input_ids": input_ids, "attention_mask": attention, "labels": label_batch}
    batch.update(clips.batch([encoded.clip_index[i] for i in indices]))
    return batch


# ----------------------------------------------------------------------------------------------------------------------
# Training and evaluation


def set_trainable(model, trainable: str) -> int:
    """Freeze everything but the STAB + projector (``"tower"``) or train all (``"all"``); returns the trainable count."""
    if trainable not in ("tower", "all"):
        raise ValueError(f"trainable must be 'tower' or 'all', got {trainable!r}.")
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(trainable == "all" or ".video_tower." in f".{name}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """Linear warm-up then cosine decay to 10%: the schedule family of the original recipe."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_stage(model, stage: Stage, encoded: EncodedRecords, clips: ClipCache, processor, settings,
                generator) -> list[float]:
    """Run one stage with AdamW; returns the loss of every step."""
    trainable = set_trainable(model, stage.trainable)
    tower = {id(p) for p in model.model.video_tower.parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if id(p) in tower], "lr": stage.alignment_lr or stage.lr},
        {"params": [p for p in params if id(p) not in tower], "lr": stage.lr},
    ]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, stage.warmup_steps, stage.steps))
    pad_id = processor.tokenizer.pad_token_id
    model.train()
    losses, order, cursor = [], [], 0
    logger.info("%s: %d steps on %s, %s trainable parameters", stage.name, stage.steps, stage.data, f"{trainable:,}")
    bar = tqdm(range(stage.steps), desc=stage.name, leave=False)
    for _ in bar:
        if cursor + settings.batch_size > len(order):
            order, cursor = torch.randperm(len(encoded), generator=generator).tolist(), 0
        indices = order[cursor : cursor + settings.batch_size]
        cursor += settings.batch_size
        batch = collate(encoded, indices, clips, pad_id)
        loss = model(**batch, use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
    model.eval()
    return losses


@torch.no_grad()
def evaluate(model, processor, records: list[dict], batch_size: int = 64, desc: str = "evaluate") -> dict:
    """Per-type accuracy of the greedy first answer word; videos are decoded from their files by the processor."""
    model.eval()
    tokenizer = processor.tokenizer
    predictions = []
    for start in tqdm(range(0, len(records), batch_size), desc=desc, leave=False):
        chunk = records[start : start + batch_size]
        prompts = [prompt_text(processor, r["question"]) for r in chunk]
        inputs = processor(text=prompts, videos=[r["video"] for r in chunk], padding=True, return_tensors="pt")
        logits = model(**inputs, use_cache=False).logits
        last = inputs["attention_mask"].sum(-1) - 1  # right padding: the last prompt position of each row
        next_ids = logits[torch.arange(len(chunk)), last].argmax(-1)
        predictions += [tokenizer.decode([int(i)]) for i in next_ids]
    per_type: dict[str, list[int]] = {}
    rows = []
    for record, prediction in zip(records, predictions):
        correct = int(normalize_answer(prediction) == normalize_answer(record["answer"]))
        per_type.setdefault(record["question_type"], []).append(correct)
        rows.append({"id": record["id"], "question": record["question"], "answer": record["answer"],
                     "pred": prediction, "correct": correct})
    accuracy = {qtype: sum(v) / len(v) for qtype, v in per_type.items()}
    accuracy["overall"] = sum(sum(v) for v in per_type.values()) / max(1, len(records))
    return {"accuracy": accuracy, "counts": {k: len(v) for k, v in per_type.items()}, "predictions": rows}


# ----------------------------------------------------------------------------------------------------------------------
# Outputs


def save_training_curve(path: Path, stage_losses: dict[str, list[float]], title: str) -> Path:
    """Loss per step, one colour per stage, smoothed with a running mean (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    offset = 0
    for name, losses in stage_losses.items():
        steps = np.arange(offset, offset + len(losses))
        window = max(1, min(25, len(losses) // 10))
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid") if len(losses) >= window else losses
        ax.plot(steps, losses, alpha=0.25, linewidth=0.8)
        ax.plot(steps[len(steps) - len(smooth) :], smooth, label=name, color=ax.lines[-1].get_color())
        offset += len(losses)
        ax.axvline(offset, color="grey", linewidth=0.5, linestyle=":")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (answer tokens)")
    ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def results_table(accuracy: dict, counts: dict, chance: dict | None = None) -> str:
    """A markdown table of held-out accuracy per question type with the chance level."""
    chance = chance or CHANCE
    lines = ["| question type | accuracy | chance | n |", "| --- | --- | --- | --- |"]
    for qtype in QUESTION_TYPES:
        if qtype in accuracy:
            lines.append(f"| {qtype} | {100 * accuracy[qtype]:.1f}% | {100 * chance[qtype]:.0f}% | {counts[qtype]} |")
    lines.append(f"| overall | {100 * accuracy['overall']:.1f}% | | {sum(counts.values())} |")
    return "\n".join(lines)


def write_model_card(folder: Path, results: dict, settings: QuickstartSettings) -> Path:
    """The model card (project generator) with the measured held-out results as Hub `model-index` entries."""
    from .model_cards.generator import write_model_card as write_card

    variant = "full STAB" if settings.temporal else "STAB without LSTE and GSTRA (the paper's Table 4 ablation)"
    eval_results = [
        {
            "dataset_type": "videopanda-synthetic-videoqa",
            "dataset_name": f"Synthetic VideoQA ({qtype})",
            "dataset_config": qtype,
            "dataset_split": "test",
            "metric_type": "accuracy",
            "metric_name": f"Accuracy ({qtype})",
            "metric_value": round(results["accuracy"][qtype], 4),
        }
        for qtype in [*QUESTION_TYPES, "overall"]
        if qtype in results["accuracy"]
    ]
    stages = "; ".join(
        f"{s.name}: {s.steps} steps on {'video-caption pairs' if s.data == 'captions' else 'questions'}, "
        f"{'STAB + projector only (LLM frozen)' if s.trainable == 'tower' else 'all parameters'}, AdamW lr {s.lr:g}"
        f"{f' (STAB + projector {s.alignment_lr:g})' if s.alignment_lr and s.trainable == 'all' else ''} "
        f"with {s.warmup_steps} warm-up steps and cosine decay" for s in settings.stages
    )
    description = (
        "## Held-out accuracy per question type (with chance level)\n\n"
        + results_table(results["accuracy"], results["counts"])
        + f"\n\nScoring: greedy first answer word vs. ground truth on {sum(results['counts'].values())} held-out "
        f"clips. Training took {results['train_seconds']:.0f} s ({results['threads']} CPU threads); see "
        "`training_curve.png`, `results.json` and `predictions_test.jsonl` in this folder."
    )
    return write_card(
        folder,
        repo_id=str(folder),
        model_name="Video-Panda quickstart (tiny, synthetic)" + ("" if settings.temporal else ", no temporal modules"),
        summary=f"A tiny Video-Panda ({variant}) trained from scratch in minutes on a CPU by `videopanda quickstart`, "
        "on the project's synthetic spatio-temporal VideoQA benchmark (coloured shapes on dark backgrounds: colour, "
        "shape, direction of motion, which object appears first, how many objects). It demonstrates that the "
        "architecture learns spatial and temporal concepts; it is not a general video model.",
        description=description,
        base_model=None,
        datasets=None,
        eval_results=eval_results,
        training=f"From scratch (random STAB and a random {settings.text_layers}-layer Llama, hidden "
        f"{settings.text_hidden_size}, with a word-level tokenizer trained on the benchmark's language), seed "
        f"{settings.seed}, batch {settings.batch_size}, {settings.num_train} training clips at "
        f"{settings.image_size}x{settings.image_size} ({settings.patch_size} px patches, LSD window "
        f"{settings.downsample_window}x{settings.downsample_window}), {settings.num_frames} frames. The paper's three "
        f"stages, scaled down: {stages}. No distillation teacher.",
        limitations="Only knows the synthetic world it was trained on: four colours, three shapes, four directions, "
        "up to four objects, dark backgrounds. Answers about real videos are meaningless.",
        tags=["synthetic", "quickstart"],
        max_new_tokens=8,
    )


def save_folder(model, processor, folder: Path) -> None:
    """Save model + processor with their remote code, so the folder loads anywhere with ``trust_remote_code``."""
    folder.mkdir(parents=True, exist_ok=True)
    for obj, auto in ((model.config, "AutoConfig"), (model, "AutoModelForImageTextToText"), (processor, "AutoProcessor")):
        obj.register_for_auto_class(auto)
    processor.video_processor.register_for_auto_class("AutoVideoProcessor")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


# ----------------------------------------------------------------------------------------------------------------------
# The run


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def run_quickstart(settings: QuickstartSettings) -> dict:
    """Generate, train, evaluate and package; returns the results dictionary (also written to results.json)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    threads = settings.threads or max(1, min(4, os.cpu_count() or 1))
    torch.set_num_threads(threads)
    generator = seed_everything(settings.seed)
    out = Path(settings.output_dir)
    out.mkdir(parents=True, exist_ok=True)

    data_config = SyntheticConfig(
        image_size=settings.image_size, num_frames=settings.num_frames, seed=settings.seed,
        num_train=settings.num_train, num_validation=settings.num_validation, num_test=settings.num_test,
    )
    data_root = Path(settings.data_dir)
    if not _dataset_matches(data_root, data_config):
        build_synthetic_videoqa(data_root, data_config)
    data_seconds = time.perf_counter() - start

    processor = build_processor(settings)
    model = build_model(settings, processor.tokenizer)
    captions, qa = load_split(data_root, "train", captions=True), load_split(data_root, "train")
    clips = ClipCache(sorted({r["video"] for r in captions + qa}), processor, desc="preprocess train clips")
    encoded = {"captions": EncodedRecords(captions, processor, clips), "qa": EncodedRecords(qa, processor, clips)}
    prep_seconds = time.perf_counter() - start - data_seconds

    stage_losses, stage_seconds = {}, {}
    for stage in settings.stages:
        t0 = time.perf_counter()
        stage_losses[stage.name] = train_stage(model, stage, encoded[stage.data], clips, processor, settings, generator)
        stage_seconds[stage.name] = time.perf_counter() - t0
        logger.info("%s done in %.0f s, final loss %.4f", stage.name, stage_seconds[stage.name],
                    stage_losses[stage.name][-1])
    train_seconds = sum(stage_seconds.values())

    test = load_split(data_root, "test")
    evaluation = evaluate(model, processor, test, settings.eval_batch_size, desc="evaluate test")
    results = {
        "accuracy": evaluation["accuracy"],
        "counts": evaluation["counts"],
        "chance": CHANCE,
        "temporal": settings.temporal,
        "threads": threads,
        "data_seconds": data_seconds,
        "prep_seconds": prep_seconds,
        "stage_seconds": stage_seconds,
        "train_seconds": train_seconds,
        "final_losses": {k: float(np.mean(v[-20:])) for k, v in stage_losses.items()},
        "settings": asdict(settings),
        "num_parameters": {
            "video_tower": sum(p.numel() for p in model.model.video_tower.parameters()),
            "total": sum(p.numel() for p in model.parameters()),
        },
    }

    folder = out
    save_folder(model, processor, folder)
    title = "Video-Panda quickstart" + ("" if settings.temporal else " (no LSTE / GSTRA)")
    save_training_curve(folder / "training_curve.png", stage_losses, title)
    (folder / "predictions_test.jsonl").write_text("\n".join(json.dumps(r) for r in evaluation["predictions"]) + "\n")
    results["total_seconds"] = time.perf_counter() - start
    write_model_card(folder, results, settings)
    (folder / "results.json").write_text(json.dumps(results, indent=1))

    if settings.sample_question:
        results["sample"] = answer_sample(folder, test[0])
    results["total_seconds"] = time.perf_counter() - start
    results["process_cpu_seconds"] = time.process_time() - cpu_start  # contention-independent cost of the run
    (folder / "results.json").write_text(json.dumps(results, indent=1))
    return results


def answer_sample(folder: Path, record: dict) -> dict:
    """Reload the saved folder as a user would (remote code) and stream the answer to one test question."""
    from .cli import load_model_and_processor, stream_answer

    model, processor = load_model_and_processor(str(folder), "cpu")
    print(f"\nSample question on {record['video']}\n  Q: {record['question']}\n  A: ", end="", flush=True)
    answer = "".join(piece for piece in _echo(stream_answer(model, processor, record["video"], record["question"], 8)))
    print(f"  (ground truth: {record['answer']})")
    return {"video": record["video"], "question": record["question"], "answer": answer.strip(),
            "ground_truth": record["answer"]}


def _echo(pieces):
    for piece in pieces:
        print(piece, end="", flush=True)
        yield piece
    print()


def _dataset_matches(root: Path, config: SyntheticConfig) -> bool:
    """Reuse an existing dataset only if it was generated with exactly these settings."""
    metadata = root / "metadata.json"
    if not metadata.is_file():
        return False
    stored = json.loads(metadata.read_text()).get("config", {})
    wanted = asdict(config)
    keys = [k for k in wanted if k != "counts"]
    return all(json.dumps(stored.get(k)) == json.dumps(list(v) if isinstance(v, tuple) else v) for k, v in
               ((k, wanted[k]) for k in keys))


# ----------------------------------------------------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videopanda quickstart",
        description="Generate a synthetic spatio-temporal VideoQA benchmark, train a tiny Video-Panda on it in three "
        "stages (alignment, pre-training, instruction tuning), evaluate per question type, and write a Hub-ready "
        "model folder. Runs offline on a CPU in about 10 minutes.",
    )
    parser.add_argument("--output-dir", default="videopanda-quickstart", help="model folder to write (default: %(default)s)")
    parser.add_argument("--data-dir", default=None, help="where the synthetic clips go (default: <output-dir>-data)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, initialisation and batching (default 0)")
    parser.add_argument("--no-temporal", action="store_true",
                        help="disable LSTE and GSTRA (the paper's Table 4 ablation of the temporal modules)")
    parser.add_argument("--small", action="store_true", help="a reduced run (seconds) that checks the pipeline only")
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply the steps of every stage")
    parser.add_argument("--num-train", type=int, default=None, help="training clips (default 2000)")
    parser.add_argument("--num-test", type=int, default=None, help="held-out test clips (default 500)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all cores, at most 4)")
    parser.add_argument("--no-sample", action="store_true", help="skip answering the sample question at the end")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``videopanda quickstart [options]``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("videopanda").setLevel(logging.INFO)
    overrides = {"seed": args.seed, "temporal": not args.no_temporal, "threads": args.threads,
                 "sample_question": not args.no_sample}
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.num_train is not None:
        overrides["num_train"] = args.num_train
    if args.num_test is not None:
        overrides["num_test"] = args.num_test
    if args.small:
        settings = small_settings(args.output_dir, **overrides)
    else:
        settings = QuickstartSettings(output_dir=args.output_dir, stages=default_stages(args.steps_scale), **overrides)
    results = run_quickstart(settings)
    print()
    print(f"Held-out accuracy ({'full STAB' if settings.temporal else 'no LSTE / GSTRA'}), "
          f"training {results['train_seconds']:.0f} s, total {results['total_seconds']:.0f} s:")
    print(results_table(results["accuracy"], results["counts"]))
    print(f"\nModel folder: {settings.output_dir}  (training curve: {settings.output_dir}/training_curve.png)")
    return 0


__all__ = ["QuickstartSettings", "Stage", "default_stages", "main", "run_quickstart", "small_settings"]
