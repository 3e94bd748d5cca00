"""Shared pytest fixtures: the real LLaMA tokenizer copied into tests/fixtures and a tiny processor built on it."""

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    """tests/fixtures (small data copied from the reference fixtures; see tests/fixtures/README.md)."""
    return FIXTURES


@pytest.fixture(scope="session")
def llama_tokenizer_dir() -> Path:
    """Folder of the original LLaMA / Vicuna 32000-token tokenizer (`tokenizer.json` + configs)."""
    return FIXTURES / "llama-tokenizer"


@pytest.fixture
def llama_tokenizer(llama_tokenizer_dir):
    """A fresh LLaMA tokenizer, loaded as `PreTrainedTokenizerFast(tokenizer_file=...)` for SentencePiece-exact ids
    (`AutoTokenizer` would drop a leading space). Fresh per test: processors add `<video>` to it."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(llama_tokenizer_dir / "tokenizer.json"), bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


@pytest.fixture
def tiny_processor(llama_tokenizer):
    """`VideoPandaProcessor` for 112x112 frames (the tiny model's size) with the LLaMA tokenizer (`<video>` = 32000)."""
    from videopanda.testing import tiny_processor as build

    return build(image_size=112, tokenizer=llama_tokenizer)
