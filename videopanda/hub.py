"""Push a Video-Panda checkpoint to the Hub as one complete, load-tested repository.

A usable repo needs the weights, the processor, the remote code (config, model, processor, video processor and
pipeline files), `config.custom_pipelines` and a model card, all in one commit; `model.push_to_hub` and
`processor.push_to_hub` make two commits and each overwrites the card. So this module assembles one staging folder,
checks it statically, load-tests it in a fresh process that cannot import this project (`hub_check.py`), and only
then uploads it with a single `HfApi.upload_folder` call. `--dry-run` stops before any network access and leaves the
exact folder that would have been uploaded.

Command line: ``videopanda push FOLDER REPO_ID [--private] [--revision BRANCH] [--create-pr] [--dry-run]``.
"""

import argparse
import ast
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

PIPELINE_TASK = "video-text-to-text"
PIPELINE_FILE = "pipeline_videopanda.py"
PIPELINE_CLASS = "VideoTextToTextPipeline"
MODEL_AUTO_CLASSES = ("AutoModel", "AutoModelForImageTextToText", "AutoModelForMultimodalLM")
# Files a Trainer checkpoint holds that are not part of a model repository.
TRAINING_STATE_FILES = (
    "optimizer.pt",
    "scheduler.pt",
    "rng_state.pth",
    "scaler.pt",
    "trainer_state.json",
    "training_args.bin",
)
CHECK_SCRIPT = Path(__file__).with_name("hub_check.py")


class HubFolderError(ValueError):
    """A checkpoint folder is incomplete or fails to load; the message lists every problem found."""


def custom_pipelines_entry() -> dict:
    """The `config.custom_pipelines` value that makes `pipeline("video-text-to-text", trust_remote_code=True)` work."""
    return {
        PIPELINE_TASK: {
            "impl": f"{Path(PIPELINE_FILE).stem}.{PIPELINE_CLASS}",
            "pt": ["AutoModelForImageTextToText"],
            "tf": [],
            "type": "multimodal",
        }
    }


def _package_pipeline_file() -> Path:
    from .modeling import __file__ as modeling_init

    return Path(modeling_init).with_name(PIPELINE_FILE)


def _complete_remote_code(folder: Path) -> None:
    """Add what a plain `save_pretrained` may leave out: the pipeline file, `custom_pipelines`, all model Auto keys."""
    if not (folder / PIPELINE_FILE).is_file():
        shutil.copy2(_package_pipeline_file(), folder / PIPELINE_FILE)
        logger.info("Copied %s into %s", PIPELINE_FILE, folder)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    changed = False
    if not config.get("custom_pipelines"):
        config["custom_pipelines"] = custom_pipelines_entry()
        changed = True
    auto_map = dict(config.get("auto_map") or {})
    generation_class = auto_map.get("AutoModelForImageTextToText") or auto_map.get("AutoModelForMultimodalLM")
    if generation_class and "AutoModelForMultimodalLM" not in auto_map:
        auto_map["AutoModelForMultimodalLM"] = generation_class
        changed = True
    if generation_class and "AutoModelForImageTextToText" not in auto_map:
        auto_map["AutoModelForImageTextToText"] = generation_class
        changed = True
    if changed:
        config["auto_map"] = auto_map
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def save_hub_folder(model, processor, output_dir, *, repo_id: str | None = None, card=None, **card_kwargs) -> Path:
    """
    Save a model and its processor as one Hub-ready folder: weights, processor, remote code, pipeline, model card.

    `card` may be a `huggingface_hub.ModelCard`, `False` (no README.md), or `None` to generate one with
    `videopanda.model_cards.generator.build_model_card(repo_id, **card_kwargs)` (e.g. `eval_results=[...]`).
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.config.custom_pipelines = custom_pipelines_entry()
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    _complete_remote_code(output_dir)
    _write_card(output_dir, repo_id, card, overwrite=True, **card_kwargs)
    problems = validate_folder(output_dir, require_card=card is not False)
    if problems:
        raise HubFolderError(f"{output_dir} is not a complete Video-Panda repository:\n- " + "\n- ".join(problems))
    return output_dir


def _write_card(folder: Path, repo_id, card, overwrite: bool, **card_kwargs) -> None:
    from .model_cards.generator import write_model_card

    if card is False or ((folder / "README.md").is_file() and not overwrite and card is None and not card_kwargs):
        return
    if card is None:
        write_model_card(folder, repo_id or str(folder), **card_kwargs)
    else:
        card.save(folder / "README.md")


def prepare_folder(source, output_dir=None, *, repo_id=None, card=None, overwrite_card=False, **card_kwargs) -> Path:
    """
    Copy a saved checkpoint folder (e.g. a Trainer checkpoint) into a staging folder and complete it for the Hub.

    Training state (optimizer, scheduler, RNG, trainer state) is left out; the pipeline file, `custom_pipelines`
    and missing model Auto classes are added; a README.md is generated unless the folder has one (or
    `overwrite_card`). Returns the staging folder, which is exactly what would be uploaded.
    """
    source = Path(source)
    if not (source / "config.json").is_file():
        raise HubFolderError(f"{source} is not a checkpoint folder: it has no config.json.")
    output_dir = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="videopanda-push-"))
    if output_dir.resolve() == source.resolve():
        raise HubFolderError("The staging folder must differ from the source folder.")
    if output_dir.exists() and any(output_dir.iterdir()):
        raise HubFolderError(f"The staging folder {output_dir} is not empty.")
    shutil.copytree(source, output_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*TRAINING_STATE_FILES))
    for sub in [p for p in output_dir.iterdir() if p.is_dir()]:
        if sub.name.startswith("checkpoint-") or sub.name in ("runs", "__pycache__", ".cache"):
            shutil.rmtree(sub)
    _complete_remote_code(output_dir)
    _write_card(output_dir, repo_id, card, overwrite=overwrite_card, **card_kwargs)
    if repo_id:
        _retarget_card(output_dir / "README.md", repo_id)
    return output_dir


def _retarget_card(readme: Path, repo_id: str) -> None:
    """Point a kept card's usage snippet (`repo = "..."`, e.g. a local folder) at the repository it is pushed to."""
    if readme.is_file():
        text = readme.read_text()
        retargeted = re.sub(r'^repo = "[^"\n]*"', f'repo = "{repo_id}"', text, flags=re.MULTILINE)
        if retargeted != text:
            readme.write_text(retargeted)


