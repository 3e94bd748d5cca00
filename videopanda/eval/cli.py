"""``videopanda eval ...``: predict, judge and report the paper's benchmarks, one command each.

    videopanda eval run --benchmark msvd --data-root GPT_Zero_Shot_QA --model DIR --output-dir out/msvd
    videopanda eval predict --benchmark msvd --data-root GPT_Zero_Shot_QA --model DIR --output out/msvd/predictions.jsonl
    videopanda eval judge --benchmark msvd --predictions out/msvd/predictions.jsonl --output-dir out/msvd
    videopanda eval report --benchmark msvd --judgments out/msvd/judgments.jsonl --compat
    videopanda eval predict-vcg / judge-vcg   (Video-ChatGPT generative benchmark)

``predict`` shards over processes when started with ``accelerate launch`` or ``torchrun``.
"""

import argparse
import json
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

#: the paper's four QA benchmarks, plus the project's synthetic set (videopanda.synthetic, its test split)
BENCHMARK_NAMES = ["msvd", "msrvtt", "tgif", "activitynet", "synthetic"]


# --- shared options ------------------------------------------------------------------------------------------------


def _add_data_options(parser):
    group = parser.add_argument_group("data (a named benchmark below --data-root, or explicit files)")
    group.add_argument(
        "--benchmark",
        choices=BENCHMARK_NAMES,
        help="benchmark name (layout, v_ prefix, question types, paper numbers)",
    )
    group.add_argument("--data-root", help="the GPT_Zero_Shot_QA folder holding the <Name>_Zero_Shot_QA folders")
    group.add_argument("--questions", help="test_q.json (overrides the benchmark layout)")
    group.add_argument("--answers", help="test_a.json (overrides the benchmark layout)")
    group.add_argument("--video-dir", help="video folder (overrides the benchmark layout)")
    group.add_argument("--video-prefix", default=None, help="file-name prefix, e.g. v_ for ActivityNet")
    group.add_argument("--extensions", default=".mp4,.avi,.mov,.mkv,.webm", help="video extensions tried in order")


def _add_model_options(parser):
    group = parser.add_argument_group("model")
    group.add_argument("--model", required=True, help="folder (or Hub id) of a VideoPandaForConditionalGeneration")
    group.add_argument("--processor", help="processor folder (default: --model)")
    group.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float16", "bfloat16", "float32"],
        help="auto: float16 on GPU as the original, float32 on CPU",
    )
    group.add_argument("--batch-size", type=int, default=8)
    group.add_argument("--max-new-tokens", type=int, default=1024, help="the original's value is 1024")
    group.add_argument("--limit", type=int, help="stop after this many new answers per process (smoke tests)")
    group.add_argument("--no-progress", action="store_true")


def _add_judge_options(parser):
    group = parser.add_argument_group("judge")
    group.add_argument(
        "--judge",
        default="openai",
        choices=["openai", "local", "match"],
        help="openai: any OpenAI-compatible endpoint; local: a transformers chat model; match: no LLM",
    )
    group.add_argument(
        "--judge-model",
        help="judge model id (openai; env VIDEOPANDA_JUDGE_MODEL, default gpt-3.5-turbo) or local chat model path",
    )
    group.add_argument("--judge-base-url", help="env VIDEOPANDA_JUDGE_BASE_URL / OPENAI_BASE_URL")
    group.add_argument("--judge-api-key", help="env VIDEOPANDA_JUDGE_API_KEY / OPENAI_API_KEY")
    group.add_argument("--concurrency", type=int, default=8, help="requests in flight at most")
    group.add_argument("--max-retries", type=int, default=6, help="retries on 429, timeouts and 5xx")
    group.add_argument("--timeout", type=float, default=60.0, help="seconds per judge request")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--judge-max-tokens", type=int, default=None)
    group.add_argument("--cache", help="judge reply cache (default: <output-dir>/judge_cache.jsonl)")
    group.add_argument(
        "--compat", action="store_true", help="reproduce the published arithmetic and prompts exactly (bugs included)"
    )


def _configure_logging():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# --- building blocks -----------------------------------------------------------------------------------------------


