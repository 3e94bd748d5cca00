"""Evaluation of Video-Panda: the paper's benchmarks (Tables 1-2), reproducible judging, reports, lmms-eval glue.

Command line: ``videopanda eval run|predict|judge|report|predict-vcg|judge-vcg`` (``videopanda.eval.cli.main``);
see docs/evaluation.md. lmms-eval: ``--model videopanda`` and ``--include_path videopanda/eval/lmms_tasks``.
"""

from .datasets import BENCHMARKS, QASample, VCGSample, load_benchmark, load_qa_samples, load_vcg_samples
from .judge_base import ChatJudge, Judge, JudgeTask, Judgment
from .judge_local import LocalJudge
from .judge_match import MatchJudge
from .judge_openai import OpenAIJudge
from .metrics import breakdown, qa_metrics, score_metrics
from .parsing import strict_parse, tolerant_parse
from .predict import GenerationRequest, predict
from .prompts import PROMPTS, render_messages
from .report import qa_report, render_markdown, vcg_report, write_report
from .response_cache import ResponseCache


def main(argv=None) -> int:
    """``videopanda eval ...`` (see :mod:`videopanda.eval.cli`; imported lazily so ``python -m`` stays clean)."""
    from .cli import main as cli_main

    return cli_main(argv)


__all__ = [
    "BENCHMARKS",
    "PROMPTS",
    "ChatJudge",
    "GenerationRequest",
    "Judge",
    "JudgeTask",
    "Judgment",
    "LocalJudge",
    "MatchJudge",
    "OpenAIJudge",
    "QASample",
    "ResponseCache",
    "VCGSample",
    "breakdown",
    "load_benchmark",
    "load_qa_samples",
    "load_vcg_samples",
    "main",
    "predict",
    "qa_metrics",
    "qa_report",
    "render_markdown",
    "render_messages",
    "score_metrics",
    "strict_parse",
    "tolerant_parse",
    "vcg_report",
    "write_report",
]
