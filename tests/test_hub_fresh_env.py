"""Remote code that loads anywhere: a dry-run push stages a folder that a runtime-only venv (no videopanda) loads.

The venv is built once and cached (see `fresh_venv_python`); the folder is loaded there with every advertised Auto
class and the three pipelines, and must generate exactly the tokens of the in-process model. Slow (about a minute
plus a one-time 1.5-minute venv build), hence marked `slow`.
"""

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from filelock import FileLock

from videopanda.hub import check_folder, push
from videopanda.testing import make_video, tiny_model
from videopanda.testing import tiny_processor as build_processor

pytestmark = pytest.mark.slow

QUESTION = "What is moving in the video?"
MAX_NEW_TOKENS = 6  # hub_check.py's default
# What a user needs to load a checkpoint with trust_remote_code (no trl, peft, datasets, accelerate, gradio, ...).
RUNTIME_DISTRIBUTIONS = (
    "torch",
    "torchvision",
    "transformers",
    "huggingface_hub",
    "tokenizers",
    "safetensors",
    "av",
    "numpy",
    "pillow",
    "jinja2",
)
INSTALL_TIMEOUT_S = 1800


def runtime_requirements() -> list[str]:
    """The runtime distributions pinned to this environment's versions, so both sides run the same code."""
    return [f"{name}=={importlib.metadata.version(name)}" for name in RUNTIME_DISTRIBUTIONS]


def fresh_venv_python() -> Path:
    """Interpreter of a venv with only the runtime requirements, built once under ~/.cache/videopanda-tests.

    Keyed by a hash of the Python version and the pinned requirements; `$VIDEOPANDA_TEST_CACHE` moves the cache.
    """
    requirements = runtime_requirements()
    key = hashlib.sha256("\n".join([sys.version, *requirements]).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("VIDEOPANDA_TEST_CACHE", Path.home() / ".cache" / "videopanda-tests"))
    root = cache / f"fresh-venv-{key}"
    python, marker = root / "bin" / "python", root / ".complete"
    if marker.is_file():
        return python
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root) + ".lock", timeout=INSTALL_TIMEOUT_S):
        if marker.is_file():
            return python
        shutil.rmtree(root, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(root)], check=True, timeout=300)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
        if install.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"Could not build the runtime-only venv {requirements}:\n{install.stderr[-3000:]}")
        (root / "requirements.txt").write_text("\n".join(requirements) + "\n")
        marker.write_text("ok\n")
    return python


