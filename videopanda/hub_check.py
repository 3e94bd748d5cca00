"""Load-test a Video-Panda checkpoint folder the way a Hub user would, in a process that cannot see this project.

Run as a script (``python hub_check.py FOLDER --report report.json``), usually by `videopanda.hub.check_folder` in a
fresh process or by the tests under a virtual environment without the project installed. It imports only
transformers, torch, numpy and av, refuses any import of `videopanda`, loads the folder with every advertised Auto
class and the three pipelines, generates greedily, and writes a JSON report. Exit status 0 means every loader gave
the same tokens (and re-saving a loaded model kept every file); 1 lists what differed.
"""

import argparse
import importlib.abc
import json
import os
import sys
import tempfile
from pathlib import Path


class _BlockProject(importlib.abc.MetaPathFinder):
    """Makes `import videopanda` fail, so remote code that secretly depends on the installed project is caught."""

    def find_spec(self, name, path=None, target=None):
        if name == "videopanda" or name.startswith("videopanda."):
            raise ImportError(f"hub_check: {name!r} must not be imported by a checkpoint's remote code")


def _isolate() -> None:
    if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
        sys.path.pop(0)  # the script's own folder would expose the project's modules as top-level names
    sys.meta_path.insert(0, _BlockProject())
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def write_clip(path: Path, num_frames: int = 16, height: int = 64, width: int = 80) -> Path:
    """A small moving-square clip encoded with PyAV (mpeg4), deterministic."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60, size=(num_frames, height, width, 3), dtype=np.uint8)
    side = min(height, width) // 4
    for t in range(num_frames):
        x = (width - side) * t // max(1, num_frames - 1)
        frames[t, (height - side) // 2 : (height + side) // 2, x : x + side] = (200, 60, 30)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _module_of(obj) -> str:
    return type(obj).__module__


def run_checks(folder: Path, video: Path, question: str, max_new_tokens: int, resave: bool, pipelines: bool) -> dict:
    import torch
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForImageTextToText,
        AutoModelForMultimodalLM,
        AutoProcessor,
    )
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor

    torch.manual_seed(0)
    load = {"trust_remote_code": True}
    greedy = {"max_new_tokens": max_new_tokens, "do_sample": False, "num_beams": 1}
    report = {"folder": str(folder), "files": sorted(p.name for p in folder.iterdir()), "errors": []}
    errors = report["errors"]

    config = AutoConfig.from_pretrained(folder, **load)
    report["config_class"] = f"{_module_of(config)}.{type(config).__name__}"
    report["custom_pipelines"] = getattr(config, "custom_pipelines", None)
    report["auto_map"] = getattr(config, "auto_map", None)

    processor = AutoProcessor.from_pretrained(folder, **load)
    video_processor = AutoVideoProcessor.from_pretrained(folder, **load)
    report["processor_class"] = f"{_module_of(processor)}.{type(processor).__name__}"
    report["video_processor_class"] = f"{_module_of(video_processor)}.{type(video_processor).__name__}"

    messages = [
        {"role": "user", "content": [{"type": "video", "path": str(video)}, {"type": "text", "text": question}]}
    ]
    inputs = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    report["input_ids"] = inputs["input_ids"][0].tolist()
    pixels = inputs["pixel_values_videos"]
    report["pixel_values_videos"] = {"shape": list(pixels.shape), "sum": float(pixels.double().sum())}
    alone = video_processor(videos=[str(video)], return_tensors="pt")["pixel_values_videos"]
    if alone.shape != pixels.shape or not torch.equal(alone, pixels):
        errors.append("AutoVideoProcessor output differs from the processor's pixel_values_videos")

    generated = {}
    for auto_class in (AutoModelForImageTextToText, AutoModelForMultimodalLM):
        model = auto_class.from_pretrained(folder, dtype="auto", **load).eval()
        with torch.no_grad():
            sequences = model.generate(**inputs, **greedy)
        generated[auto_class.__name__] = sequences[0, inputs["input_ids"].shape[1] :].tolist()
        report[f"{auto_class.__name__}_class"] = f"{_module_of(model)}.{type(model).__name__}"
    report["generated_ids"] = generated
    reference = generated["AutoModelForImageTextToText"]
    if generated["AutoModelForMultimodalLM"] != reference:
        errors.append("AutoModelForMultimodalLM generated different tokens than AutoModelForImageTextToText")
    reference_text = processor.decode(reference, skip_special_tokens=True).strip()
    report["generated_text"] = reference_text

    base = AutoModel.from_pretrained(folder, dtype="auto", **load).eval()
    report["AutoModel_class"] = f"{_module_of(base)}.{type(base).__name__}"
    with torch.no_grad():
        hidden = base(**inputs).last_hidden_state
        full_hidden = model.model(**inputs).last_hidden_state
    report["last_hidden_state"] = {"shape": list(hidden.shape), "sum": float(hidden.double().sum())}
    if not torch.equal(hidden, full_hidden):
        errors.append("AutoModel's hidden states differ from the generation model's base model")

    if pipelines:
        report["pipelines"] = _pipeline_checks(folder, video, question, messages, greedy, reference_text, errors)

    if resave:
        report["resave"] = _resave_check(folder, model, processor, video, question, greedy, reference, errors)
    return report


def _pipeline_checks(folder, video, question, messages, greedy, reference_text, errors) -> dict:
    from transformers import pipeline

    results = {}
    pipe = pipeline("video-text-to-text", model=str(folder), trust_remote_code=True)
    results["video-text-to-text_class"] = type(pipe).__name__
    out = pipe(video=str(video), text=question, **greedy)
    results["video-text-to-text"] = out[0]["generated_text"]
    chat_out = pipe(messages, **greedy)
    results["video-text-to-text_chat"] = chat_out[0]["generated_text"][-1]["content"]
    for task in ("image-text-to-text", "any-to-any"):
        built_in = pipeline(task, model=str(folder), trust_remote_code=True)
        results[f"{task}_class"] = type(built_in).__name__
        out = built_in(
            text=messages,
            max_new_tokens=greedy["max_new_tokens"],
            return_full_text=False,
            generate_kwargs={"do_sample": False, "num_beams": 1},
        )
        text = out[0]["generated_text"]
        results[task] = text if isinstance(text, str) else text[-1]["content"]
    for name in ("video-text-to-text", "video-text-to-text_chat", "image-text-to-text", "any-to-any"):
        if results[name].strip() != reference_text:
            errors.append(f"pipeline {name} answered {results[name]!r}, direct generation {reference_text!r}")
    return results


def _resave_check(folder, model, processor, video, question, greedy, reference, errors) -> dict:
    """Re-save a loaded model and processor (what Trainer checkpoints do) and check nothing is lost."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    target = Path(tempfile.mkdtemp(prefix="resaved-"))
    model.save_pretrained(target)
    processor.save_pretrained(target)
    original = {p.name for p in folder.iterdir() if p.is_file()} - {"README.md", ".gitattributes"}
    resaved = {p.name for p in target.iterdir() if p.is_file()}
    missing = sorted(original - resaved)
    if missing:
        errors.append(f"re-saving a loaded model dropped {missing}")
    config = json.loads((target / "config.json").read_text())
    if config.get("custom_pipelines") != json.loads((folder / "config.json").read_text()).get("custom_pipelines"):
        errors.append("re-saving a loaded model changed config.custom_pipelines")
    reloaded = AutoModelForImageTextToText.from_pretrained(target, trust_remote_code=True).eval()
    reprocessor = AutoProcessor.from_pretrained(target, trust_remote_code=True)
    messages = [
        {"role": "user", "content": [{"type": "video", "path": str(video)}, {"type": "text", "text": question}]}
    ]
    inputs = reprocessor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    import torch

    with torch.no_grad():
        sequences = reloaded.generate(**inputs, **greedy)
    tokens = sequences[0, inputs["input_ids"].shape[1] :].tolist()
    if tokens != reference:
        errors.append("the re-saved folder generates different tokens")
    return {"files": sorted(resaved), "missing": missing, "generated_ids": tokens}