def _relative_imports(path: Path) -> list[str]:
    """Module names imported with `from .x import ...` in a remote-code file; other relative forms are errors."""
    tree = ast.parse(path.read_text(), filename=str(path))
    modules = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            if node.level > 1 or node.module is None or "." in node.module:
                modules.append(f"!{ast.unparse(node)}")
            else:
                modules.append(node.module)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            modules.extend(f"!{ast.unparse(node)}" for name in names if name.split(".")[0] == "videopanda")
    return modules


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}


def _auto_maps(folder: Path) -> dict[str, str]:
    """The `auto_map` entries transformers will read: the model's from config.json, the processor's from
    processor/tokenizer configs, the video processor's from its (possibly nested) config."""
    processor_config = _read_json(folder / "processor_config.json")
    video_config = processor_config.get("video_processor")
    sources = {
        ("AutoConfig", "AutoModel", "AutoModelForImageTextToText", "AutoModelForMultimodalLM"): [
            _read_json(folder / "config.json")
        ],
        ("AutoProcessor",): [
            processor_config,
            _read_json(folder / "tokenizer_config.json"),
            _read_json(folder / "preprocessor_config.json"),
        ],
        ("AutoVideoProcessor",): [
            video_config if isinstance(video_config, dict) else {},
            _read_json(folder / "video_preprocessor_config.json"),
        ],
    }
    found = {}
    for autos, configs in sources.items():
        for config in configs:
            for auto, reference in (config.get("auto_map") or {}).items():
                reference = reference[0] if isinstance(reference, (list, tuple)) else reference
                if auto in autos and reference:
                    found.setdefault(auto, reference)
    return found


def validate_folder(folder, require_card: bool = True) -> list[str]:
    """Static checks of a Hub folder; returns the list of problems (empty when complete)."""
    folder = Path(folder)
    problems = []
    config_path = folder / "config.json"
    if not config_path.is_file():
        return [f"{folder} has no config.json"]
    config = json.loads(config_path.read_text())
    if not list(folder.glob("*.safetensors")):
        problems.append("no *.safetensors weights")
    auto_map = _auto_maps(folder)
    for auto in ("AutoConfig", *MODEL_AUTO_CLASSES, "AutoProcessor", "AutoVideoProcessor"):
        if auto not in auto_map:
            problems.append(f"auto_map has no {auto} entry")
    references = set(auto_map.values())
    pipelines = config.get("custom_pipelines") or {}
    if PIPELINE_TASK not in pipelines:
        problems.append(f"config.custom_pipelines has no {PIPELINE_TASK!r} entry")
    else:
        references.add(pipelines[PIPELINE_TASK]["impl"])
    for reference in sorted(references):
        if "--" in reference:
            problems.append(f"auto_map entry {reference!r} points at another repository")
            continue
        module = reference.rsplit(".", 1)[0]
        if not (folder / f"{module}.py").is_file():
            problems.append(f"{reference!r} needs {module}.py, which is missing")
    for path in sorted(folder.glob("*.py")):
        for module in _relative_imports(path):
            if module.startswith("!"):
                problems.append(f"{path.name}: import not allowed in remote code: {module[1:]}")
            elif not (folder / f"{module}.py").is_file():
                problems.append(f"{path.name} imports .{module}, but {module}.py is missing")
    if require_card:
        problems.extend(_card_problems(folder / "README.md"))
    return problems


