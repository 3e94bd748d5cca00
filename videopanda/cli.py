"""The ``videopanda`` command line: one entry point for the main jobs of the project.

Subcommands own nothing themselves: ``quickstart``, ``train``, ``eval``, ``convert`` and ``push`` hand the rest of the
command line to the ``main(argv)`` of the module that implements them, imported lazily so that ``videopanda --help``
stays fast. ``ask`` and ``params`` are small enough to live here. Errors are one line on stderr and a non-zero exit
code (2 for bad input, 1 for a failure while running), never a traceback for a user mistake.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from pathlib import Path

logger = logging.getLogger(__name__)

# subcommand -> (module, one-line summary). The module's ``main(argv)`` receives the remaining arguments.
DELEGATED = {
    "quickstart": (
        "videopanda.quickstart",
        "train, evaluate and package a tiny Video-Panda on synthetic videos, offline, in minutes",
    ),
    "train": ("videopanda.train.run", "train with a recipe (stage 1 alignment, stage 2 pre-training, stage 3 tuning)"),
    "eval": ("videopanda.eval.cli", "evaluate a model on a video QA benchmark (zero-shot QA, VCGBench, synthetic)"),
    "convert": ("videopanda.convert_checkpoint", "convert an original Video-Panda checkpoint to a transformers folder"),
    "push": ("videopanda.hub", "upload a checked model folder (model, processor, remote code, card) to the Hub"),
    "demo": ("videopanda.demo", "open the Gradio demo on a model folder"),
}
EXIT_USAGE = 2
EXIT_FAILURE = 1
DEFAULT_MODEL = "videopanda-quickstart"
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".mpg", ".mpeg")
# STAB + projector of the paper's configuration, and the original's unused second LSTE branch that we drop.
PAPER_STAB_PARAMS = 45_066_578
DROPPED_LMHRA2_PARAMS = 1_403_218


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="videopanda",
        description="Video-Panda: an encoder-free video-language model, native to Hugging Face transformers.",
        epilog="Run `videopanda <command> --help` for the options of one command. "
        "Start with `videopanda quickstart`: it needs no Hub access.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (_, summary) in DELEGATED.items():
        # Delegated commands parse their own options (and their own --help), so nothing is declared here.
        sub.add_parser(name, help=summary, add_help=False)

    ask = sub.add_parser(
        "ask",
        help="ask a question about a video and stream the answer",
        description="Ask a question about a video file; the answer is streamed as it is generated.",
        epilog='Example: videopanda ask clip.mp4 "What colour is the object?" --model videopanda-quickstart',
    )
    ask.add_argument("video", help="path of a video file (mp4, avi, mov, mkv, webm, gif, ...)")
    ask.add_argument("question", help="the question, in quotes")
    ask.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"model folder or Hub repo id (default: ./{DEFAULT_MODEL}, what `videopanda quickstart` writes)",
    )
    ask.add_argument("--max-new-tokens", type=int, default=64, help="upper bound on the answer length (default 64)")
    ask.add_argument("--num-frames", type=int, default=None, help="frames to sample (default: the model's setting)")
    ask.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    ask.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")

    params = sub.add_parser(
        "params",
        help="print the STAB + projector parameter count of the paper configuration",
        description="Build the paper's configuration on the meta device (no memory, no weights) and count the "
        "parameters of the visual path: STAB (the encoder-free alignment block) and the projector.",
    )
    params.add_argument("--by-module", action="store_true", help="also list the count of every STAB sub-module")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``videopanda`` console script; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = False
    while argv and argv[0] in ("-v", "--verbose"):
        verbose, argv = True, argv[1:]
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if argv and argv[0] in DELEGATED:
            return _delegate(argv[0], argv[1:])
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args.command == "ask":
            return ask(args)
        if args.command == "params":
            return params(args)
        raise CLIError(f"unknown command {args.command!r}")
    except CLIError as error:
        print(f"videopanda: error: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        print("videopanda: interrupted", file=sys.stderr)
        return 130


def _delegate(command: str, argv: list[str]) -> int:
    module_name, _ = DELEGATED[command]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise CLIError(f"`videopanda {command}` is unavailable: cannot import {module_name} ({error})", EXIT_FAILURE)
    entry = getattr(module, "main", None)
    if entry is None:
        raise CLIError(f"`videopanda {command}` is unavailable: {module_name} has no main(argv)", EXIT_FAILURE)
    try:
        code = entry(argv)
    except SystemExit as exit_:  # argparse in the owner's main exits for --help and usage errors
        code = exit_.code
    if code is None:
        return 0
    return code if isinstance(code, int) else EXIT_FAILURE


# ----------------------------------------------------------------------------------------------------------------------
# ask


def _check_model_source(model: str) -> None:
    """Fail early, in one line, on a local folder that cannot be a Video-Panda model."""
    path = Path(model)
    looks_local = path.exists() or model.startswith((".", "/", "~")) or model.count("/") > 1 or model == DEFAULT_MODEL
    if not looks_local:
        return  # a Hub repo id: resolved by from_pretrained (cache or network)
    if not path.exists():
        hint = " (run `videopanda quickstart` first)" if model == DEFAULT_MODEL else ""
        raise CLIError(f"model folder not found: {model}{hint}")
    if not path.is_dir():
        raise CLIError(f"--model must be a folder or a Hub repo id, got the file {model}")
    if not (path / "config.json").is_file():
        raise CLIError(f"{model} is not a model folder: it has no config.json")
    for required in ("tokenizer.json", "processor_config.json"):
        if not (path / required).is_file():
            raise CLIError(f"{model} is not a complete Video-Panda folder: {required} is missing")


def load_model_and_processor(model: str, device: str | None = None):
    """``AutoModelForImageTextToText`` + ``AutoProcessor`` from a folder or repo (remote code), in eval mode."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from transformers.utils import logging as hf_logging

    _check_model_source(model)
    if not logger.isEnabledFor(logging.INFO):
        hf_logging.disable_progress_bar()  # keep stdout/stderr to the answer and one-line errors
        hf_logging.set_verbosity_error()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        processor = AutoProcessor.from_pretrained(model, trust_remote_code=True)
        net = AutoModelForImageTextToText.from_pretrained(model, trust_remote_code=True)
    except (OSError, ValueError, KeyError, ImportError, AttributeError, TypeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CLIError(f"cannot load a Video-Panda model from {model}: {first_line}", EXIT_FAILURE)
    return net.to(device).eval(), processor


def ask(args) -> int:
    """Answer one question about one video, streaming the generated text to stdout."""
    video = Path(args.video)
    if not video.exists():
        raise CLIError(f"video file not found: {args.video}")
    if not video.is_file():
        raise CLIError(f"not a file: {args.video}")
    if not args.question.strip():
        raise CLIError("the question is empty")
    if args.max_new_tokens < 1:
        raise CLIError(f"--max-new-tokens must be positive, got {args.max_new_tokens}")
    _probe_video(str(video))
    model, processor = load_model_and_processor(args.model, args.device)
    for token in stream_answer(model, processor, str(video), args.question, args.max_new_tokens, args.num_frames,
                               do_sample=args.sample):
        print(token, end="", flush=True)
    print()
    return 0


def _probe_video(path: str) -> None:
    """Open the file and decode one frame before any model is loaded, so a bad file fails fast and in one line."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise CLIError(f"cannot read video {path}: it has no video stream")
            next(container.decode(video=0))
    except CLIError:
        raise
    except (av.FFmpegError, StopIteration, OSError, ValueError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else "no decodable frame"
        raise CLIError(f"cannot read video {path}: {message}") from error


def prepare_inputs(processor, video: str, question: str, num_frames: int | None = None):
    """Chat-template one (video, question) turn into model inputs; decoding errors become one-line CLI errors."""
    messages = [{"role": "user", "content": [{"type": "video", "path": video}, {"type": "text", "text": question}]}]
    processor_kwargs = {"num_frames": num_frames} if num_frames else None
    try:
        return processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt",
            processor_kwargs=processor_kwargs,
        )
    except Exception as error:  # PyAV and the processor raise many types for unreadable files
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CLIError(f"cannot read video {video}: {message}", EXIT_USAGE) from error


def stream_answer(model, processor, video: str, question: str, max_new_tokens: int = 64, num_frames: int | None = None,
                  do_sample: bool = False):
    """Yield the answer text piece by piece while ``generate`` runs in a background thread (TextIteratorStreamer)."""
    from threading import Thread

    from transformers import TextIteratorStreamer

    inputs = prepare_inputs(processor, video, question, num_frames).to(model.device)
    tokenizer = getattr(processor, "tokenizer", processor)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    kwargs = dict(**inputs, streamer=streamer, max_new_tokens=max_new_tokens, do_sample=do_sample)
    errors: list[BaseException] = []

    def run():
        try:
            model.generate(**kwargs)
        except BaseException as error:  # surfaced in the caller's thread below
            errors.append(error)
            streamer.end()

    thread = Thread(target=run, daemon=True)
    thread.start()
    yield from streamer
    thread.join()
    if errors:
        raise CLIError(f"generation failed: {errors[0]}", EXIT_FAILURE)


# ----------------------------------------------------------------------------------------------------------------------
# params


def count_visual_parameters(config=None) -> dict[str, int]:
    """Parameter counts of the STAB sub-modules and the projector, built on the meta device (no memory used)."""
    import torch

    from .modeling import VideoPandaConfig
    from .modeling.modeling_stab import VideoPandaVisionTower

    config = config or VideoPandaConfig()
    with torch.device("meta"):
        tower = VideoPandaVisionTower(config)  # STAB + projector, i.e. `model.video_tower`
    counts = {name: sum(p.numel() for p in module.parameters()) for name, module in tower.named_children()}
    for name, parameter in tower.named_parameters(recurse=False):
        counts[name] = parameter.numel()
    return {name: count for name, count in counts.items() if count}


def params(args) -> int:
    counts = count_visual_parameters()
    total = sum(counts.values())
    if args.by_module:
        width = max(len(name) for name in counts)
        for name, count in counts.items():
            print(f"  {name:<{width}}  {count:>12,}")
    print(f"STAB + projector parameters (paper configuration): {total:,}")
    print(
        f"The original checkpoint also carries an LSTE branch `lmhra2` ({DROPPED_LMHRA2_PARAMS:,} parameters) that its "
        "forward never calls; it is dropped here (the converter skips it), so the visual path counts "
        f"{total:,} instead of {total + DROPPED_LMHRA2_PARAMS:,}."
    )
    if total != PAPER_STAB_PARAMS:
        logger.warning("expected %s parameters for the paper configuration, counted %s", PAPER_STAB_PARAMS, total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
