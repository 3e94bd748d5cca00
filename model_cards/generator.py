"""Writes the README.md model card of a Video-Panda checkpoint folder: Hub metadata, usage that runs, results.

The Hub reads the YAML front matter (license, `library_name`, `pipeline_tag`, base model, datasets, tags, model-index)
to list and filter the model, so it is built with huggingface_hub's `ModelCardData`/`EvalResult` rather than by hand.
Cards for the converted released checkpoints quote the paper's numbers and say so; cards for models trained here
carry the numbers measured here.

Command line: ``python -m videopanda.model_cards.generator --help``.
"""

import argparse
import json
import logging
import struct
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

logger = logging.getLogger(__name__)

TEMPLATE_PATH = Path(__file__).with_name("card_template.md")
PAPER_URL = "https://jh-yi.github.io/Video-Panda"
PAPER_SOURCE = "Video-Panda (CVPR 2025), as reported by the authors"
TASK_TYPE = "video-text-to-text"
DEFAULT_TAGS = ["video-panda", "video-text-to-text", "video-language-model", "encoder-free", "custom_code"]

# The released checkpoints (jh-yi/Video-Panda-7B) are built on Vicuna-7B v1.5 and trained on Valley-702K (stages 1-2)
# and Video-ChatGPT's 100K instructions (stage 3), paper Sec. 4.1.
VICUNA_BASE_MODEL = "lmsys/vicuna-7b-v1.5"
RELEASED_DATASETS = ["luoruipu1/Valley-webvid2M-Pretrain-703K", "MBZUAI/VideoInstruct-100K"]

# Paper Table 1 (open-ended zero-shot video QA, GPT-3.5 judge; accuracy in %, score 0-5). TGIF-QA was re-evaluated by
# the authors with the GPT-3.5 version of the time (the table's "TGIF-QA*").
PAPER_TABLE_1 = {
    "MSVD-QA": (64.7, 3.8),
    "MSRVTT-QA": (54.8, 3.4),
    "TGIF-QA": (42.9, 3.2),
    "ActivityNet-QA": (40.0, 3.3),
}
# Paper Table 2 (Video-ChatGPT benchmark, GPT-3.5 judge, scores 1-5).
PAPER_TABLE_2 = {
    "Correctness": 2.74,
    "Detail": 2.47,
    "Context": 3.01,
    "Temporal": 2.26,
    "Consistency": 2.36,
    "Average": 2.57,
}

RELEASED_VARIANTS = {
    "videopanda_fitu": {
        "model_name": "Video-Panda-7B",
        "summary": "The Video-Panda 7B checkpoint released by the authors after all three training stages "
        "(the `videopanda_fitu` folder of `jh-yi/Video-Panda-7B`), converted to this transformers implementation.",
        "training": "Three stages (paper Sec. 3.3 and Table 6): (1) STAB alignment on 351K Valley/WebVid video-text "
        "pairs with the LLM frozen, (2) end-to-end training on the full Valley-702K, (3) instruction tuning on the "
        "100K Video-ChatGPT instructions; a LanguageBind video encoder is the distillation teacher (training only, "
        "not part of this checkpoint). Weights converted from the original release without retraining.",
        "paper_results": True,
    },
    "videopanda_prtr1": {
        "model_name": "Video-Panda-7B (stage-1 alignment)",
        "summary": "The `videopanda_prtr1` folder of `jh-yi/Video-Panda-7B`, converted to this transformers "
        "implementation. We take it to be the checkpoint after the first (alignment) stage, the starting point "
        "for fine-tuning; it is not an instruction-following model.",
        "training": "Stage 1 of the paper's recipe: the STAB and projector trained on 351K Valley/WebVid video-text "
        "pairs with the Vicuna-7B v1.5 LLM frozen. Weights converted from the original release without retraining.",
        "paper_results": False,
    },
}


def paper_eval_results() -> list[EvalResult]:
    """Table 1 and Table 2 of the paper as model-index entries, attributed to the paper."""
    results = []
    for dataset, (accuracy, score) in PAPER_TABLE_1.items():
        common = {
            "task_type": TASK_TYPE,
            "task_name": "Zero-shot open-ended video question answering",
            "dataset_type": dataset.lower(),
            "dataset_name": dataset,
            "dataset_split": "test",
            "source_name": f"{PAPER_SOURCE}, Table 1",
            "source_url": PAPER_URL,
        }
        results.append(EvalResult(metric_type="accuracy", metric_value=accuracy, metric_name="Accuracy (%)", **common))
        results.append(EvalResult(metric_type="score", metric_value=score, metric_name="GPT score (0-5)", **common))
    for dimension, value in PAPER_TABLE_2.items():
        results.append(
            EvalResult(
                task_type=TASK_TYPE,
                task_name="Video-based text generation benchmark",
                dataset_type="video-chatgpt-benchmark",
                dataset_name="Video-ChatGPT benchmark (VCGBench)",
                dataset_split="test",
                metric_type=dimension.lower(),
                metric_value=value,
                metric_name=f"{dimension} (1-5)",
                source_name=f"{PAPER_SOURCE}, Table 2",
                source_url=PAPER_URL,
            )
        )
    return results


