"""Every ```python block of docs/hub.md runs as written next to a `videopanda-quickstart/` folder and `clip.mp4`."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from videopanda.hub import save_hub_folder
from videopanda.testing import make_video, tiny_model
from videopanda.testing import tiny_processor as build_processor

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[1] / "docs" / "hub.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def test_doc_has_the_issue_snippets():
    text = "\n".join(python_blocks())
    assert 'AutoModelForImageTextToText.from_pretrained(repo, trust_remote_code=True, dtype="auto")' in text
    assert "AutoProcessor.from_pretrained(repo, trust_remote_code=True)" in text
    assert 'pipeline("video-text-to-text", model="videopanda-quickstart", trust_remote_code=True)' in text
    assert 'pipe(video="clip.mp4", text="What is the man doing?"' in text


def test_doc_snippets_run_as_written(tmp_path):
    save_hub_folder(
        tiny_model(), build_processor(), tmp_path / "videopanda-quickstart", repo_id="me/tiny", base_model=None
    )
    make_video(tmp_path / "clip.mp4", num_frames=12)
    blocks = python_blocks()
    assert len(blocks) >= 6
    runner = "\n".join(
        [
            "import sys",
            f"blocks = {blocks!r}",
            "for index, block in enumerate(blocks):",
            "    print(f'--- block {index}', flush=True)",
            "    exec(compile(block, f'docs/hub.md block {index}', 'exec'), {'__name__': '__main__'})",
            "print('ALL-BLOCKS-RAN')",
        ]
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    run = subprocess.run(
        [sys.executable, "-c", runner], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert run.returncode == 0 and "ALL-BLOCKS-RAN" in run.stdout, (run.stdout[-2000:], run.stderr[-4000:])
    assert (tmp_path / "staged" / "README.md").is_file()  # the dry-run push block
    assert (tmp_path / "videopanda-lora-merged" / "pipeline_videopanda.py").is_file()  # the LoRA block
