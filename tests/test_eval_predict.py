"""Zero-shot QA prediction end to end on a tiny real model and a QA set in the published layout.

Covers: layout readers (v_ prefix, extension order, misaligned files), predictions JSONL + skipped-video summary,
resume after a killed run (no duplicates, same final file), and a 2-process sharded run equal to the 1-process run.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from videopanda.eval.cli import main
from videopanda.eval.datasets import load_benchmark, load_qa_samples, resolve_video
from videopanda.eval.journal import Journal, read_jsonl
from videopanda.testing import make_video

FIXTURES = Path(__file__).parent / "fixtures"
QUESTIONS = ["what is in this video ?", "which colour is the square ?", "where does the square move ?"]
ANSWERS = ["square", "red", "right"]
PREDICT_ARGS = ["--batch-size", "2", "--max-new-tokens", "6", "--no-progress"]


def write_qa_set(root: Path, folder="MSVD_Zero_Shot_QA", video_dir="videos", prefix="", clips=4, extra=True):
    """Published layout: <root>/<folder>/{test_q.json,test_a.json,<video_dir>/<prefix><name>.<ext>}."""
    base = root / folder
    (base / video_dir).mkdir(parents=True, exist_ok=True)
    questions, answers = [], []
    for clip in range(clips):
        extension = ".avi" if clip == 1 else ".mp4"
        make_video(
            base / video_dir / f"{prefix}clip{clip}{extension}",
            num_frames=3 + 2 * clip,
            height=40 + 8 * clip,
            width=56,
            fps=4,
        )
        for k, (question, answer) in enumerate(zip(QUESTIONS[: 2 + clip % 2], ANSWERS)):
            questions.append({"video_name": f"clip{clip}", "question_id": f"q_clip{clip}_{k}", "question": question})
            answers.append({"answer": answer, "type": k, "question_id": f"q_clip{clip}_{k}"})
    if extra:
        questions.append({"video_name": "gone", "question_id": "q_gone_0", "question": QUESTIONS[0]})
        answers.append({"answer": "none", "type": 0, "question_id": "q_gone_0"})
        (base / video_dir / f"{prefix}broken.mp4").write_bytes(b"\x00not a video at all" * 50)
        questions.append({"video_name": "broken", "question_id": "q_broken_0", "question": QUESTIONS[0]})
        answers.append({"answer": "none", "type": 0, "question_id": "q_broken_0"})
    (base / "test_q.json").write_text(json.dumps(questions))
    (base / "test_a.json").write_text(json.dumps(answers))
    return base


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A saved tiny model + LLaMA-tokenizer processor and a small MSVD-layout QA set."""
    from transformers import PreTrainedTokenizerFast

    from videopanda.testing import tiny_model, tiny_processor

    root = tmp_path_factory.mktemp("eval_predict")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(FIXTURES / "llama-tokenizer" / "tokenizer.json"),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    )
    model_dir = root / "model"
    tiny_model().save_pretrained(model_dir)
    tiny_processor(tokenizer=tokenizer).save_pretrained(model_dir)
    data_root = root / "GPT_Zero_Shot_QA"
    write_qa_set(data_root)
    return {"root": root, "model": str(model_dir), "data_root": str(data_root)}


def predict_argv(workspace, output):
    return [
        "predict",
        "--benchmark",
        "msvd",
        "--data-root",
        workspace["data_root"],
        "--model",
        workspace["model"],
        "--output",
        str(output),
        *PREDICT_ARGS,
    ]


@pytest.fixture(scope="module")
def reference_run(workspace):
    """One uninterrupted single-process run: the predictions every other run must reproduce.

    Runs that are compared byte for byte all run in subprocesses with one thread each, so float summation order
    (and with it a greedy near-tie) cannot differ between them."""
    output = workspace["root"] / "reference" / "predictions.jsonl"
    run_cli(predict_argv(workspace, output))
    return output


def test_layout_readers(tmp_path):
    base = write_qa_set(tmp_path, "Activitynet_Zero_Shot_QA", "all_test", prefix="v_", clips=2, extra=False)
    make_video(base / "all_test" / "v_clip0.avi", num_frames=4, height=32, width=32)  # .mp4 is tried first
    samples = load_benchmark("activitynet", tmp_path)
    assert [s.video_path.name for s in samples] == ["v_clip0.mp4"] * 2 + ["v_clip1.avi"] * 3
    assert samples[0].answer == "square" and samples[0].type == 0 and samples[0].question_id == "q_clip0_0"
    assert resolve_video(base / "all_test", "clip1", "v_", (".mkv", ".avi")).name == "v_clip1.avi"
    assert resolve_video(base / "all_test", "clip1") is None  # no prefix: not found

    answers = json.loads((base / "test_a.json").read_text())
    (tmp_path / "short.json").write_text(json.dumps(answers[:-1]))
    with pytest.raises(ValueError, match="5 questions but .* 4 answers"):
        load_qa_samples(base / "test_q.json", tmp_path / "short.json", base / "all_test")
    answers[0], answers[1] = answers[1], answers[0]
    (tmp_path / "swapped.json").write_text(json.dumps(answers))
    with pytest.raises(ValueError, match="misaligned"):
        load_qa_samples(base / "test_q.json", tmp_path / "swapped.json", base / "all_test")
    with pytest.raises(ValueError, match="Unknown benchmark"):
        load_benchmark("nextqa", tmp_path)
    with pytest.raises(ValueError, match="not found"):
        load_benchmark("msvd", tmp_path)