def _as_eval_result(result) -> EvalResult:
    if isinstance(result, EvalResult):
        return result
    if not isinstance(result, dict):
        raise ValueError(  # noqa: TRY004 -- the project reports bad input as ValueError
            f"An evaluation result must be an EvalResult or a dict, got {type(result).__name__}."
        )
    fields = {"task_type": TASK_TYPE, **result}
    missing = [key for key in ("dataset_type", "dataset_name", "metric_type", "metric_value") if key not in fields]
    if missing:
        raise ValueError(f"Evaluation result {result!r} lacks {', '.join(missing)}.")
    return EvalResult(**fields)


def _results_table(results: list[EvalResult]) -> str:
    if not results:
        return ""
    lines = ["| Benchmark | Split | Metric | Value | Source |", "| --- | --- | --- | --- | --- |"]
    for result in results:
        source = result.source_name or "measured with this implementation"
        lines.append(
            f"| {result.dataset_name} | {result.dataset_split or '-'} | {result.metric_name or result.metric_type} "
            f"| {result.metric_value} | {source} |"
        )
    return "\n".join(lines)


def _config_summary(config: dict | None) -> dict:
    """Human-readable architecture facts from a `config.json` dict (or the paper defaults when absent)."""
    config = config or {}
    text = config.get("text_config") or {}
    hidden = config.get("vision_hidden_size", 1024)
    heads = config.get("vision_num_heads", 8)
    layers = text.get("num_hidden_layers")
    text_hidden = text.get("hidden_size")
    text_model = text.get("model_type", "llama")
    if layers and text_hidden:
        text_model = f"{text_model}, {layers} layers, hidden {text_hidden}"
    return {
        "vision_summary": f"width {hidden}, {heads} heads, patch {config.get('patch_size', 14)}",
        "text_model": text_model,
        "num_frames": config.get("num_frames", 8),
        "image_size": config.get("image_size", 448),
    }


def count_parameters(folder: str | Path) -> int | None:
    """Number of weights stored in a folder's safetensors files, read from their headers only (no tensor loading)."""
    folder = Path(folder)
    total = 0
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    for path in files:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        for name, info in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for dim in info["shape"]:
                count *= dim
            total += count
    return total


def build_model_card(
    repo_id: str,
    *,
    model_name: str | None = None,
    summary: str = "",
    description: str = "",
    base_model: str | list[str] | None = VICUNA_BASE_MODEL,
    datasets: list[str] | None = None,
    license: str = "apache-2.0",
    eval_results: list | None = None,
    results_from_paper: bool = False,
    training: str = "",
    limitations: str | None = None,
    config: dict | None = None,
    parameters: int | None = None,
    tags: list[str] | None = None,
    language: str | list[str] = "en",
    max_new_tokens: int = 64,
) -> ModelCard:
    """
    A Video-Panda model card: Hub metadata plus usage, details, training, results and citation sections.

    Args:
        repo_id: the Hub repo id (or local folder) the usage snippet loads from.
        eval_results: `EvalResult`s or dicts with `EvalResult` field names (`dataset_type`, `dataset_name`,
            `metric_type`, `metric_value`, optional `metric_name`, `dataset_split`, ...; `task_type` defaults to
            video-text-to-text). They become the `model-index` and the results table.
        results_from_paper: the results are the paper's numbers as reported by its authors, not measured here; the
            card says so (use `paper_eval_results()` for them).
        config: the checkpoint's `config.json` as a dict, for the architecture facts.
    """
    if not repo_id:
        raise ValueError("repo_id is required: the usage snippet loads the model from it.")
    model_name = model_name or repo_id.rstrip("/").split("/")[-1]
    results = [_as_eval_result(result) for result in (eval_results or [])]
    all_tags = list(dict.fromkeys([*DEFAULT_TAGS, *(tags or [])]))
    card_data = ModelCardData(
        language=language,
        license=license,
        library_name="transformers",
        pipeline_tag=TASK_TYPE,
        base_model=base_model,
        datasets=datasets or None,
        tags=all_tags,
        model_name=model_name,
        eval_results=results or None,
    )
    if results_from_paper:
        results_intro = (
            "The numbers below are **quoted from the paper as reported by the authors** (Video-Panda, CVPR 2025, "
            "Tables 1 and 2); they were not re-measured with this implementation. Both tables use a GPT-3.5 judge "
            "(`gpt-3.5-turbo`, version not pinned by the authors), so re-evaluations today can differ."
        )
        results_note = (
            "Table 1: zero-shot open-ended QA, accuracy (%) and score (0-5); TGIF-QA is the authors' re-evaluation "
            "(TGIF-QA* in the paper). Table 2: the Video-ChatGPT benchmark, scores 1-5."
        )
    elif results:
        results_intro = "Measured with this implementation:"
        results_note = ""
    else:
        results_intro = "No evaluation results are recorded for this checkpoint."
        results_note = ""
    facts = _config_summary(config)
    base_models = [base_model] if isinstance(base_model, str) else list(base_model or [])
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE_PATH),
        model_name=model_name,
        repo_id=repo_id,
        summary=summary,
        description=description,
        paper_url=PAPER_URL,
        parameters=f"{parameters:,}" if parameters else "see the safetensors files",
        base_model_text=", ".join(f"`{name}`" for name in base_models) or "none (trained from scratch)",
        license=license,
        training=training or "Not documented.",
        results_intro=results_intro,
        results_table=_results_table(results),
        results_note=results_note,
        limitations=limitations
        or "Answers can be wrong or invented, especially about small objects, fast motion and long videos (8 "
        "frames are sampled). The model inherits the biases of its language model and training videos.",
        max_new_tokens=max_new_tokens,
        **facts,
    )


