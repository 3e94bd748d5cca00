"""The one judge interface: tasks in, judgments (with the raw reply) out.

Three judges implement it: the GPT-assisted protocol over any OpenAI-compatible endpoint, a local transformers chat
model, and an exact/normalised-match scorer. Judgments keep the judge's raw text so both the fixed arithmetic and the
original (``--compat``) arithmetic can be computed from one judging run, and so every number can be audited.
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from .parsing import tolerant_parse
from .prompts import PROMPTS, render_messages


@dataclass
class JudgeTask:
    """One sample to judge: ``protocol`` is ``qa`` or a generative-benchmark dimension; ``fields`` fill the prompt."""

    uid: str
    protocol: str
    fields: dict
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.protocol not in PROMPTS:
            raise ValueError(f"Unknown judge protocol {self.protocol!r}; expected one of {sorted(PROMPTS)}")


@dataclass
class Judgment:
    """A judge's verdict on one task.

    ``pred``/``score`` are the tolerant (fixed-mode) reading; ``raw`` is the reply as received, which the compat
    arithmetic re-parses strictly. ``error`` is set when the request failed (``raw is None``) or the reply could not
    be read; ``served_model`` is the model id the endpoint says it used (aliases drift).
    """

    uid: str
    protocol: str
    judge_id: str
    raw: str | None
    pred: str | None
    score: float | None
    error: str | None = None
    served_model: str | None = None
    meta: dict = field(default_factory=dict)
    kind: str = "llm"

    @property
    def request_failed(self) -> bool:
        return self.kind == "llm" and self.raw is None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Judgment":
        return cls(**{name: data.get(name) for name in cls.__dataclass_fields__ if name in data})


class Judge(ABC):
    """Anything that turns :class:`JudgeTask` s into :class:`Judgment` s; ``judge_id`` is shown next to numbers."""

    judge_id: str = "judge"

    @abstractmethod
    def judge(self, tasks: Sequence[JudgeTask]) -> list[Judgment]:
        """Judge all tasks; the result is in task order."""


class ChatJudge(Judge):
    """Base of the LLM judges: render the published prompts, ask the model, parse tolerantly."""

    @abstractmethod
    def complete(self, conversations: Sequence[list[dict]]) -> list[tuple[str | None, str | None, str | None]]:
        """Reply to each conversation: ``(text, served_model, error)``; ``text is None`` when the request failed."""

    def judge(self, tasks: Sequence[JudgeTask]) -> list[Judgment]:
        conversations = [render_messages(task.protocol, task.fields) for task in tasks]
        replies = self.complete(conversations)
        judgments = []
        for task, (text, served_model, request_error) in zip(tasks, replies, strict=True):
            parsed = tolerant_parse(text, needs_pred=task.protocol == "qa")
            judgments.append(
                Judgment(
                    uid=task.uid,
                    protocol=task.protocol,
                    judge_id=self.judge_id,
                    raw=text,
                    pred=parsed.pred,
                    score=parsed.score,
                    error=request_error if text is None else parsed.error,
                    served_model=served_model,
                    meta=dict(task.meta),
                )
            )
        return judgments
