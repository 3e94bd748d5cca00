"""Reading judge replies: a tolerant parser (fixed mode) and the original's strict one (``--compat``).

Judges are asked for a Python dict string, but the published prompt's own example ``{''score': 4.8}`` is malformed and
real replies come wrapped in code fences, prose or JSON. The tolerant parser recovers ``pred``/``score`` from all of
these and says why when it cannot; the strict parser is exactly the original ``ast.literal_eval(content)``.
"""

import ast
import json
import math
import re
from dataclasses import dataclass

_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.DOTALL)
_BRACES = re.compile(r"\{[^{}]*\}", re.DOTALL)
_DOUBLED_QUOTES = re.compile(r"(['\"]){2,}(?=\w)")
_PRED_FALLBACK = re.compile(r"""pred\w*['"]*\s*[:=]\s*['"]*\s*(yes|no)\b""", re.IGNORECASE)
_SCORE_FALLBACK = re.compile(r"""score['"]*\s*[:=]\s*['"]*\s*(-?\d+(?:\.\d+)?)""", re.IGNORECASE)
_PUNCT = re.compile(r"[^\w\s]")


@dataclass
class ParsedReply:
    """What the tolerant parser found: normalised ``pred`` (``"yes"``/``"no"``), ``score`` and the problem, if any."""

    pred: str | None
    score: float | None
    error: str | None = None


def strict_parse(text: str | None):
    """The original parser: ``ast.literal_eval(content)``; returns ``None`` where the original would have failed."""
    if text is None:
        return None
    try:
        return ast.literal_eval(text)
    except Exception:  # noqa: BLE001 - the original caught everything and retried the sample
        return None


def _candidate_dicts(text: str):
    """Dictionaries hidden in a reply: the whole text, fenced blocks, then every ``{...}`` span."""
    pieces = [text.strip()]
    pieces += [block.strip() for block in _FENCE.findall(text)]
    pieces += _BRACES.findall(text)
    for piece in pieces:
        for candidate in (piece, _DOUBLED_QUOTES.sub(r"\1", piece)):
            for loader in (ast.literal_eval, json.loads):
                try:
                    value = loader(candidate)
                except Exception:  # noqa: BLE001, S112 - try the next repair
                    continue
                if isinstance(value, dict):
                    yield value


def _lookup(mapping: dict, key: str):
    for name, value in mapping.items():
        if isinstance(name, str) and name.strip().strip("'\"").lower() == key:
            return value
    return None


def normalise_pred(value) -> str | None:
    """``"yes"``/``"no"`` for a yes/no verdict (``"Yes."``, ``" NO "``); ``None`` for anything else.

    The original used substring tests (``"no" in pred.lower()``), which count "not sure" or "unknown" as "no".
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, str):
        return None
    words = _PUNCT.sub(" ", value).lower().split()
    return words[0] if len(words) == 1 and words[0] in ("yes", "no") else None


def normalise_score(value, low: float = 0.0, high: float = 5.0) -> float | None:
    """A finite number within ``[low, high]`` as ``float`` (no ``int()`` truncation: 4.8 stays 4.8), else ``None``."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value) if low <= value <= high else None


def tolerant_parse(text: str | None, needs_pred: bool = True) -> ParsedReply:
    """Recover ``pred`` and ``score`` from a judge reply, however it is wrapped.

    ``needs_pred=False`` is for the score-only protocols (the generative benchmark). ``error`` names what is missing
    or invalid, so unparseable samples can be counted and inspected instead of silently dropped.
    """
    if text is None or not text.strip():
        return ParsedReply(None, None, "empty reply")
    pred_value = score_value = None
    for candidate in _candidate_dicts(text):
        pred_value = _lookup(candidate, "pred")
        score_value = _lookup(candidate, "score")
        if score_value is not None or pred_value is not None:
            break
    if pred_value is None and (match := _PRED_FALLBACK.search(text)):
        pred_value = match.group(1)
    if score_value is None and (match := _SCORE_FALLBACK.search(text)):
        score_value = match.group(1)
    pred = normalise_pred(pred_value) if needs_pred else None
    score = normalise_score(score_value)
    problems = []
    if needs_pred and pred is None:
        problems.append("no yes/no 'pred'" if pred_value is None else f"invalid 'pred' {pred_value!r}")
    if score is None:
        problems.append("no 'score'" if score_value is None else f"invalid 'score' {score_value!r} (expected 0-5)")
    return ParsedReply(pred, score, "; ".join(problems) or None)
