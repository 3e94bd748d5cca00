"""LLaVA-style video instruction data (Valley-702K, Video-ChatGPT-100K) as a `datasets.Dataset`.

Records look like ``{"id", "video": "relative/path.mp4", "conversations": [{"from": "human", "value": "<video>\\n..."},
{"from": "gpt", "value": "..."}]}`` in a JSON list or in JSONL. Videos are not decoded here: the dataset keeps the
resolved path and the turns, and the collator decodes lazily with the processor.

Unlike the original (which silently substituted a random other video), a record is dropped and counted when its video
path escapes the video root (``..``, an absolute path, a symlink pointing outside), when the file is missing, or when
PyAV cannot decode a frame from it. The counts and the first examples of each reason go into a `DataReport`.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from datasets import Dataset
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

VIDEO_PLACEHOLDER = "<video>"
ROLE_NAMES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
REJECTION_REASONS = ("bad_record", "unsafe_path", "missing_video", "corrupt_video", "decode_failed", "too_long")
MAX_EXAMPLES = 20


@dataclass
class DataReport:
    """What was kept and what was rejected, by reason, with a few example ids and messages per reason."""

    total: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    examples: dict = field(default_factory=dict)

    def reject(self, reason: str, sample_id: str, detail: str) -> None:
        if reason not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}.")
        self.rejected[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append({"id": sample_id, "detail": detail})

    @property
    def num_rejected(self) -> int:
        return sum(self.rejected.values())

    def to_dict(self) -> dict:
        return {"total": self.total, "kept": self.kept, "rejected": dict(self.rejected), "examples": self.examples}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    def summary(self) -> str:
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.rejected.items())) or "none"
        return f"{self.kept} of {self.total} samples usable; rejected: {reasons}"


def read_records(path: str | Path) -> list[dict]:
    """A JSON list of records, or JSONL (one record per line)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data file {path} does not exist.")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl" or not text.lstrip().startswith("["):
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        records = json.loads(text)
    if not isinstance(records, list):
        raise ValueError(f"{path} must hold a JSON list of records or JSONL.")  # noqa: TRY004
    return records


def resolve_video_path(video_root: str | Path, relative: str) -> Path:
    """Join ``relative`` under ``video_root``; raise ValueError if it escapes the root in any way."""
    if not isinstance(relative, str) or not relative:
        raise ValueError(f"video path must be a non-empty string, got {relative!r}.")
    posix = PurePosixPath(relative.replace("\\", "/"))
    if posix.is_absolute() or os.path.isabs(relative) or (len(relative) > 1 and relative[1] == ":"):
        raise ValueError(f"absolute video path {relative!r} is not allowed; paths are relative to the video root.")
    if ".." in posix.parts:
        raise ValueError(f"video path {relative!r} contains '..'.")
    root = Path(video_root).resolve()
    candidate = root.joinpath(*posix.parts)
    resolved = candidate.resolve()  # follows symlinks, also of missing files' parents
    if resolved != root and root not in resolved.parents:
        raise ValueError(f"video path {relative!r} resolves to {resolved}, outside the video root {root}.")
    return candidate


