"""``videopanda eval`` commands end to end: run (predict + GPT judge + report), report --compat, and the
Video-ChatGPT generative benchmark (predict-vcg, judge-vcg with the consistency Q1/Q2 bug in compat mode)."""

import json
from pathlib import Path

import pytest
from test_eval_judges import ScriptedJudgeServer
from test_eval_predict import write_qa_set

from videopanda.eval.cli import build_parser, main
from videopanda.testing import make_video

FIXTURES = Path(__file__).parent / "fixtures"
FAST = ["--batch-size", "2", "--max-new-tokens", "4", "--no-progress"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from transformers import PreTrainedTokenizerFast

    from videopanda.testing import tiny_model, tiny_processor

    folder = tmp_path_factory.mktemp("eval_cli_model")
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(FIXTURES / "llama-tokenizer" / "tokenizer.json"),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    )
    tiny_model(seed=1).save_pretrained(folder)
    tiny_processor(tokenizer=tokenizer).save_pretrained(folder)
    return str(folder)


def judge_args(server):
    return [
        "--judge",
        "openai",
        "--judge-base-url",
        server.url,
        "--judge-api-key",
        "sk-test",
        "--judge-model",
        "judge-test",
        "--concurrency",
        "2",
        "--max-retries",
        "1",
        "--timeout",
        "5",
    ]


def test_every_command_has_help(capsys):
    for command in ([], ["run"], ["predict"], ["judge"], ["report"], ["predict-vcg"], ["judge-vcg"], ["run-vcg"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
    assert "predict" in capsys.readouterr().out
    assert {"run", "predict", "judge", "report", "predict-vcg", "judge-vcg", "run-vcg"} <= set(
        build_parser()._subparsers._group_actions[0].choices
    )


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["judge", "--predictions", str(tmp_path / "none.jsonl"), "--judge", "match"])
    assert exit_info.value.code == 2 and "No predictions" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["predict", "--model", "m", "--output", str(tmp_path / "p.jsonl")])
    assert "Give --benchmark with --data-root" in capsys.readouterr().err


@pytest.mark.slow
def test_run_then_report_compat(model_dir, tmp_path):
    data_root = tmp_path / "GPT_Zero_Shot_QA"
    write_qa_set(data_root, clips=2, extra=False)
    out = tmp_path / "out"
    scripts = {}
    with ScriptedJudgeServer(scripts, default=("ok:{'pred': 'yes', 'score': 4.6}",)) as server:
        assert (
            main(
                [
                    "run",
                    "--benchmark",
                    "msvd",
                    "--data-root",
                    str(data_root),
                    "--model",
                    model_dir,
                    "--output-dir",
                    str(out),
                    *FAST,
                    *judge_args(server),
                ]
            )
            == 0
        )
        assert server.requests == 5
    report = json.loads((out / "msvd_fixed.json").read_text())
    gpt = report["results"][0]
    assert gpt["judge"] == "judge-test" and gpt["served_models"] == ["judge-test-served"]
    assert (gpt["accuracy"], gpt["average_score"], gpt["counted"]) == (1.0, pytest.approx(4.6), 5)
    assert [row["judge"] for row in report["results"][1:]] == ["contains-match", "exact-match"]
    markdown = (out / "msvd_fixed.md").read_text()
    assert "| ours | judge-test (served: judge-test-served) | 100.0 | 4.60 |" in markdown

    # the published arithmetic from the saved judgments, without asking the judge again
    assert main(["report", "--judgments", str(out / "judgments.jsonl"), "--benchmark", "msvd"] + ["--compat"]) == 0
    compat = json.loads((out / "msvd_compat.json").read_text())["results"][0]
    assert compat["mode"] == "compat" and compat["average_score"] == 4.0  # int(4.6)


def write_vcg_set(root: Path):
    videos = root / "videos"
    videos.mkdir(parents=True)
    for name in ("v_alpha", "v_beta"):
        make_video(videos / f"{name}.mp4", num_frames=5, height=40, width=48, fps=4)
    qa = root / "Benchmarking_QA"
    qa.mkdir()
    (qa / "generic_qa.json").write_text(
        json.dumps(
            [
                {"video_name": "v_alpha", "Q": "what happens in the video ?", "A": "a square moves right"},
                {"video_name": "v_alpha", "Q": "describe the video .", "A": "a red square slides"},
                {"video_name": "v_beta", "Q": "what is shown ?", "A": "a square"},
            ]
        )
    )
    (qa / "temporal_qa.json").write_text(
        json.dumps(
            [
                {"video_name": "v_beta", "Q": "what happens first ?", "A": "the square starts at the left"},
            ]
        )
    )
    (qa / "consistency_qa.json").write_text(
        json.dumps(
            [
                {
                    "video_name": "v_alpha",
                    "Q1": "QUESTION-ONE what moves ?",
                    "Q2": "QUESTION-TWO which object moves ?",
                    "A": "a square",
                },
            ]
        )
    )
    return qa, videos


