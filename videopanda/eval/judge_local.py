"""A local judge: any transformers chat model, the same published prompts, greedy decoding, no network.

Useful when no API is available or to get an open, pinned judge whose numbers anyone can reproduce. Its scores are
not comparable with GPT-judged numbers in the paper; reports name the judge next to every number for that reason.
"""

import logging
from collections.abc import Sequence

from tqdm.auto import tqdm

from .judge_base import ChatJudge

logger = logging.getLogger(__name__)


class LocalJudge(ChatJudge):
    """Judge with a ``text-generation`` pipeline over a chat model (model id/path, or a ready pipeline)."""

    def __init__(
        self,
        model,
        max_new_tokens: int = 64,
        batch_size: int = 8,
        device=None,
        dtype=None,
        progress: bool = True,
        **pipeline_kwargs,
    ):
        from transformers import Pipeline, pipeline

        if isinstance(model, Pipeline):
            self.pipe = model
        else:
            self.pipe = pipeline("text-generation", model=model, device=device, dtype=dtype, **pipeline_kwargs)
        tokenizer = self.pipe.tokenizer
        if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("The local judge needs a chat model whose tokenizer has a chat template")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
        self.judge_id = f"local:{self.pipe.model.name_or_path}"
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.progress = progress

    def complete(self, conversations: Sequence[list[dict]]):
        results = []
        for start in tqdm(
            range(0, len(conversations), self.batch_size),
            desc=self.judge_id,
            disable=not self.progress or not conversations,
        ):
            batch = list(conversations[start : start + self.batch_size])
            outputs = self.pipe(
                batch,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                return_full_text=False,
                batch_size=len(batch),
            )
            for output in outputs:
                text = output[0]["generated_text"]
                if isinstance(text, list):  # some versions return the chat with the new assistant turn appended
                    text = text[-1]["content"]
                results.append((text, self.judge_id, None))
        return results