def check_video(path: Path) -> str | None:
    """None if PyAV decodes one frame from ``path``, else the reason."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "no video stream"
            for _ in container.decode(video=0):
                return None
        return "no decodable frame"
    except Exception as error:  # noqa: BLE001 (PyAV raises many error types for broken files)
        return f"{type(error).__name__}: {error}"


def conversation_turns(record: dict) -> list[dict]:
    """``conversations`` -> ``[{"role", "text"}]`` with the ``<video>`` placeholder removed from the text."""
    conversations = record.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        raise ValueError("record has no 'conversations' list.")
    turns = []
    for turn in conversations:
        role = ROLE_NAMES.get(str(turn.get("from", turn.get("role", ""))).lower())
        value = turn.get("value", turn.get("content"))
        if role is None or not isinstance(value, str):
            raise ValueError(f"bad turn {turn!r}: needs 'from' in {sorted(ROLE_NAMES)} and a string 'value'.")
        turns.append({"role": role, "text": value.replace(VIDEO_PLACEHOLDER, "").strip()})
    if not any(t["role"] == "assistant" for t in turns):
        raise ValueError("record has no assistant ('gpt') turn to learn from.")
    return turns


def to_messages(turns: list[dict], video: str | None) -> list[dict]:
    """Chat messages for the processor; the video goes first in the first user turn (as the original moved it)."""
    messages, placed = [], video is None
    for turn in turns:
        content = []
        if not placed and turn["role"] == "user":
            content.append({"type": "video", "path": video})
            placed = True
        if turn["text"]:
            content.append({"type": "text", "text": turn["text"]})
        messages.append({"role": turn["role"], "content": content})
    return messages


def subset_indices(num_records: int, fraction: float, seed: int) -> list[int]:
    """A seeded, reproducible subset (kept in file order), e.g. stage 1's half of Valley."""
    if not 0 < fraction <= 1:
        raise ValueError(f"subset fraction must be in (0, 1], got {fraction}.")
    count = max(1, int(num_records * fraction)) if num_records else 0
    chosen = np.random.default_rng(seed).permutation(num_records)[:count]
    return sorted(chosen.tolist())


def build_dataset(
    data_files: str | Path | list[str | Path],
    video_root: str | Path,
    subset_fraction: float = 1.0,
    seed: int = 42,
    verify_videos: bool = True,
    report_path: str | Path | None = None,
) -> tuple[Dataset, DataReport]:
    """Load, check and convert LLaVA-style records; raise ValueError when no sample is usable.

    The dataset has columns ``id``, ``video`` (resolved path or None for text-only records) and ``turns``.
    """
    files = [data_files] if isinstance(data_files, (str, Path)) else list(data_files)
    video_root = Path(video_root)
    if not video_root.is_dir():
        raise ValueError(f"video root {video_root} is not a directory.")
    records = [record for file in files for record in read_records(file)]
    if subset_fraction < 1:
        records = [records[i] for i in subset_indices(len(records), subset_fraction, seed)]
    report = DataReport(total=len(records))
    rows = {"id": [], "video": [], "turns": []}
    for index, record in enumerate(tqdm(records, desc="checking samples", disable=len(records) < 1000)):
        sample_id = str(record.get("id", index)) if isinstance(record, dict) else str(index)
        try:
            if not isinstance(record, dict):
                raise ValueError("record is not a JSON object.")  # noqa: TRY004
            turns = conversation_turns(record)
        except ValueError as error:
            report.reject("bad_record", sample_id, str(error))
            continue
        video = record.get("video")
        if video is not None:
            try:
                path = resolve_video_path(video_root, video)
            except ValueError as error:
                report.reject("unsafe_path", sample_id, str(error))
                continue
            if not path.is_file():
                report.reject("missing_video", sample_id, f"{video} not found under {video_root}")
                continue
            problem = check_video(path) if verify_videos else None
            if problem is not None:
                report.reject("corrupt_video", sample_id, f"{video}: {problem}")
                continue
            video = str(path)
        rows["id"].append(sample_id)
        rows["video"].append(video)
        rows["turns"].append(turns)
    report.kept = len(rows["id"])
    if report_path is not None:
        report.save(report_path)
    if report.num_rejected:
        logger.warning("Data: %s", report.summary())
    else:
        logger.info("Data: %s", report.summary())
    if not report.kept:
        raise ValueError(
            f"no usable training samples in {[str(f) for f in files]} (video root {video_root}): {report.summary()}. "
            f"First problems: {json.dumps(report.examples)[:1000]}"
        )
    return Dataset.from_dict(rows), report


__all__ = [
    "DataReport",
    "build_dataset",
    "check_video",
    "conversation_turns",
    "read_records",
    "resolve_video_path",
    "subset_indices",
    "to_messages",
]
