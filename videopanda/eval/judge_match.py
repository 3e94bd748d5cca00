"""An exact / normalised-match scorer: no LLM, fully deterministic, reported alongside the judged numbers.

Open-ended answers in MSVD/MSRVTT/TGIF-QA are mostly one or two words, so a normalised match is a useful,
judge-independent lower bound. It scores accuracy only (``score`` is ``None``).
"""

import re
from collections.abc import Sequence

from .judge_base import Judge, JudgeTask, Judgment

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = re.compile(r"[^\w\s]")


def normalise_answer(text) -> str:
    """Lower case, punctuation and articles removed, whitespace collapsed (SQuAD-style)."""
    text = _PUNCT.sub(" ", str(text).lower())
    return " ".join(_ARTICLES.sub(" ", text).split())


class MatchJudge(Judge):
    """``mode="exact"``: normalised prediction equals normalised answer; ``"contains"``: the answer's words appear
    as a contiguous phrase in the prediction ("a man is cooking" matches "man")."""

    def __init__(self, mode: str = "contains"):
        if mode not in ("exact", "contains"):
            raise ValueError(f"mode must be 'exact' or 'contains', got {mode!r}")
        self.mode = mode
        self.judge_id = f"{mode}-match"

    def matches(self, answer, pred) -> bool:
        answer, pred = normalise_answer(answer), normalise_answer(pred)
        if not answer:
            return False
        if self.mode == "exact":
            return answer == pred
        return f" {answer} " in f" {pred} "

    def judge(self, tasks: Sequence[JudgeTask]) -> list[Judgment]:
        judgments = []
        for task in tasks:
            if task.protocol != "qa":
                raise ValueError(f"The {self.judge_id} scorer only supports the 'qa' protocol, got {task.protocol!r}")
            verdict = "yes" if self.matches(task.fields["answer"], task.fields["pred"]) else "no"
            judgments.append(
                Judgment(
                    uid=task.uid,
                    protocol="qa",
                    judge_id=self.judge_id,
                    raw=None,
                    pred=verdict,
                    score=None,
                    meta=dict(task.meta),
                    kind="match",
                )
            )
        return judgments