def load_samples(args):
    """QA samples from ``--benchmark/--data-root`` or the explicit file options."""
    from .datasets import benchmark_paths, load_qa_samples

    paths = {}
    if args.benchmark and args.data_root:
        paths = benchmark_paths(args.benchmark, args.data_root)
    for name in ("questions", "answers", "video_dir"):
        if getattr(args, name):
            paths[name] = getattr(args, name)
    if args.video_prefix is not None:
        paths["video_prefix"] = args.video_prefix
    missing = [name for name in ("questions", "answers", "video_dir") if name not in paths]
    if missing:
        raise ValueError(f"Give --benchmark with --data-root, or --{' --'.join(m.replace('_', '-') for m in missing)}")
    extensions = tuple(ext if ext.startswith(".") else f".{ext}" for ext in args.extensions.split(",") if ext)
    return load_qa_samples(
        paths["questions"], paths["answers"], paths["video_dir"], paths.get("video_prefix", ""), extensions
    )


def load_model_and_processor(model_path: str, processor_path: str | None = None, dtype: str = "auto"):
    """The model on this process's device (eval mode) and its processor."""
    import torch

    from videopanda.modeling.modeling_videopanda import VideoPandaForConditionalGeneration
    from videopanda.processing.processing_videopanda import VideoPandaProcessor

    from .predict import distributed_state

    device = distributed_state().device
    if dtype == "auto":
        dtype = "float16" if device.type == "cuda" else "float32"
    model = VideoPandaForConditionalGeneration.from_pretrained(model_path, dtype=getattr(torch, dtype))
    processor = VideoPandaProcessor.from_pretrained(processor_path or model_path)
    return model.to(device).eval(), processor


def make_judge(args, output_dir: Path):
    """The judge chosen by ``--judge``."""
    if args.judge == "match":
        from .judge_match import MatchJudge

        return MatchJudge("contains")
    if args.judge == "local":
        from .judge_local import LocalJudge

        if not args.judge_model:
            raise ValueError("--judge local needs --judge-model (a transformers chat model path or id)")
        return LocalJudge(args.judge_model, max_new_tokens=args.judge_max_tokens or 64)
    from .judge_openai import OpenAIJudge

    return OpenAIJudge(
        model=args.judge_model,
        base_url=args.judge_base_url,
        api_key=args.judge_api_key,
        concurrency=args.concurrency,
        max_retries=args.max_retries,
        timeout=args.timeout,
        seed=args.seed,
        max_tokens=args.judge_max_tokens,
        cache=args.cache or str(output_dir / "judge_cache.jsonl"),
    )


def _write_judgments(path: Path, judgments) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(judgment.to_dict(), ensure_ascii=False) + "\n" for judgment in judgments)


def _read_judgments(path: Path):
    from .journal import read_jsonl
    from .judge_base import Judgment

    return [Judgment.from_dict(record) for record in read_jsonl(path)]


def _group_by_judge(judgments) -> dict:
    grouped = {}
    for judgment in judgments:
        grouped.setdefault(judgment.judge_id, []).append(judgment)
    return grouped


def _print_report(report: dict, paths) -> None:
    from .report import render_markdown

    print(render_markdown(report))
    print("written:", ", ".join(str(path) for path in paths))


# --- subcommands ---------------------------------------------------------------------------------------------------


def cmd_predict(args) -> dict:
    from .predict import predict
    from .tasks import qa_requests

    samples = load_samples(args)
    model, processor = load_model_and_processor(args.model, args.processor, args.dtype)
    return predict(
        model,
        processor,
        qa_requests(samples),
        args.output,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        limit=args.limit,
        progress=not args.no_progress,
    )


