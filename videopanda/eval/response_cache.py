"""An on-disk cache of judge replies keyed by (judge model, prompt), so reruns cost nothing and stay identical.

Stored as append-only JSONL (one reply per line, prompt included) so the cache doubles as a log of raw judge
outputs and survives an interrupted run; a truncated last line from a killed process is ignored.
"""

import hashlib
import json
import logging
import threading
from pathlib import Path

logger = logging.getLogger(__name__)


def cache_key(model: str, messages: list[dict], params: dict | None = None) -> str:
    """Stable hash of the judge model id, the exact messages and the sampling parameters that change replies."""
    payload = json.dumps({"model": model, "messages": messages, "params": params or {}}, sort_keys=True)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    """Thread-safe JSONL cache; ``path=None`` keeps it in memory only."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self._entries: dict[str, dict] = {}
        self._lock = threading.Lock()
        if self.path is not None and self.path.exists():
            with open(self.path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    try:
                        entry = json.loads(line)
                        self._entries[entry["key"]] = entry
                    except (json.JSONDecodeError, KeyError, TypeError):
                        logger.warning("Ignoring unreadable line %d of judge cache %s", number, self.path)
            logger.info("Loaded %d cached judge replies from %s", len(self._entries), self.path)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> dict | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: str, entry: dict) -> None:
        entry = {"key": key, **entry}
        with self._lock:
            self._entries[key] = entry
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a+", encoding="utf-8") as handle:
                    handle.seek(0, 2)
                    if handle.tell() > 0:
                        handle.seek(handle.tell() - 1)
                        if handle.read(1) != "\n":
                            handle.write("\n")
                    handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
