"""The training command end to end at tiny size: overfitting, stage chaining, resume, bad data, two processes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from videopanda.train.run import main

from videopanda.testing import write_tiny_training_setup

FAST = [
    "--set",
    "training.report_to=[]",
    "--set",
    "training.dataloader_num_workers=0",
    "--set",
    "training.activation_checkpointing=false",
    "--set",
    "training.warmup_ratio=0",
    "--set",
    "distillation.layer_stride=1",
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return write_tiny_training_setup(tmp_path_factory.mktemp("tiny"))


def _args(setup, recipe, model, out, *extra, data=None):
    return [
        "--recipe",
        recipe,
        "--model",
        str(model),
        "--data",
        str(data or setup["data"]),
        "--video-root",
        str(setup["videos"]),
        "--teacher-path",
        str(setup["teacher"]),
        "--output-dir",
        str(out),
        *FAST,
        *extra,
    ]


def _history(out):
    return json.loads(Path(out, "log_history.json").read_text())


def _steps(history):
    return {entry["step"]: entry for entry in history if "loss" in entry}


@pytest.mark.slow
def test_overfit_eight_samples_with_the_stage3_recipe(setup, tmp_path):
    out = tmp_path / "out"
    assert (
        main(
            _args(
                setup,
                "stage3",
                setup["model"],
                out,
                "--max-steps",
                "30",
                "--set",
                "training.global_batch_size=8",
                "--set",
                "training.per_device_batch_size=8",
                "--set",
                "training.learning_rate=1e-2",
                "--set",
                "training.alignment_learning_rate=1e-2",
                "--set",
                "training.save_steps=1000",
            )
        )
        == 0
    )
    steps = _steps(_history(out))
    assert sorted(steps) == list(range(1, 31))
    first, last = steps[1], steps[30]
    assert all("lm_loss" in entry and "distill_loss" in entry for entry in steps.values())
    assert first["loss"] == pytest.approx(first["lm_loss"] + first["distill_loss"], rel=1e-4)
    assert last["loss"] <= 0.3 * first["loss"], (first, last)
    # the final folder is a complete remote-code model + processor folder with the head beside it
    files = {p.name for p in out.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "modeling_videopanda.py",
        "processor_config.json",
        "tokenizer.json",
        "chat_template.jinja",
        "distillation_head.safetensors",
        "data_report.json",
    } <= files
    assert "auto_map" in json.loads((out / "config.json").read_text())


def _tensors(folder):
    return load_file(str(Path(folder) / "model.safetensors"))


@pytest.mark.slow
def test_stage_chaining_freeze_and_resume(setup, tmp_path, caplog):
    small = [
        "--set",
        "training.global_batch_size=2",
        "--set",
        "training.per_device_batch_size=2",
        "--set",
        "training.learning_rate=1e-3",
        "--set",
        "training.alignment_learning_rate=1e-3",
    ]
    stage1, stage2, resumed = tmp_path / "s1", tmp_path / "s2", tmp_path / "s2b"
    assert main(_args(setup, "stage1", setup["model"], stage1, "--max-steps", "2", *small)) == 0
    base, after1 = _tensors(setup["model"]), _tensors(stage1)
    llm = [k for k in base if k.startswith(("model.language_model.", "lm_head."))]
    assert llm and all(torch.equal(base[k], after1[k]) for k in llm)  # stage 1: every LLM tensor frozen
    assert any(not torch.equal(base[k], after1[k]) for k in base if k.startswith("model.video_tower."))
    assert json.loads((stage1 / "videopanda_training_stage.json").read_text())["stage"] == 1
    assert json.loads((stage1 / "data_report.json").read_text())["kept"] == 4  # seeded half of 8

    caplog.set_level("INFO")
    assert (
        main(
            _args(
                setup,
                "stage2",
                stage1,
                stage2,
                "--max-steps",
                "4",
                "--set",
                "training.save_steps=2",
                "--set",
                "training.save_total_limit=null",
                *small,
            )
        )
        == 0
    )
    assert "Continuing the distillation head" in caplog.text
    after2 = _tensors(stage2)
    assert any(not torch.equal(after1[k], after2[k]) for k in llm)  # stage 2 trains the LLM
    uninterrupted = _steps(_history(stage2))

    resumed.mkdir()
    shutil.copytree(stage2 / "checkpoint-2", resumed / "checkpoint-2")
    assert (
        main(
            _args(
                setup,
                "stage2",
                stage1,
                resumed,
                "--max-steps",
                "4",
                "--set",
                "training.save_steps=2",
                "--resume",
                *small,
            )
        )
        == 0
    )
    again = _steps(_history(resumed))
    assert again[3]["loss"] == pytest.approx(uninterrupted[3]["loss"], abs=1e-5)
    assert again[3]["distill_loss"] == pytest.approx(uninterrupted[3]["distill_loss"], abs=1e-5)


def _bad_data(setup, tmp_path):
    from videopanda.testing import make_video

    records = json.loads(Path(setup["data"]).read_text())[:3]
    (Path(setup["videos"]) / "broken.mp4").write_bytes(b"not a video at all" * 50)
    make_video(tmp_path / "outside.mp4", num_frames=4, height=32, width=32)
    bad = [
        dict(records[0], id="missing", video="nope/missing.mp4"),
        dict(records[0], id="corrupt", video="broken.mp4"),
        dict(records[0], id="escape", video="../outside.mp4"),
    ]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(records + bad))
    return path, bad


@pytest.mark.slow
def test_bad_data_trains_on_the_rest_and_reports(setup, tmp_path):
    data, _ = _bad_data(setup, tmp_path)
    out = tmp_path / "out"
    assert (
        main(
            _args(
                setup,
                "stage3",
                setup["model"],
                out,
                "--max-steps",
                "1",
                "--set",
                "training.global_batch_size=3",
                "--set",
                "training.per_device_batch_size=3",
                data=data,
            )
        )
        == 0
    )
    report = json.loads((out / "data_report.json").read_text())
    assert report["total"] == 6 and report["kept"] == 3
    assert report["rejected"] == {"missing_video": 1, "corrupt_video": 1, "unsafe_path": 1}
    assert {e["id"] for reason in report["examples"].values() for e in reason} == {"missing", "corrupt", "escape"}
    assert (out / "model.safetensors").is_file()


def test_no_usable_sample_stops_with_a_clear_error(setup, tmp_path, capsys):
    _, bad = _bad_data(setup, tmp_path)
    data = tmp_path / "hopeless.json"
    data.write_text(json.dumps(bad))
    assert main(_args(setup, "stage3", setup["model"], tmp_path / "out", data=data)) == 2
    error = capsys.readouterr().err
    assert "no usable training samples" in error and "unsafe_path: 1" in error and "corrupt_video: 1" in error


def test_help_and_recipe_errors(capsys, setup, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0 and "--recipe" in capsys.readouterr().out
    assert main(_args(setup, "stage9", setup["model"], tmp_path)) == 2
    assert "unknown recipe" in capsys.readouterr().err
    assert (
        main(
            _args(
                setup,
                "stage1",
                setup["model"],
                tmp_path,
                "--set",
                "training.global_batch_size=3",
                "--set",
                "training.per_device_batch_size=2",
                "--print-recipe",
            )
        )
        == 0
    )


def _launch(setup, out, processes):
    per_device = 8 // processes
    args = _args(
        setup,
        "stage3",
        setup["model"],
        out,
        "--max-steps",
        "2",
        "--set",
        "training.global_batch_size=8",
        "--set",
        f"training.per_device_batch_size={per_device}",
        "--set",
        "training.learning_rate=1e-3",
        "--set",
        "training.alignment_learning_rate=1e-3",
        "--set",
        "model.freeze_batch_norm=true",
        "--set",
        "model.disable_dropout=true",
        "--set",
        "training.save_steps=1000",
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        "-m",
        "videopanda.train.run",
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    return _steps(_history(out))


@pytest.mark.slow
def test_two_processes_match_one_process(setup, tmp_path):
    one = _launch(setup, tmp_path / "one", 1)
    two = _launch(setup, tmp_path / "two", 2)
    for step in (1, 2):
        for key in ("loss", "lm_loss", "distill_loss"):
            assert two[step][key] == pytest.approx(one[step][key], abs=1e-4), (step, key, one[step], two[step])


@pytest.mark.slow
def test_trl_trainer_with_lora_writes_adapter_and_merged_folder(setup, tmp_path):
    out = tmp_path / "lora"
    assert (
        main(
            _args(
                setup,
                "stage3",
                setup["model"],
                out,
                "--max-steps",
                "1",
                "--set",
                "training.trainer=trl",
                "--set",
                "training.lora_r=4",
                "--set",
                "training.global_batch_size=2",
                "--set",
                "training.per_device_batch_size=2",
            )
        )
        == 0
    )
    entry = _steps(_history(out))[1]
    assert "lm_loss" in entry and "distill_loss" in entry and "mean_token_accuracy" in entry
    assert (out / "adapter" / "adapter_config.json").is_file()
    merged = _tensors(out)
    assert not any("lora_" in k or "distillation_head" in k for k in merged)
    assert (out / "distillation_head.safetensors").is_file() and (out / "tokenizer.json").is_file()


def test_lora_is_refused_when_the_llm_is_frozen(setup, tmp_path, capsys):
    assert (
        main(
            _args(
                setup,
                "stage1",
                setup["model"],
                tmp_path,
                "--set",
                "training.trainer=trl",
                "--set",
                "training.lora_r=4",
                "--print-recipe",
            )
        )
        == 2
    )
    assert "freeze_llm" in capsys.readouterr().err


@pytest.mark.slow
def test_teacher_cache_is_built_once_and_gives_the_live_loss(setup, tmp_path, caplog):
    small = ["--max-steps", "1", "--set", "training.global_batch_size=2", "--set", "training.per_device_batch_size=2"]
    cache = tmp_path / "cache"
    caplog.set_level("INFO")
    assert main(_args(setup, "stage3", setup["model"], tmp_path / "live", *small)) == 0
    assert main(_args(setup, "stage3", setup["model"], tmp_path / "c1", "--teacher-cache", str(cache), *small)) == 0
    assert caplog.text.count("Computing teacher features") == 1
    assert main(_args(setup, "stage3", setup["model"], tmp_path / "c2", "--teacher-cache", str(cache), *small)) == 0
    assert caplog.text.count("Computing teacher features") == 1  # reused
    live, cached = _steps(_history(tmp_path / "live"))[1], _steps(_history(tmp_path / "c2"))[1]
    # the cache stores float16 features: equal up to that rounding
    assert cached["distill_loss"] == pytest.approx(live["distill_loss"], abs=1e-4)
    assert cached["loss"] == pytest.approx(live["loss"], abs=1e-4)
