"""lmms-eval integration: the plugin is found through the ``lmms_eval.models`` entry point and answers a task.

The entry point is declared by a throwaway ``.dist-info`` on ``sys.path`` (what ``pip install`` writes), so the
test exercises lmms-eval's real discovery path whether or not this checkout was reinstalled with it.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lmms_eval")

from videopanda.eval.lmms_tasks import TASKS_DIR

FIXTURES = Path(__file__).parent / "fixtures"


def write_entry_point(folder: Path) -> Path:
    dist = folder / "videopanda_lmms_probe-0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: videopanda-lmms-probe\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text("[lmms_eval.models]\nvideopanda = videopanda.eval.lmms_manifest:manifest\n")
    return folder


def test_plugin_is_discovered_by_the_registry(tmp_path, monkeypatch):
    from lmms_eval.api.model import lmms
    from lmms_eval.models.registry_v2 import ModelRegistryV2

    monkeypatch.syspath_prepend(str(write_entry_point(tmp_path)))
    registry = ModelRegistryV2()
    registry.load_entrypoint_manifests()
    assert "videopanda" in registry.list_canonical_model_ids()
    assert registry.resolve("video_panda").model_id == "videopanda"
    model_class = registry.get_model_class("videopanda")  # imports and validates (lmms subclass, simple model)
    assert issubclass(model_class, lmms) and model_class.__name__ == "VideoPandaLMMS"


def test_task_yamls_are_well_formed():
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    names = {}
    for path in sorted(TASKS_DIR.glob("*.yaml")):
        config = yaml.load(path.read_text(), Loader=Loader)
        names[config["task"]] = config["dataset_kwargs"]["benchmark"]
        assert config["class"] == "utils.VideoPandaQATask" and config["output_type"] == "generate_until"
        assert {m["metric"] for m in config["metric_list"]} == {"match_accuracy", "gpt_eval_accuracy", "gpt_eval_score"}
    assert names == {"msvd_qa": "msvd", "msrvtt_qa": "msrvtt", "tgif_qa": "tgif"}


@pytest.mark.slow
def test_lmms_eval_runs_msvd_qa_with_the_plugin(tmp_path):
    from test_eval_judges import ScriptedJudgeServer
    from test_eval_predict import write_qa_set
    from transformers import PreTrainedTokenizerFast

    from videopanda.testing import tiny_model, tiny_processor

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(FIXTURES / "llama-tokenizer" / "tokenizer.json"),
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
    )
    model_dir = tmp_path / "model"
    tiny_model().save_pretrained(model_dir)
    tiny_processor(tokenizer=tokenizer).save_pretrained(model_dir)
    data_root = tmp_path / "GPT_Zero_Shot_QA"
    write_qa_set(data_root, clips=2, extra=False)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(write_entry_point(tmp_path / "ep")), os.environ.get("PYTHONPATH", "")]),
        VIDEOPANDA_QA_ROOT=str(data_root),
        HF_HOME=str(tmp_path / "hf"),
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
    )
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "VIDEOPANDA_JUDGE_COMPAT"):
        env.pop(name, None)
    server = ScriptedJudgeServer({}, default=("ok:{'pred': 'yes', 'score': 4.5}",))
    env.update(VIDEOPANDA_JUDGE_BASE_URL=server.url, VIDEOPANDA_JUDGE_API_KEY="sk-test",
               VIDEOPANDA_JUDGE_MODEL="judge-test", VIDEOPANDA_JUDGE_CACHE=str(tmp_path / "judge.jsonl"))  # fmt: skip
    command = [
        sys.executable,
        "-m",
        "lmms_eval",
        "eval",
        "--model",
        "videopanda",
        "--model_args",
        f"pretrained={model_dir}",
        "--batch_size",
        "2",
        "--device",
        "cpu",
        "--tasks",
        "msvd_qa",
        "--include_path",
        str(TASKS_DIR),
        "--gen_kwargs",
        "max_new_tokens=4",
        "--output_path",
        str(tmp_path / "out"),
        "--log_samples",
    ]
    with server:
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=500)
    log = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, log
    written = list((tmp_path / "out").rglob("*_results.json"))
    assert written, f"lmms-eval wrote no results (it exits 0 after logging an error):\n{log}"
    results = json.loads(written[0].read_text())["results"]["msvd_qa"]
    assert results["match_accuracy,none"] >= 0.0
    # the GPT metrics went through the judge on the local server, once per question (the second metric is cached)
    assert (results["gpt_eval_accuracy,none"], results["gpt_eval_score,none"]) == (100.0, 4.5)
    assert server.requests == 5 and {body["model"] for body in server.bodies} == {"judge-test"}
    samples = [json.loads(line) for line in next((tmp_path / "out").rglob("*_samples_msvd_qa.jsonl")).open()]
    assert len(samples) == 5
    assert {s["match_accuracy"]["question_id"] for s in samples} == {
        f"q_clip{c}_{k}" for c in (0, 1) for k in range(2 + c)
    }
    assert all(isinstance(s["match_accuracy"]["pred"], str) and s["match_accuracy"]["pred"] for s in samples)