def _card_problems(path: Path) -> list[str]:
    if not path.is_file():
        return ["no README.md model card"]
    from huggingface_hub.repocard import metadata_load

    metadata = metadata_load(path) or {}
    problems = []
    expected = {"library_name": "transformers", "pipeline_tag": PIPELINE_TASK}
    for key, value in expected.items():
        if metadata.get(key) != value:
            problems.append(f"README.md metadata {key} is {metadata.get(key)!r}, expected {value!r}")
    if not metadata.get("license"):
        problems.append("README.md metadata has no license")
    if "custom_code" not in (metadata.get("tags") or []):
        problems.append("README.md metadata tags lack custom_code")
    return problems


def check_folder(
    folder,
    *,
    python: str | None = None,
    video=None,
    pipelines: bool = True,
    resave: bool = True,
    timeout: float = 900,
) -> dict:
    """
    Load-test a folder in a fresh process (`hub_check.py`): every Auto class, the three pipelines, a re-save.

    The process runs in an empty working directory with `HF_HUB_OFFLINE=1`, its own module cache, no PYTHONPATH,
    and `import videopanda` blocked, so only what is inside the folder can be used. `python` selects another
    interpreter (e.g. a virtual environment without this project). Raises `HubFolderError` with the report's errors.
    """
    folder = Path(folder).resolve()
    with tempfile.TemporaryDirectory(prefix="videopanda-check-") as workdir:
        report_path = Path(workdir) / "report.json"
        command = [python or sys.executable, str(CHECK_SCRIPT), str(folder), "--report", str(report_path)]
        if video is not None:
            command += ["--video", str(Path(video).resolve())]
        if not pipelines:
            command.append("--no-pipelines")
        if not resave:
            command.append("--no-resave")
        env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
        env.update(
            HF_HUB_OFFLINE="1",
            HF_MODULES_CACHE=str(Path(workdir) / "modules"),
            PYTHONNOUSERSITE="1",
            TOKENIZERS_PARALLELISM="false",
        )
        logger.info("Load-testing %s in a fresh process", folder)
        completed = subprocess.run(
            command, cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if not report_path.is_file():
            raise HubFolderError(
                f"The load test of {folder} crashed (exit {completed.returncode}):\n{completed.stderr[-4000:]}"
            )
        report = json.loads(report_path.read_text())
    if report.get("errors"):
        details = "\n- ".join(report["errors"])
        raise HubFolderError(f"The load test of {folder} failed:\n- {details}\n{report.get('traceback', '')}")
    return report


@dataclass
class PushResult:
    """What `push` did: the staged folder, the files in it, the load-test report and the commit (None on dry run)."""

    folder: Path
    files: list[str]
    report: dict | None = None
    commit: object | None = None
    repo_id: str = ""
    dry_run: bool = False


def upload(
    folder,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
    api=None,
):
    """Create the repo if needed and upload the folder in one commit (`HfApi.upload_folder`)."""
    from huggingface_hub import HfApi

    api = api or HfApi(token=token)
    api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    if revision and not create_pr:
        api.create_branch(repo_id=repo_id, branch=revision, repo_type="model", exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type="model",
        revision=revision,
        create_pr=create_pr,
        commit_message=commit_message or "Upload Video-Panda (model, processor, remote code, pipeline, card)",
    )


def push(
    source,
    repo_id: str,
    *,
    processor=None,
    output_dir=None,
    dry_run: bool = False,
    check: bool = True,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    token: str | None = None,
    card=None,
    overwrite_card: bool = False,
    api=None,
    **card_kwargs,
) -> PushResult:
    """
    Assemble, check and upload a checkpoint: `source` is a saved folder, or a model object with `processor=`.

    The staged folder (`output_dir`, or a new temporary folder) is exactly what is uploaded. With `dry_run=True`
    nothing touches the network and the folder is left for inspection. `check=False` skips the fresh-process
    load test (not recommended).
    """
    if not repo_id or repo_id.count("/") > 1:
        raise ValueError(f"repo_id must look like 'name' or 'namespace/name', got {repo_id!r}.")
    if isinstance(source, (str, os.PathLike)):
        if processor is not None:
            raise ValueError("`processor=` is only for a model object; a folder already holds its processor.")
        folder = prepare_folder(
            source, output_dir, repo_id=repo_id, card=card, overwrite_card=overwrite_card, **card_kwargs
        )
    else:
        if processor is None:
            raise ValueError("Pushing a model object needs its processor: push(model, repo_id, processor=...).")
        staging = Path(output_dir) if output_dir else Path(tempfile.mkdtemp(prefix="videopanda-push-"))
        folder = save_hub_folder(source, processor, staging, repo_id=repo_id, card=card, **card_kwargs)
    problems = validate_folder(folder)
    if problems:
        raise HubFolderError(f"{folder} is not ready to push:\n- " + "\n- ".join(problems))
    report = check_folder(folder) if check else None
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    result = PushResult(folder=folder, files=files, report=report, repo_id=repo_id, dry_run=dry_run)
    if dry_run:
        logger.info("Dry run: %s holds the %d files that would be uploaded to %s", folder, len(files), repo_id)
        return result
    result.commit = upload(
        folder,
        repo_id,
        private=private,
        revision=revision,
        create_pr=create_pr,
        commit_message=commit_message,
        token=token,
        api=api,
    )
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videopanda push",
        description="Assemble a checkpoint folder (model, processor, remote code, pipeline, model card), load-test it "
        "in a fresh process that cannot import this project, and upload it to the Hub in one commit.",
        epilog="Example: videopanda push videopanda-quickstart me/videopanda-tiny --private --dry-run",
    )
    parser.add_argument(
        "folder", help="saved model folder (save_pretrained of model + processor, or a Trainer checkpoint)"
    )
    parser.add_argument("repo_id", help="target Hub repository, e.g. me/videopanda-tiny")
    parser.add_argument("--private", action="store_true", help="create the repository as private")
    parser.add_argument("--revision", help="branch to push to (created if missing)")
    parser.add_argument("--create-pr", action="store_true", help="open a pull request instead of committing directly")
    parser.add_argument("--commit-message", help="commit message")
    parser.add_argument("--dry-run", action="store_true", help="assemble and load-test only; no network access")
    parser.add_argument("--output-dir", help="staging folder (must be empty; default: a new temporary folder)")
    parser.add_argument("--skip-check", action="store_true", help="skip the fresh-process load test")
    parser.add_argument("--overwrite-card", action="store_true", help="regenerate README.md even if the folder has one")
    parser.add_argument("--released", help="write the card of a converted released checkpoint (videopanda_fitu, ...)")
    parser.add_argument("--results", help="JSON file of EvalResult-style dicts to put in the card")
    parser.add_argument(
        "--base-model", help="base model id for a generated card (default: lmsys/vicuna-7b-v1.5; 'none' for none)"
    )
    parser.add_argument("--license", help="license id for a generated card (default: apache-2.0)")
    parser.add_argument("--token", help="Hub token (default: the logged-in token)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    card_kwargs = {}
    card = None
    if args.released:
        from .model_cards.generator import released_checkpoint_card

        card = released_checkpoint_card(args.released, args.repo_id)
    if args.results:
        card_kwargs["eval_results"] = json.loads(Path(args.results).read_text())
    if args.base_model:
        card_kwargs["base_model"] = None if args.base_model.lower() == "none" else args.base_model
    if args.license:
        card_kwargs["license"] = args.license
    try:
        result = push(
            args.folder,
            args.repo_id,
            output_dir=args.output_dir,
            dry_run=args.dry_run,
            check=not args.skip_check,
            private=args.private,
            revision=args.revision,
            create_pr=args.create_pr,
            commit_message=args.commit_message,
            token=args.token,
            card=card,
            overwrite_card=args.overwrite_card or card is not None,
            **card_kwargs,
        )
    except (HubFolderError, ValueError) as error:
        print(f"videopanda push: {error}", file=sys.stderr)
        return 2
    print(f"Staged {len(result.files)} files in {result.folder}:")
    for name in result.files:
        print(f"  {name}")
    if result.report is not None:
        print("Fresh-process load test passed (Auto classes, pipelines, re-save).")
    if result.dry_run:
        print(f"Dry run: nothing was uploaded to {args.repo_id}.")
    else:
        print(f"Uploaded to {args.repo_id}: {getattr(result.commit, 'commit_url', result.commit)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
