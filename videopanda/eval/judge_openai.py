"""The published GPT-assisted judge, through any OpenAI-compatible endpoint, made reproducible.

Differences from the original scripts, all on purpose: temperature 0 and a fixed seed (the original sent neither, so
the API default temperature 1.0 applied), bounded concurrency, retries with exponential backoff on 429/timeouts/5xx,
a disk cache keyed by (judge model, prompt), and the model id the endpoint actually served kept with each reply.
"""

import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from tqdm.auto import tqdm

from .judge_base import ChatJudge
from .response_cache import ResponseCache, cache_key

logger = logging.getLogger(__name__)

#: the model the published scripts asked for; the alias drifts, so pin a dated id for numbers you publish
DEFAULT_JUDGE_MODEL = "gpt-3.5-turbo"


def _env(*names: str) -> str | None:
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    return None


class OpenAIJudge(ChatJudge):
    """GPT-assisted judging over an OpenAI-compatible chat-completions endpoint.

    Options fall back to the environment: ``VIDEOPANDA_JUDGE_BASE_URL`` / ``OPENAI_BASE_URL``,
    ``VIDEOPANDA_JUDGE_API_KEY`` / ``OPENAI_API_KEY`` and ``VIDEOPANDA_JUDGE_MODEL``. At most ``concurrency``
    requests are in flight; a request that keeps failing is recorded as a failed judgment (not cached), so a rerun
    retries it.
    """

    def __init__(
        self,
        model: str | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        max_retries: int = 6,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        timeout: float = 60.0,
        temperature: float = 0.0,
        seed: int | None = 0,
        max_tokens: int | None = None,
        cache: ResponseCache | str | None = None,
        progress: bool = True,
        client=None,
    ):
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.model = model or _env("VIDEOPANDA_JUDGE_MODEL") or DEFAULT_JUDGE_MODEL
        self.judge_id = self.model
        self.base_url = base_url or _env("VIDEOPANDA_JUDGE_BASE_URL", "OPENAI_BASE_URL")
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.params = {"temperature": temperature, "seed": seed, "max_tokens": max_tokens}
        self.cache = cache if isinstance(cache, ResponseCache) else ResponseCache(cache)
        self.progress = progress
        self.requests_sent = 0
        self._count_lock = threading.Lock()
        if client is None:
            import openai

            key = api_key or _env("VIDEOPANDA_JUDGE_API_KEY", "OPENAI_API_KEY")
            if key is None:
                if self.base_url is None:
                    raise ValueError(
                        "No judge API key: pass --judge-api-key or set VIDEOPANDA_JUDGE_API_KEY / OPENAI_API_KEY "
                        "(or point --judge-base-url at a local OpenAI-compatible server)"
                    )
                key = "none"
            client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=timeout, max_retries=0)
        self.client = client

    def _params(self) -> dict:
        return {name: value for name, value in self.params.items() if value is not None}

    def _retryable(self, error: Exception) -> bool:
        import openai

        if isinstance(error, (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError)):
            return True
        return isinstance(error, openai.APIStatusError) and error.status_code >= 500

    def _delay(self, attempt: int, error: Exception) -> float:
        delay = self.backoff * (2**attempt) * (1 + 0.25 * random.random())
        response = getattr(error, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after is not None:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        return min(delay, self.max_backoff)

    def _request(self, messages: list[dict]) -> tuple[str | None, str | None, str | None]:
        last_error = None
        for attempt in range(self.max_retries + 1):
            try:
                with self._count_lock:
                    self.requests_sent += 1
                response = self.client.chat.completions.create(model=self.model, messages=messages, **self._params())
                return response.choices[0].message.content or "", getattr(response, "model", None), None
            except Exception as error:  # noqa: BLE001 - classified below
                last_error = error
                if not self._retryable(error) or attempt == self.max_retries:
                    break
                delay = self._delay(attempt, error)
                logger.debug("Judge request failed (%s); retry %d in %.2fs", type(error).__name__, attempt + 1, delay)
                time.sleep(delay)
        return None, None, f"{type(last_error).__name__}: {last_error}"

    def complete(self, conversations: Sequence[list[dict]]) -> list[tuple[str | None, str | None, str | None]]:
        results: list = [None] * len(conversations)
        pending = []
        for index, messages in enumerate(conversations):
            key = cache_key(self.model, messages, self._params())
            hit = self.cache.get(key)
            if hit is not None:
                results[index] = (hit["response"], hit.get("served_model"), None)
            else:
                pending.append((index, key, messages))
        if pending:
            logger.info(
                "Judging %d samples with %s (%d cached, concurrency %d)",
                len(pending),
                self.model,
                len(conversations) - len(pending),
                self.concurrency,
            )
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self._request, messages): (index, key, messages) for index, key, messages in pending}
            for future in tqdm(
                as_completed(futures),
                total=len(futures),
                desc=f"judge {self.model}",
                disable=not self.progress or not futures,
            ):
                index, key, messages = futures[future]
                text, served_model, error = future.result()
                if text is not None:
                    self.cache.put(
                        key,
                        {
                            "model": self.model,
                            "served_model": served_model,
                            "messages": messages,
                            "params": self._params(),
                            "response": text,
                        },
                    )
                else:
                    logger.warning("Judge request for sample %d failed: %s", index, error)
                results[index] = (text, served_model, error)
        return results
