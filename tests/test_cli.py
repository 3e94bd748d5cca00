"""The `videopanda` command line: help, delegation, exit codes and one-line errors, `ask` streaming, `params`."""

import subprocess
import sys
from pathlib import Path

import pytest

from videopanda import cli
from videopanda.testing import make_video

DELEGATED = ["quickstart", "train", "eval", "convert", "push"]


def test_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in DELEGATED + ["ask", "params"]:
        assert command in out


def test_no_command_prints_help_and_fails(capsys):
    assert cli.main([]) == 2
    assert "usage: videopanda" in capsys.readouterr().out


@pytest.mark.parametrize("command", DELEGATED)
def test_delegated_help_comes_from_the_owner(command, capsys):
    assert cli.main([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"videopanda {command}" in out and "--" in out


def test_console_script_is_fast_and_lazy():
    """`videopanda --help` must not import torch/transformers (the delegated modules load on demand)."""
    code = "import sys; from videopanda import cli; print('transformers' in sys.modules, 'videopanda.train' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.split()
    assert out[1] == "False"
    script = Path(sys.executable).with_name("videopanda")
    if script.exists():
        result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "quickstart" in result.stdout


def test_unavailable_delegate_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setitem(cli.DELEGATED, "train", ("videopanda.no_such_module", "x"))
    assert cli.main(["train", "--recipe", "stage1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("videopanda: error:") and "no_such_module" in err and "\n" not in err


def test_delegate_usage_error_keeps_its_exit_code(capsys):
    assert cli.main(["train"]) == 2  # --recipe is required by the owner's parser
    assert "--recipe" in capsys.readouterr().err


def test_ask_missing_video(tmp_path, capsys):
    assert cli.main(["ask", str(tmp_path / "nope.mp4"), "What?", "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"videopanda: error: video file not found: {tmp_path / 'nope.mp4'}"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return str(make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", num_frames=8, height=56, width=56))


def test_ask_bad_model_folders(tmp_path, clip, capsys):
    assert cli.main(["ask", clip, "What?", "--model", str(tmp_path / "missing")]) == 2
    assert "model folder not found" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["ask", clip, "What?", "--model", str(empty)]) == 2
    err = capsys.readouterr().err
    assert "no config.json" in err and err.count("\n") == 1
    (empty / "config.json").write_text('{"model_type": "llama"}')
    assert cli.main(["ask", clip, "What?", "--model", str(empty)]) == 2
    assert "tokenizer.json is missing" in capsys.readouterr().err


def test_ask_default_model_hints_at_quickstart(clip, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["ask", clip, "What?"]) == 2
    assert "run `videopanda quickstart` first" in capsys.readouterr().err


def test_ask_broken_folder_fails_in_one_line(tmp_path, clip, capsys):
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "processor_config.json"):
        (folder / name).write_text("{not json")
    assert cli.main(["ask", clip, "What?", "--model", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("videopanda: error: cannot load a Video-Panda model from") and err.count("\n") == 1


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """An untrained tiny model + processor saved as a remote-code folder (what `ask` loads)."""
    from videopanda.testing import tiny_model, tiny_processor

    folder = tmp_path_factory.mktemp("tiny") / "model"
    model = tiny_model(image_size=56)
    processor = tiny_processor(image_size=56)
    model.config.register_for_auto_class()
    model.register_for_auto_class("AutoModelForImageTextToText")
    processor.register_for_auto_class()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def test_ask_streams_an_answer_from_a_model_folder(tiny_folder, clip, capsys):
    assert cli.main(["ask", clip, "what colour is the square ?", "--model", str(tiny_folder),
                     "--max-new-tokens", "3", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and len(out.strip()) > 0


def test_ask_unreadable_video_is_a_one_line_error(tiny_folder, tmp_path, capsys):
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"this is not a video")
    assert cli.main(["ask", str(fake), "what ?", "--model", str(tiny_folder), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"videopanda: error: cannot read video {fake}") and err.count("\n") == 1


def test_params_prints_the_paper_count(capsys):
    assert cli.main(["params", "--by-module"]) == 0
    out = capsys.readouterr().out
    assert "45,066,578" in out and "lmhra2" in out and "1,403,218" in out
    assert "projector" in out and "temporal_aggregation" in out