def released_checkpoint_card(variant: str = "videopanda_fitu", repo_id: str = "jh-yi/Video-Panda-7B", **kwargs):
    """The card of a converted released checkpoint; the final one quotes the paper's Tables 1 and 2."""
    if variant not in RELEASED_VARIANTS:
        raise ValueError(f"Unknown released variant {variant!r}; choose one of {sorted(RELEASED_VARIANTS)}.")
    info = RELEASED_VARIANTS[variant]
    options = {
        "model_name": info["model_name"],
        "summary": info["summary"],
        "training": info["training"],
        "base_model": VICUNA_BASE_MODEL,
        "datasets": RELEASED_DATASETS,
        "license": "llama2",
        "eval_results": paper_eval_results() if info["paper_results"] else None,
        "results_from_paper": info["paper_results"],
        "description": "The license follows the Llama 2 license of the Vicuna-7B v1.5 base model; check the "
        "original release for any further terms.",
    }
    options.update(kwargs)
    return build_model_card(repo_id, **options)


def write_model_card(folder: str | Path, repo_id: str | None = None, card: ModelCard | None = None, **kwargs) -> Path:
    """Write `README.md` into a checkpoint folder; architecture facts and parameter count come from the folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder.")
    if card is None:
        config_path = folder / "config.json"
        config = json.loads(config_path.read_text()) if config_path.is_file() else None
        kwargs.setdefault("config", config)
        kwargs.setdefault("parameters", count_parameters(folder))
        card = build_model_card(repo_id or str(folder), **kwargs)
    path = folder / "README.md"
    card.save(path)
    logger.info("Wrote the model card %s", path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m videopanda.model_cards.generator",
        description="Write the README.md model card of a Video-Panda checkpoint folder.",
    )
    parser.add_argument("folder", help="checkpoint folder (config.json, weights) to write README.md into")
    parser.add_argument("--repo-id", help="Hub repo id used in the usage snippet (default: the folder path)")
    parser.add_argument(
        "--released", choices=sorted(RELEASED_VARIANTS), help="card for a converted released checkpoint"
    )
    parser.add_argument("--results", help="JSON file with a list of EvalResult-style dicts measured on this model")
    parser.add_argument("--model-name")
    parser.add_argument("--license", default=None, help="license id (default apache-2.0; llama2 for --released)")
    parser.add_argument("--base-model", default=None)
    parser.add_argument("--dataset", action="append", default=None, help="training dataset id (repeatable)")
    args = parser.parse_args(argv)

    overrides = {}
    for key in ("model_name", "license", "base_model"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.dataset:
        overrides["datasets"] = args.dataset
    if args.results:
        overrides["eval_results"] = json.loads(Path(args.results).read_text())
    folder = Path(args.folder)
    repo_id = args.repo_id or str(folder)
    if args.released:
        config_path = folder / "config.json"
        overrides.setdefault("config", json.loads(config_path.read_text()) if config_path.is_file() else None)
        overrides.setdefault("parameters", count_parameters(folder))
        card = released_checkpoint_card(args.released, repo_id, **overrides)
        path = write_model_card(folder, card=card)
    else:
        path = write_model_card(folder, repo_id, **overrides)
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