@pytest.fixture(scope="module")
def fresh_python():
    python = fresh_venv_python()
    probe = subprocess.run(
        [str(python), "-c", "import transformers, torchvision, av; import videopanda"],
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
    )
    assert probe.returncode != 0 and "No module named 'videopanda'" in probe.stderr, probe.stderr
    return python


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny model + processor (real LLaMA tokenizer), a clip, and the in-process reference outputs."""
    from transformers import PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("hub")
    tokenizer_dir = Path(__file__).parent / "fixtures" / "llama-tokenizer"
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_dir / "tokenizer.json"), bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    model = tiny_model()
    processor = build_processor(image_size=112, tokenizer=tokenizer)
    clip = make_video(root / "clip.mp4", num_frames=12)
    messages = [{"role": "user", "content": [{"type": "video", "path": str(clip)}, {"type": "text", "text": QUESTION}]}]
    inputs = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    with torch.no_grad():
        sequences = model.generate(**inputs, max_new_tokens=MAX_NEW_TOKENS, do_sample=False, num_beams=1)
        hidden = model.model(**inputs).last_hidden_state
    new_tokens = sequences[0, inputs["input_ids"].shape[1] :].tolist()
    # A checkpoint as Trainer writes it: model + processor, training state, no card.
    checkpoint = root / "checkpoint-10"
    model.save_pretrained(checkpoint)
    processor.save_pretrained(checkpoint)
    torch.save({"state": 1}, checkpoint / "optimizer.pt")
    (checkpoint / "trainer_state.json").write_text("{}")
    return {
        "root": root,
        "clip": clip,
        "checkpoint": checkpoint,
        "input_ids": inputs["input_ids"][0].tolist(),
        "pixel_sum": float(inputs["pixel_values_videos"].double().sum()),
        "hidden_sum": float(hidden.double().sum()),
        "new_tokens": new_tokens,
        "text": processor.decode(new_tokens, skip_special_tokens=True).strip(),
    }


@pytest.fixture(scope="module")
def staged(tiny):
    """`push(..., dry_run=True)`: assembles, statically checks and load-tests (fresh process) the staging folder."""
    stage = tiny["root"] / "stage"
    result = push(
        tiny["checkpoint"],
        "me/videopanda-tiny",
        dry_run=True,
        output_dir=stage,
        base_model=None,
        max_new_tokens=MAX_NEW_TOKENS,
    )
    return result


def test_dry_run_stages_exactly_the_upload(staged, tiny):
    on_disk = sorted(str(p.relative_to(staged.folder)) for p in staged.folder.rglob("*") if p.is_file())
    assert staged.dry_run and staged.commit is None
    assert staged.files == on_disk
    assert "optimizer.pt" not in on_disk and "trainer_state.json" not in on_disk
    for name in (
        "README.md",
        "config.json",
        "model.safetensors",
        "pipeline_videopanda.py",
        "modeling_videopanda.py",
        "configuration_videopanda.py",
        "processing_videopanda.py",
        "video_processing_videopanda.py",
        "processor_config.json",
        "tokenizer.json",
        "chat_template.jinja",
    ):
        assert name in on_disk, name
    # push's own load test ran in a fresh process that could not import videopanda, and agreed with in-process
    report = staged.report
    assert report["errors"] == [] and report["generated_ids"]["AutoModelForImageTextToText"]
    assert report["AutoModelForImageTextToText_class"].startswith("transformers_modules.")


def test_runtime_only_venv_loads_the_staged_folder_token_identical(staged, tiny, fresh_python):
    report = check_folder(staged.folder, python=str(fresh_python), video=tiny["clip"])
    assert report["errors"] == []
    for key in (
        "config_class",
        "processor_class",
        "video_processor_class",
        "AutoModelForImageTextToText_class",
        "AutoModelForMultimodalLM_class",
        "AutoModel_class",
    ):
        assert report[key].startswith("transformers_modules."), (key, report[key])  # remote code, not a local class
    assert report["input_ids"] == tiny["input_ids"]
    # Same preprocessing; float32 sums may differ in the last bits with another thread count / accumulation order
    assert report["pixel_values_videos"]["sum"] == pytest.approx(tiny["pixel_sum"], rel=1e-9)
    assert report["last_hidden_state"]["sum"] == pytest.approx(tiny["hidden_sum"], rel=1e-6)
    assert report["generated_ids"] == {
        "AutoModelForImageTextToText": tiny["new_tokens"],
        "AutoModelForMultimodalLM": tiny["new_tokens"],
    }
    pipelines = report["pipelines"]
    assert pipelines["video-text-to-text_class"] == "VideoTextToTextPipeline"
    assert pipelines["image-text-to-text_class"] == "ImageTextToTextPipeline"
    assert pipelines["any-to-any_class"] == "AnyToAnyPipeline"
    for task in ("video-text-to-text", "video-text-to-text_chat", "image-text-to-text", "any-to-any"):
        assert pipelines[task].strip() == tiny["text"], task
    # Re-saving the remote-code model and processor (what Trainer checkpoints do) keeps every file
    assert report["resave"]["missing"] == []
    assert report["resave"]["generated_ids"] == tiny["new_tokens"]
    assert set(staged.files) - {"README.md"} <= set(report["resave"]["files"])


def test_card_usage_snippet_runs_as_written_in_the_venv(staged, tiny, fresh_python, tmp_path):
    """The README's Python block, with the repo id pointed at the staged folder, runs in the runtime-only venv."""
    text = (staged.folder / "README.md").read_text()
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'repo = "me/videopanda-tiny"' in snippet
    snippet = snippet.replace('repo = "me/videopanda-tiny"', f'repo = "{staged.folder}"')
    shutil.copy(tiny["clip"], tmp_path / "clip.mp4")
    (tmp_path / "snippet.py").write_text(snippet)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    run = subprocess.run(
        [str(fresh_python), "snippet.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert tiny["text"] and run.stdout.count(tiny["text"]) == 2, (run.stdout, tiny["text"])