def test_journal_survives_a_cut_line(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal(path)
    journal.append([{"id": "a", "pred": "x"}, {"id": "b", "pred": "y"}])
    journal.append([{"id": "a", "pred": "other"}])  # already there: not appended again
    with open(path, "a") as handle:
        handle.write('{"id": "c", "pr')  # a kill in the middle of a write
    reopened = Journal(path)
    assert reopened.ids == {"a", "b"}
    reopened.append([{"id": "c", "pred": "z"}])
    assert [record["id"] for record in read_jsonl(path)] == ["a", "b", "c"]


def test_predictions_and_skipped_summary(workspace, reference_run):
    records = read_jsonl(reference_run)
    ids = [record["id"] for record in records]
    assert ids == [f"q_clip{c}_{k}" for c in range(4) for k in range(2 + c % 2)]
    assert all(set(record) >= {"id", "question", "answer", "pred", "video_name", "type"} for record in records)
    assert all(isinstance(record["pred"], str) and record["pred"] for record in records)
    summary = json.loads(reference_run.with_name("predictions.jsonl.summary.json").read_text())
    assert [entry["id"] for entry in summary["missing_videos"]] == ["q_gone_0"]
    assert [entry["id"] for entry in summary["failed"]] == ["q_broken_0"]
    assert summary["answered"] == 10 and summary["complete"] is False
    assert not reference_run.with_name("predictions.jsonl.parts").exists()

    # a rerun has nothing left to answer and leaves the file byte for byte unchanged
    before = reference_run.read_bytes()
    assert main(predict_argv(workspace, reference_run)) == 0
    assert reference_run.read_bytes() == before

    # the predictions judge end to end with the match scorers, report included
    assert main(["judge", "--predictions", str(reference_run), "--benchmark", "msvd", "--judge", "match"]) == 0
    report = json.loads(reference_run.with_name("msvd_fixed.json").read_text())
    assert [row["judge"] for row in report["results"]] == ["contains-match", "exact-match"]
    assert report["results"][0]["total"] == 10 and report["missing_predictions"] == 2
    assert report["paper"]["rows"][0] == {"model": "Video-Panda", "accuracy": 64.7, "score": 3.8}
    assert set(report["breakdown"]["contains-match"]) == {"type", "question_word"}
    assert "| paper: Video-Panda |" in reference_run.with_name("msvd_fixed.md").read_text()


def run_cli(argv):
    command = [sys.executable, "-m", "videopanda.eval.cli", *argv]
    result = subprocess.run(command, env=_subprocess_env(), capture_output=True, text=True, check=False, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]


def _subprocess_env():
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


@pytest.mark.slow
def test_resume_after_kill(workspace, reference_run, tmp_path):
    output = tmp_path / "predictions.jsonl"
    journal = tmp_path / "predictions.jsonl.parts" / "rank0.jsonl"
    command = [sys.executable, "-m", "videopanda.eval.cli", *predict_argv(workspace, output)]
    process = subprocess.Popen(command, env=_subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and process.poll() is None:
        if journal.exists() and len(read_jsonl(journal)) >= 2:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be interrupted"
    answered = [record["id"] for record in read_jsonl(journal)]
    assert 2 <= len(answered) < 10 and not output.exists()

    run_cli(predict_argv(workspace, output))
    assert read_jsonl(output) == read_jsonl(reference_run)
    ids = [record["id"] for record in read_jsonl(output)]
    assert len(ids) == len(set(ids)) == 10
    assert output.read_bytes() == reference_run.read_bytes()


@pytest.mark.slow
def test_sharded_run_equals_single_process(workspace, reference_run, tmp_path):
    output = tmp_path / "predictions.jsonl"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "videopanda.eval.cli",
        *predict_argv(workspace, output),
    ]
    result = subprocess.run(command, env=_subprocess_env(), capture_output=True, text=True, check=False, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    assert read_jsonl(output) == read_jsonl(reference_run)
    assert output.read_bytes() == reference_run.read_bytes()
    summary = json.loads(output.with_name("predictions.jsonl.summary.json").read_text())
    assert [entry["id"] for entry in summary["failed"]] == ["q_broken_0"]
    assert summary["processes"] == 2


def test_a_run_where_everything_fails_stops(workspace, tmp_path):
    from videopanda.eval.cli import load_model_and_processor
    from videopanda.eval.predict import FAILURES_BEFORE_ABORT, GenerationRequest, predict

    model, processor = load_model_and_processor(workspace["model"])
    requests = []
    for index in range(FAILURES_BEFORE_ABORT + 2):
        path = tmp_path / f"bad{index}.mp4"
        path.write_bytes(b"garbage" * 10)
        requests.append(GenerationRequest(f"bad{index}", path, "what is in this video ?"))
    with pytest.raises(RuntimeError, match="all failed"):
        predict(model, processor, requests, tmp_path / "p.jsonl", batch_size=2, max_new_tokens=2, progress=False)
