"""Append-only JSONL files keyed by an id: what makes prediction runs resumable.

A run appends each finished batch and flushes it to disk, so a killed run loses at most the batch in flight; a
rerun reads the ids already present and skips them. A last line cut short by a kill is dropped (and overwritten by
the next append), never parsed into a bogus record.
"""

import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


def read_jsonl(path: str | Path, key: str | None = None) -> list[dict]:
    """Records of a JSONL file; unreadable lines are skipped with a warning. With ``key``, later duplicates are
    dropped (first record wins)."""
    path = Path(path)
    if not path.exists():
        return []
    records, seen = [], set()
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("Skipping unreadable line %d of %s (interrupted write?)", number, path)
            continue
        if key is not None:
            if record.get(key) in seen:
                continue
            seen.add(record.get(key))
        records.append(record)
    return records


class Journal:
    """An append-only JSONL file of records identified by ``record[key]``."""

    def __init__(self, path: str | Path, key: str = "id"):
        self.path = Path(path)
        self.key = key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self.ids = {record[key] for record in read_jsonl(self.path) if key in record}

    def _repair_tail(self) -> None:
        """Cut a partial last line left by a killed writer so the next append starts on a fresh line."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            logger.warning("Dropping a partial last line of %s (interrupted write)", self.path)
            with open(self.path, "r+b") as handle:
                handle.truncate(cut)

    def __contains__(self, record_id) -> bool:
        return record_id in self.ids

    def append(self, records: list[dict]) -> None:
        """Append records not yet present; flushed and fsynced, so what is written survives a kill."""
        fresh = [record for record in records if record[self.key] not in self.ids]
        if not fresh:
            return
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in fresh))
            handle.flush()
            os.fsync(handle.fileno())
        self.ids.update(record[self.key] for record in fresh)
