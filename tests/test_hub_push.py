"""Push to the Hub: staging, static checks, one upload_folder commit with the options, and the CLI (no network).

The Hub itself is replaced by a small recording client that copies what `upload_folder` would send; the staged
folder's fresh-process load test lives in test_hub_fresh_env.py.
"""

import json
import shutil
from pathlib import Path

import pytest

from videopanda.hub import (
    HubFolderError,
    custom_pipelines_entry,
    main,
    prepare_folder,
    push,
    save_hub_folder,
    validate_folder,
)
from videopanda.testing import tiny_model
from videopanda.testing import tiny_processor as build_processor


class RecordingHub:
    """Stands in for `HfApi`: records calls and keeps a copy of each uploaded folder."""

    def __init__(self, root: Path):
        self.root, self.calls = root, []

    def create_repo(self, **kwargs):
        self.calls.append(("create_repo", kwargs))

    def create_branch(self, **kwargs):
        self.calls.append(("create_branch", kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))
        target = self.root / f"commit-{len(self.calls)}"
        shutil.copytree(kwargs["folder_path"], target)
        return f"https://hub.invalid/{kwargs['repo_id']}/commit/{len(self.calls)}"


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A plain save_pretrained of model + processor (no card), as a user or Trainer writes it."""
    folder = tmp_path_factory.mktemp("push") / "plain"
    tiny_model().save_pretrained(folder)
    build_processor().save_pretrained(folder)
    return folder


def test_save_hub_folder_is_complete(tmp_path):
    folder = save_hub_folder(
        tiny_model(),
        build_processor(),
        tmp_path / "hub",
        repo_id="me/tiny",
        base_model=None,
        eval_results=[{"dataset_type": "s", "dataset_name": "S", "metric_type": "accuracy", "metric_value": 1.0}],
    )
    assert validate_folder(folder) == []
    config = json.loads((folder / "config.json").read_text())
    assert config["custom_pipelines"] == custom_pipelines_entry()
    assert set(config["auto_map"]) == {
        "AutoConfig",
        "AutoModel",
        "AutoModelForImageTextToText",
        "AutoModelForMultimodalLM",
    }
    assert "model-index" in (folder / "README.md").read_text()


def test_prepare_folder_completes_a_plain_checkpoint(saved, tmp_path):
    source = tmp_path / "checkpoint-5"
    shutil.copytree(saved, source)
    (source / "optimizer.pt").write_bytes(b"x")
    (source / "rng_state.pth").write_bytes(b"x")
    (source / "checkpoint-1").mkdir()
    (source / "pipeline_videopanda.py").unlink()  # e.g. an older save: put back from the package
    config = json.loads((source / "config.json").read_text())
    del config["custom_pipelines"]
    (source / "config.json").write_text(json.dumps(config))
    assert any("custom_pipelines" in p for p in validate_folder(source, require_card=False))

    stage = prepare_folder(source, tmp_path / "stage", repo_id="me/tiny", base_model=None)
    assert validate_folder(stage) == []
    names = {p.name for p in stage.iterdir()}
    assert {"optimizer.pt", "rng_state.pth", "checkpoint-1"}.isdisjoint(names)
    assert {"pipeline_videopanda.py", "README.md"} <= names
    with pytest.raises(HubFolderError, match="not empty"):
        prepare_folder(source, stage)
    with pytest.raises(HubFolderError, match="no config.json"):
        prepare_folder(tmp_path / "nowhere", tmp_path / "stage2")


def test_validate_folder_names_each_problem(saved, tmp_path):
    folder = tmp_path / "broken"
    shutil.copytree(saved, folder)
    (folder / "modeling_stab_layout.py").unlink()
    (folder / "extra_videopanda.py").write_text("from videopanda.testing import tiny_model\nfrom ..up import x\n")
    for name in ("processor_config.json", "tokenizer_config.json"):  # both can name the AutoProcessor class
        processor_config = json.loads((folder / name).read_text())
        processor_config.pop("auto_map", None)
        (folder / name).write_text(json.dumps(processor_config))
    problems = "\n".join(validate_folder(folder))
    assert "imports .modeling_stab_layout, but modeling_stab_layout.py is missing" in problems
    assert "import not allowed in remote code: from videopanda.testing import tiny_model" in problems
    assert "import not allowed in remote code: from ..up import x" in problems
    assert "auto_map has no AutoProcessor entry" in problems
    assert "no README.md model card" in problems


def test_push_uploads_the_staged_folder_in_one_commit(saved, tmp_path):
    hub = RecordingHub(tmp_path / "hub")
    result = push(
        saved,
        "me/videopanda-tiny",
        output_dir=tmp_path / "stage",
        check=False,
        api=hub,
        private=True,
        revision="dev",
        commit_message="first",
        base_model=None,
    )
    assert [name for name, _ in hub.calls] == ["create_repo", "create_branch", "upload_folder"]
    assert hub.calls[0][1] == {"repo_id": "me/videopanda-tiny", "repo_type": "model", "private": True, "exist_ok": True}
    upload = hub.calls[2][1]
    assert upload["folder_path"] == str(result.folder) and upload["revision"] == "dev"
    assert upload["create_pr"] is False and upload["commit_message"] == "first"
    uploaded = sorted(
        str(p.relative_to(hub.root / "commit-3")) for p in (hub.root / "commit-3").rglob("*") if p.is_file()
    )
    assert uploaded == result.files
    assert result.commit.endswith("/commit/3")

    pr_hub = RecordingHub(tmp_path / "hub-pr")
    push(saved, "me/videopanda-tiny", check=False, api=pr_hub, create_pr=True, revision="main", base_model=None)
    assert [name for name, _ in pr_hub.calls] == ["create_repo", "upload_folder"]
    assert pr_hub.calls[1][1]["create_pr"] is True


def test_push_a_model_object_and_argument_errors(tmp_path):
    hub = RecordingHub(tmp_path / "hub")
    model, processor = tiny_model(), build_processor()
    result = push(model, "tiny", processor=processor, check=False, api=hub, base_model=None)
    assert "pipeline_videopanda.py" in result.files and "README.md" in result.files
    with pytest.raises(ValueError, match="needs its processor"):
        push(model, "me/x", check=False, api=hub)
    with pytest.raises(ValueError, match="repo_id must look like"):
        push(model, "a/b/c", processor=processor, check=False, api=hub)


def test_cli_dry_run_and_errors(saved, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "--dry-run" in capsys.readouterr().out

    stage = tmp_path / "cli-stage"
    code = main(
        [
            str(saved),
            "me/videopanda-tiny",
            "--dry-run",
            "--skip-check",
            "--output-dir",
            str(stage),
            "--released",
            "videopanda_fitu",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "Dry run: nothing was uploaded" in out and "README.md" in out
    assert "64.7" in (stage / "README.md").read_text()  # the released card was written

    plain = tmp_path / "cli-plain"
    code = main(
        [
            str(saved),
            "me/videopanda-tiny",
            "--dry-run",
            "--skip-check",
            "--output-dir",
            str(plain),
            "--base-model",
            "none",
            "--license",
            "mit",
        ]
    )
    assert code == 0
    from huggingface_hub.repocard import metadata_load

    metadata = metadata_load(plain / "README.md")
    assert metadata["license"] == "mit" and "base_model" not in metadata

    assert main([str(tmp_path / "missing"), "me/x", "--dry-run"]) == 2
    assert "no config.json" in capsys.readouterr().err


def test_trainer_checkpoint_of_a_remote_code_model_is_complete(saved, tmp_path):
    """What `Trainer(push_to_hub=True)` uploads is `save_model`'s folder: it keeps every remote-code file.

    (If `register_local_classes()` ran earlier in this process, transformers 5 prefers the registered local classes
    over the folder's code even with `trust_remote_code=True`; the saved files are the same either way. The
    remote-code re-save itself is checked in a fresh process by test_hub_fresh_env.py.)"""
    from transformers import AutoModelForImageTextToText, AutoProcessor, Trainer, TrainingArguments

    model = AutoModelForImageTextToText.from_pretrained(saved, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(saved, trust_remote_code=True)
    args = TrainingArguments(output_dir=str(tmp_path / "run"), report_to=[], use_cpu=True)
    trainer = Trainer(model=model, args=args, processing_class=processor)
    trainer.save_model(str(tmp_path / "saved-by-trainer"))
    written = {p.name for p in (tmp_path / "saved-by-trainer").iterdir()}
    assert {p.name for p in saved.iterdir()} <= written
    assert validate_folder(tmp_path / "saved-by-trainer", require_card=False) == []


def test_a_kept_card_is_retargeted_to_the_pushed_repo(saved, tmp_path):
    from videopanda.model_cards.generator import write_model_card

    source = tmp_path / "videopanda-quickstart"
    shutil.copytree(saved, source)
    write_model_card(source, str(source), base_model=None, model_name="kept card")
    assert f'repo = "{source}"' in (source / "README.md").read_text()
    result = push(source, "me/videopanda-tiny", dry_run=True, check=False, output_dir=tmp_path / "stage")
    card = (result.folder / "README.md").read_text()
    assert 'repo = "me/videopanda-tiny"' in card and str(source) not in card
    assert "kept card" in card  # the card itself was kept, not regenerated