def judge_qa_predictions(args, predictions_path: Path, output_dir: Path, model_name: str = "") -> dict:
    """Judge a predictions file with the chosen judge plus both match scorers; write judgments and the report."""
    from .journal import read_jsonl
    from .judge_match import MatchJudge
    from .report import qa_report, write_report
    from .tasks import qa_judge_tasks

    predictions = read_jsonl(predictions_path, key="id")
    if not predictions:
        raise ValueError(f"No predictions in {predictions_path}")
    tasks = qa_judge_tasks(predictions)
    judges = [make_judge(args, output_dir)]
    judges += [MatchJudge(mode) for mode in ("contains", "exact") if judges[0].judge_id != f"{mode}-match"]
    judgments = []
    for judge in judges:
        judgments += judge.judge(tasks)
    _write_judgments(output_dir / "judgments.jsonl", judgments)
    expected = None
    summary_path = predictions_path.with_name(predictions_path.name + ".summary.json")
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        expected = len(summary.get("missing_videos", [])) + len(summary.get("failed", []))
    questions = {record["id"]: record["question"] for record in predictions}
    report = qa_report(
        args.benchmark or "qa",
        _group_by_judge(judgments),
        model=model_name,
        compat=args.compat,
        questions=questions,
        missing_predictions=expected or 0,
    )
    _print_report(report, write_report(report, output_dir))
    return report


def cmd_judge(args) -> dict:
    output_dir = Path(args.output_dir or Path(args.predictions).parent)
    return judge_qa_predictions(args, Path(args.predictions), output_dir, args.model_name or "")


def cmd_report(args) -> dict:
    from .report import qa_report, vcg_report, write_report

    judgments = _read_judgments(Path(args.judgments))
    if not judgments:
        raise ValueError(f"No judgments in {args.judgments}")
    output_dir = Path(args.output_dir or Path(args.judgments).parent)
    if judgments[0].protocol == "qa":
        report = qa_report(
            args.benchmark or "qa", _group_by_judge(judgments), model=args.model_name or "", compat=args.compat
        )
    else:
        by_dimension = {}
        for judgment in judgments:
            by_dimension.setdefault(judgment.protocol, []).append(judgment)
        report = vcg_report(by_dimension, judgments[0].judge_id, model=args.model_name or "", compat=args.compat)
    _print_report(report, write_report(report, output_dir))
    return report


def cmd_run(args) -> dict:
    output_dir = Path(args.output_dir)
    args.output = str(output_dir / "predictions.jsonl")
    summary = cmd_predict(args)
    from .predict import distributed_state

    if not distributed_state().is_main_process:
        return summary
    return judge_qa_predictions(args, Path(args.output), output_dir, model_name=args.model)


def cmd_predict_vcg(args) -> dict:
    from .datasets import VCG_FILES, load_vcg_samples
    from .predict import predict
    from .tasks import vcg_requests

    model, processor = load_model_and_processor(args.model, args.processor, args.dtype)
    output_dir = Path(args.output_dir)
    extensions = tuple(args.extensions.split(","))
    summaries = {}
    for split in VCG_FILES:
        samples = load_vcg_samples(args.qa_dir, args.video_dir, split, args.video_prefix or "", extensions)
        summaries[split] = predict(
            model,
            processor,
            vcg_requests(split, samples),
            output_dir / f"{split}.jsonl",
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            limit=args.limit,
            progress=not args.no_progress,
        )
    return summaries