@pytest.mark.slow
def test_generative_benchmark(model_dir, tmp_path):
    qa, videos = write_vcg_set(tmp_path)
    out = tmp_path / "vcg"
    assert (
        main(
            [
                "predict-vcg",
                "--qa-dir",
                str(qa),
                "--video-dir",
                str(videos),
                "--output-dir",
                str(out),
                "--model",
                model_dir,
                *FAST,
            ]
        )
        == 0
    )
    generic = [json.loads(line) for line in (out / "generic.jsonl").read_text().splitlines()]
    assert [r["id"] for r in generic] == ["generic/v_alpha", "generic/v_alpha_1", "generic/v_beta"]
    consistency = [json.loads(line) for line in (out / "consistency.jsonl").read_text().splitlines()]
    assert [r["id"] for r in consistency] == ["consistency/v_alpha/1", "consistency/v_alpha/2"]

    for compat in (False, True):
        with ScriptedJudgeServer({}, default=("ok:{'score': 3.5}",)) as server:
            assert (
                main(
                    [
                        "judge-vcg",
                        "--qa-dir",
                        str(qa),
                        "--predictions-dir",
                        str(out),
                        "--output-dir",
                        str(out / ("compat" if compat else "fixed")),
                        *judge_args(server),
                    ]
                    + (["--compat"] if compat else [])
                )
                == 0
            )
            prompts = [body["messages"][-1]["content"] for body in server.bodies]
        # 3 generic records x 3 dimensions + 1 temporal + 1 consistency
        assert len(prompts) == 11
        consistency_prompt = next(p for p in prompts if "Question 1:" in p)
        assert consistency_prompt.count("QUESTION-ONE") == (2 if compat else 1)
        assert ("QUESTION-TWO" in consistency_prompt) is not compat
        report = json.loads(
            (out / ("compat" if compat else "fixed") / f"vcgbench_{'compat' if compat else 'fixed'}.json").read_text()
        )
        expected = 3.0 if compat else 3.5  # int(3.5) in the published arithmetic
        assert set(report["dimensions"]) == {"correctness", "detail", "context", "temporal", "consistency"}
        assert all(row["average_score"] == expected for row in report["dimensions"].values())
        assert report["average"] == expected and report["judge"] == "judge-test"
        assert report["paper"]["rows"][0]["model"] == "Video-Panda"
    saved = json.loads((out / "fixed" / "consistency_predictions.json").read_text())
    assert set(saved[0]) == {"id", "video_name", "Q1", "Q2", "A", "pred1", "pred2"}

    # run-vcg over the same folder: every answer is already there, so it only judges (into that folder)
    before = (out / "generic.jsonl").read_bytes()
    with ScriptedJudgeServer({}, default=("ok:{'score': 2}",)) as server:
        assert main(["run-vcg", "--qa-dir", str(qa), "--video-dir", str(videos), "--output-dir", str(out),
                     "--model", model_dir, *FAST, *judge_args(server)]) == 0  # fmt: skip
        assert server.requests == 11
    assert (out / "generic.jsonl").read_bytes() == before
    assert json.loads((out / "vcgbench_fixed.json").read_text())["average"] == 2.0


@pytest.mark.slow
def test_run_on_the_synthetic_benchmark(model_dir, tmp_path):
    from videopanda.synthetic import QUESTION_TYPES, SyntheticConfig, build_synthetic_videoqa

    config = SyntheticConfig(image_size=56, num_frames=4, num_train=0, num_validation=0, num_test=5)
    root = build_synthetic_videoqa(tmp_path / "synthetic", config, progress=False)
    out = tmp_path / "out"
    assert main(["run", "--benchmark", "synthetic", "--data-root", str(root), "--model", model_dir,
                 "--output-dir", str(out), "--judge", "match", *FAST]) == 0  # fmt: skip
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert [p["id"] for p in predictions] == [f"test_{i:05d}_0" for i in range(5)]
    report = json.loads((out / "synthetic_fixed.json").read_text())
    assert report["title"] == "Synthetic VideoQA (test split)" and report["paper"]["rows"] == []
    assert [row["judge"] for row in report["results"]] == ["contains-match", "exact-match"]
    assert set(report["breakdown"]["contains-match"]["type"]) == set(QUESTION_TYPES)
