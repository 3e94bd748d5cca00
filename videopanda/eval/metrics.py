"""The arithmetic behind the reported numbers, fixed and ``--compat`` (the original, bugs included).

Fixed mode (default), over the tolerant parse of each reply:
  * a sample counts only if its reply was read completely (yes/no ``pred`` and a 0-5 ``score`` for QA, a 0-5 score
    for the generative benchmark); the others are reported as ``unparseable`` (and failed requests as ``failed``),
    never silently folded into a denominator;
  * accuracy = yes / (yes + no); average score = mean of the scores as given (4.8 stays 4.8, no ``int()``).
Compat mode reproduces the published scripts exactly:
  * a reply enters the merged results only if ``ast.literal_eval`` reads it (the original retried the others and
    finally gave up on them), and every merged result counts in the score denominator, even when ``int(score)``
    fails (``count += 1`` sits before the ``try``);
  * score = ``int(score)`` (truncation); ``pred`` is classified by substring tests (``"yes" in pred.lower()``, then
    ``"no" in ...``), so "unknown" counts as "no"; a failing ``int(score)`` skips the sample's ``pred``.
The consistency prompt bug (Q1 sent twice) is a prompt matter, handled where tasks are built (``vcgbench``).
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

from .judge_base import Judgment
from .parsing import strict_parse

logger = logging.getLogger(__name__)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def qa_metrics(judgments: Iterable[Judgment], compat: bool = False) -> dict:
    """Accuracy (0-1), average score (0-5) and the counts behind them for open-ended QA judgments."""
    judgments = list(judgments)
    failed = sum(1 for judgment in judgments if judgment.request_failed)
    if compat and any(judgment.kind == "llm" for judgment in judgments):
        return _qa_metrics_compat(judgments, failed)
    yes = no = scored = 0
    score_sum = 0.0
    unparseable = 0
    for judgment in judgments:
        if judgment.request_failed:
            continue
        needs_score = judgment.kind == "llm"
        if judgment.pred is None or (needs_score and judgment.score is None):
            unparseable += 1
            continue
        yes += judgment.pred == "yes"
        no += judgment.pred == "no"
        if judgment.score is not None:
            scored += 1
            score_sum += judgment.score
    return {
        "mode": "fixed",
        "accuracy": _ratio(yes, yes + no),
        "average_score": _ratio(score_sum, scored),
        "yes": yes,
        "no": no,
        "counted": yes + no,
        "total": len(judgments),
        "unparseable": unparseable,
        "failed": failed,
    }


def _qa_metrics_compat(judgments: list[Judgment], failed: int) -> dict:
    yes = no = count = 0
    score_sum = 0
    dropped = 0
    for judgment in judgments:
        result = strict_parse(judgment.raw)
        if result is None:  # never merged by the original (literal_eval failed or the request never succeeded)
            dropped += 0 if judgment.request_failed else 1
            continue
        count += 1
        try:
            score_sum += int(result["score"])
            pred = result["pred"]
            if "yes" in pred.lower():
                yes += 1
            elif "no" in pred.lower():
                no += 1
        except Exception:  # noqa: BLE001 - the original's bare except
            logger.debug("compat: sample %s counted without a usable score/pred: %r", judgment.uid, result)
    return {
        "mode": "compat",
        "accuracy": _ratio(yes, yes + no),
        "average_score": _ratio(score_sum, count),
        "yes": yes,
        "no": no,
        "counted": count,
        "total": len(judgments),
        "unparseable": dropped,
        "failed": failed,
    }


def score_metrics(judgments: Iterable[Judgment], compat: bool = False) -> dict:
    """Average 0-5 score of one generative-benchmark dimension (correctness, detail, context, temporal, consistency)."""
    judgments = list(judgments)
    failed = sum(1 for judgment in judgments if judgment.request_failed)
    if compat:
        count = score_sum = dropped = 0
        for judgment in judgments:
            result = strict_parse(judgment.raw)
            if result is None:
                dropped += 0 if judgment.request_failed else 1
                continue
            count += 1
            try:
                score_sum += int(result["score"])
            except Exception:  # noqa: BLE001 - the original crashed here; count it like the QA script does
                logger.warning(
                    "compat: sample %s has no int() score (the original script would crash): %r", judgment.uid, result
                )
        return {
            "mode": "compat",
            "average_score": _ratio(score_sum, count),
            "counted": count,
            "total": len(judgments),
            "unparseable": dropped,
            "failed": failed,
        }
    scores = [judgment.score for judgment in judgments if not judgment.request_failed and judgment.score is not None]
    unparseable = sum(1 for judgment in judgments if not judgment.request_failed and judgment.score is None)
    return {
        "mode": "fixed",
        "average_score": _ratio(sum(scores), len(scores)),
        "counted": len(scores),
        "total": len(judgments),
        "unparseable": unparseable,
        "failed": failed,
    }


def breakdown(judgments: Iterable[Judgment], key: Callable[[Judgment], object], compat: bool = False) -> dict:
    """``qa_metrics`` per group (e.g. per question type), groups sorted by their key."""
    groups = defaultdict(list)
    for judgment in judgments:
        groups[key(judgment)].append(judgment)
    return {str(name): qa_metrics(groups[name], compat=compat) for name in sorted(groups, key=str)}