def cmd_judge_vcg(args) -> dict:
    from .datasets import VCG_DIMENSIONS, load_vcg_samples
    from .journal import read_jsonl
    from .report import vcg_report, write_report
    from .tasks import vcg_judge_tasks, vcg_records

    predictions_dir = Path(args.predictions_dir)
    output_dir = Path(args.output_dir or predictions_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    judge = make_judge(args, output_dir)
    if judge.judge_id.endswith("-match"):
        raise ValueError("The generative benchmark needs an LLM judge (--judge openai or local)")
    records = {}
    for split in ("generic", "temporal", "consistency"):
        samples = load_vcg_samples(args.qa_dir, args.video_dir or ".", split, "", tuple(args.extensions.split(",")))
        records[split] = vcg_records(split, samples, read_jsonl(predictions_dir / f"{split}.jsonl"))
        (output_dir / f"{split}_predictions.json").write_text(json.dumps(records[split], indent=1))
    by_dimension, everything = {}, []
    for dimension, split in VCG_DIMENSIONS.items():
        by_dimension[dimension] = judge.judge(vcg_judge_tasks(dimension, records[split], compat=args.compat))
        everything += by_dimension[dimension]
    _write_judgments(output_dir / "vcg_judgments.jsonl", everything)
    report = vcg_report(by_dimension, judge.judge_id, model=getattr(args, "model_name", None) or "", compat=args.compat)
    _print_report(report, write_report(report, output_dir))
    return report


def cmd_run_vcg(args) -> dict:
    """``predict-vcg`` then, on the main process, ``judge-vcg`` into the same folder."""
    from .predict import distributed_state

    summaries = cmd_predict_vcg(args)
    if not distributed_state().is_main_process:
        return summaries
    args.predictions_dir = args.output_dir
    args.model_name = args.model
    return cmd_judge_vcg(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videopanda eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="predict, judge and report one zero-shot QA benchmark")
    _add_data_options(run)
    _add_model_options(run)
    _add_judge_options(run)
    run.add_argument("--output-dir", required=True)
    run.set_defaults(handler=cmd_run)

    predict = commands.add_parser("predict", help="answer a zero-shot QA benchmark (resumable, sharded)")
    _add_data_options(predict)
    _add_model_options(predict)
    predict.add_argument("--output", required=True, help="predictions JSONL")
    predict.set_defaults(handler=cmd_predict)

    judge = commands.add_parser("judge", help="judge a predictions JSONL and write the report")
    judge.add_argument("--predictions", required=True)
    judge.add_argument("--benchmark", choices=BENCHMARK_NAMES)
    judge.add_argument("--output-dir")
    judge.add_argument("--model-name", help="name shown in the report")
    _add_judge_options(judge)
    judge.set_defaults(handler=cmd_judge)

    report = commands.add_parser("report", help="recompute the report from saved judgments (no judge calls)")
    report.add_argument("--judgments", required=True)
    report.add_argument("--benchmark", choices=BENCHMARK_NAMES)
    report.add_argument("--output-dir")
    report.add_argument("--model-name")
    report.add_argument("--compat", action="store_true", help="the published arithmetic")
    report.set_defaults(handler=cmd_report)

    predict_vcg = commands.add_parser("predict-vcg", help="answer the Video-ChatGPT generative benchmark")
    predict_vcg.add_argument(
        "--qa-dir", required=True, help="folder with generic_qa.json, temporal_qa.json, consistency_qa.json"
    )
    predict_vcg.add_argument("--video-dir", required=True)
    predict_vcg.add_argument("--video-prefix", default="")
    predict_vcg.add_argument("--extensions", default=".mp4,.avi,.mov,.mkv,.webm")
    predict_vcg.add_argument("--output-dir", required=True)
    _add_model_options(predict_vcg)
    predict_vcg.set_defaults(handler=cmd_predict_vcg)

    judge_vcg = commands.add_parser("judge-vcg", help="judge the generative benchmark's five dimensions")
    judge_vcg.add_argument("--qa-dir", required=True)
    judge_vcg.add_argument("--predictions-dir", required=True)
    judge_vcg.add_argument("--video-dir")
    judge_vcg.add_argument("--extensions", default=".mp4,.avi,.mov,.mkv,.webm")
    judge_vcg.add_argument("--output-dir")
    judge_vcg.add_argument("--model-name")
    _add_judge_options(judge_vcg)
    judge_vcg.set_defaults(handler=cmd_judge_vcg)

    run_vcg = commands.add_parser("run-vcg", help="predict, judge and report the generative benchmark (Table 2)")
    run_vcg.add_argument("--qa-dir", required=True, help="folder with the three Benchmarking_QA files")
    run_vcg.add_argument("--video-dir", required=True)
    run_vcg.add_argument("--video-prefix", default="")
    run_vcg.add_argument("--extensions", default=".mp4,.avi,.mov,.mkv,.webm")
    run_vcg.add_argument("--output-dir", required=True)
    _add_model_options(run_vcg)
    _add_judge_options(run_vcg)
    run_vcg.set_defaults(handler=cmd_run_vcg)
    return parser


def main(argv=None) -> int:
    """Entry point of ``videopanda eval``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging()
    try:
        args.handler(args)
    except ValueError as error:
        parser.exit(2, f"videopanda eval {args.command}: error: {error}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
