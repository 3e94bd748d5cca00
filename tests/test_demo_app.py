"""The demo's logic without a browser: token-by-token streaming, sampled frames, errors, and the Space entry point."""

import itertools
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from videopanda.demo import LoadedModel, build_demo, frames_for_display, sample_videos, stream_answer
from videopanda.testing import make_video, tiny_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def loaded():
    from videopanda.testing import tiny_processor

    return LoadedModel(model=tiny_model(), processor=tiny_processor(), note="tiny", source="test")


def test_answer_streams_token_by_token(loaded, tmp_path):
    clip = make_video(tmp_path / "clip.mp4", num_frames=12)
    updates = list(stream_answer(loaded, str(clip), "What is moving?", max_new_tokens=5))
    frames, answer, status = updates[-1]
    assert status.startswith("Done") and "8 frames sampled" in status
    assert len(frames) == 8 and frames[0].shape == (112, 112, 3) and frames[0].dtype == np.uint8
    partials = [text for _, text, _ in updates[:-1]]
    assert partials[0] == "" and len(partials) >= 3  # empty first, then one update per decoded piece
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(partials))
    assert answer == partials[-1] and answer.strip()

    # The stream is the greedy generation, decoded
    inputs = loaded.processor.apply_chat_template(
        [
            {
                "role": "user",
                "content": [{"type": "video", "path": str(clip)}, {"type": "text", "text": "What is moving?"}],
            }
        ],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
    )
    sequences = loaded.model.generate(**inputs, max_new_tokens=5, do_sample=False)
    expected = loaded.processor.decode(sequences[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert answer.strip() == expected.strip()


def test_frames_show_padding_grey(loaded):
    pixels = np.zeros((1, 2, 4, 8, 8), dtype=np.float32)
    pixels[:, :, 3, :4] = 1  # top half valid, normalised value 0 = the CLIP mean colour
    import torch

    frames = frames_for_display(torch.from_numpy(pixels), loaded.processor)
    assert len(frames) == 2
    assert (frames[0][4:] == 127).all()  # padding drawn mid-grey
    assert np.allclose(frames[0][0, 0], np.array(loaded.processor.video_processor.image_mean) * 255, atol=1)


def test_bad_requests_raise_clear_errors(loaded, tmp_path):
    with pytest.raises(ValueError, match="Upload a video"):
        next(stream_answer(loaded, None, "q"))
    with pytest.raises(ValueError, match="does not exist"):
        next(stream_answer(loaded, str(tmp_path / "missing.mp4"), "q"))
    clip = make_video(tmp_path / "clip.mp4", num_frames=8)
    with pytest.raises(ValueError, match="Type a question"):
        next(stream_answer(loaded, str(clip), "  "))


def test_sample_videos_decode(tmp_path, loaded):
    rows = sample_videos(tmp_path)
    assert len(rows) >= 2
    for video, question in rows[:2]:
        assert Path(video).is_file() and question
        *_, (frames, _, status) = stream_answer(loaded, video, question, max_new_tokens=1)
        assert len(frames) == 8 and status.startswith("Done")


def test_build_demo_without_checkpoint_says_the_model_is_random(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no videopanda-quickstart folder here
    demo = build_demo(None, device="cpu", examples_dir=str(tmp_path / "examples"))
    notes = [block.value for block in demo.blocks.values() if type(block).__name__ == "Markdown"]
    assert any("randomly initialised tiny Video-Panda" in note for note in notes)


@pytest.mark.slow
def test_space_app_runs_from_a_checkpoint_without_the_package(loaded, tmp_path):
    """spaces/app.py builds the demo from VIDEOPANDA_MODEL with `import videopanda` blocked (vendored demo module)."""
    folder = tmp_path / "ckpt"
    loaded.model.save_pretrained(folder)
    loaded.processor.save_pretrained(folder)
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "videopanda" or name.startswith("videopanda."):
                    raise ImportError("blocked " + name)
        sys.meta_path.insert(0, Block())
        sys.path.insert(0, {str(REPO / "spaces")!r})
        import app
        from videopanda_demo import stream_answer, LoadedModel
        assert app.demo is not None
        print("SPACE-OK")
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(VIDEOPANDA_MODEL=str(folder), HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    run = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0 and "SPACE-OK" in run.stdout, run.stderr[-3000:]


def test_space_folder_is_complete():
    space = REPO / "spaces"
    front = (space / "README.md").read_text().split("---")[1]
    assert "sdk: gradio" in front and "app_file: app.py" in front
    requirements = (space / "requirements.txt").read_text()
    for name in ("torch", "torchvision", "transformers", "av", "gradio"):
        assert name in requirements
    assert (space / "videopanda_demo.py").resolve() == (REPO / "videopanda" / "demo.py").resolve()