def main(argv=None) -> int:
    _isolate()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--report", type=Path, help="write the JSON report here (default: stdout)")
    parser.add_argument("--video", type=Path, help="video file to ask about (default: a generated clip)")
    parser.add_argument("--question", default="What is moving in the video?")
    parser.add_argument("--max-new-tokens", type=int, default=6)
    parser.add_argument("--no-pipelines", action="store_true", help="skip the three pipeline checks")
    parser.add_argument("--no-resave", action="store_true", help="skip the re-save check")
    args = parser.parse_args(argv)

    folder = args.folder.resolve()
    if not (folder / "config.json").is_file():
        print(f"hub_check: {folder} has no config.json", file=sys.stderr)
        return 2
    video = args.video.resolve() if args.video else write_clip(Path(tempfile.mkdtemp()) / "clip.mp4")
    try:
        report = run_checks(
            folder, video, args.question, args.max_new_tokens, not args.no_resave, not args.no_pipelines
        )
    except Exception as error:  # noqa: BLE001 -- the report must say what broke, whatever it is
        import traceback

        report = {"folder": str(folder), "errors": [f"{type(error).__name__}: {error}"]}
        report["traceback"] = traceback.format_exc()
    text = json.dumps(report, indent=2, default=str)
    if args.report:
        args.report.write_text(text)
    else:
        print(text)
    for error in report["errors"]:
        print(f"hub_check: {error}", file=sys.stderr)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
