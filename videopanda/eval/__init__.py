"""Evaluation of Video-Panda: the paper's benchmarks (Tables 1-2), reproducible judging, reports, lmms-eval glue.

Command line: ``videopanda eval predict|judge|report|run ...`` (see ``videopanda.eval.cli``); docs/evaluation.md.
"""

from .judge_base import ChatJudge, Judge, JudgeTask, Judgment
from .judge_local import LocalJudge
from .judge_match import MatchJudge
from .judge_openai import OpenAIJudge
from .metrics import breakdown, qa_metrics, score_metrics
from .parsing import strict_parse, tolerant_parse
from .prompts import PROMPTS, render_messages
from .response_cache import ResponseCache

__all__ = [
    "PROMPTS",
    "ChatJudge",
    "Judge",
    "JudgeTask",
    "Judgment",
    "LocalJudge",
    "MatchJudge",
    "OpenAIJudge",
    "ResponseCache",
    "breakdown",
    "qa_metrics",
    "render_messages",
    "score_metrics",
    "strict_parse",
    "tolerant_parse",
]
