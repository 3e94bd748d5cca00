"""Benchmark: end-to-end generation with and without a video, in one run.

A Video-Panda with the full-size STAB (width 1024, 8 frames at 448x448) in front of a tiny random Llama (4 layers,
hidden 256), so that the numbers show what the visual path costs a small LLM: preprocessing of a 640x360 clip,
time to first token (prefill, STAB included), and decode tokens/s after the first token, for a text-only prompt and
for the same question about a video. Medians of --repeats runs after a warm-up. Greedy decoding, a fixed number of
new tokens (end-of-sequence suppressed), KV cache on.

Prints a table, writes JSON to benchmarks/results/bench_generation.json and, with --update-results-md, rewrites the
generation section of benchmarks/RESULTS.md.
"""

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from videopanda.testing import make_video, tiny_model, tiny_processor, tiny_text_config

RESULTS_DIR = Path(__file__).parent / "results"
RESULTS_MD = Path(__file__).parent / "RESULTS.md"
START, END = "<!-- bench_generation:start -->", "<!-- bench_generation:end -->"
QUESTION = "what colour is the square ?"


def build_model():
    text_config = tiny_text_config(
        hidden_size=256, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=4
    )
    return tiny_model(vision_hidden_size=1024, vision_num_heads=8, image_size=448, text_config=text_config)


def conversation(video_path: str | None) -> list[dict]:
    content = [{"type": "video", "path": video_path}] if video_path else []
    return [{"role": "user", "content": [*content, {"type": "text", "text": QUESTION}]}]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(model, processor, video_path: str | None, new_tokens: int, repeats: int) -> dict:
    """Preprocessing seconds, time to first token and decode tokens/s (medians)."""
    messages = conversation(video_path)

    def prepare():
        return processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
        )

    def generate(inputs, count):
        generation = {"max_new_tokens": count, "min_new_tokens": count, "do_sample": False}
        model.generate(**inputs, **generation)

    inputs = prepare()
    generate(inputs, new_tokens)  # warm-up
    preprocess, first_token, full = [], [], []
    with torch.inference_mode():
        for _ in range(repeats):
            preprocess.append(timed(prepare))
            first_token.append(timed(lambda: generate(inputs, 1)))
            full.append(timed(lambda: generate(inputs, new_tokens)))
    ttft, total = statistics.median(first_token), statistics.median(full)
    return {
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "preprocess_s": statistics.median(preprocess),
        "time_to_first_token_s": ttft,
        "decode_tokens_per_s": (new_tokens - 1) / max(total - ttft, 1e-9),
    }


def markdown(report: dict) -> str:
    rows = [
        f"| {name} | {r['prompt_tokens']} | {r['preprocess_s']:.3f} | {r['time_to_first_token_s']:.3f} | "
        f"{r['decode_tokens_per_s']:.1f} |"
        for name, r in report["results"].items()
    ]
    return "\n".join(
        [
            START,
            "## End-to-end generation with a tiny LLM (`benchmarks/bench_generation.py`)",
            "",
            f"Command: `python benchmarks/bench_generation.py --update-results-md`  ",
            f"{report['machine']}, {report['threads']} threads, float32, torch {report['torch']}; full-size STAB "
            f"(8 frames at 448x448) + a 4-layer, 256-wide random Llama; greedy, {report['new_tokens']} new tokens, "
            f"medians of {report['repeats']} runs after a warm-up. The video is a 16-frame 640x360 mpeg4 clip.",
            "",
            "| prompt | prompt tokens | preprocess s | time to first token s | decode tokens/s |",
            "| --- | --- | --- | --- | --- |",
            *rows,
            "",
            "The video is consumed at prefill only: decode speed with and without it differs only by the longer KV cache.",
            END,
        ]
    )


def update_results_md(section: str) -> None:
    text = RESULTS_MD.read_text(encoding="utf-8") if RESULTS_MD.exists() else "# Benchmark results\n"
    if START in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS_MD.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per prompt after one warm-up (default 3)")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens generated per run (default 32)")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "bench_generation.json", help="JSON output path")
    parser.add_argument("--update-results-md", action="store_true", help="rewrite this benchmark's RESULTS.md section")
    args = parser.parse_args(argv)

    model, processor = build_model(), tiny_processor(image_size=448)
    with tempfile.TemporaryDirectory() as tmp:
        clip = str(make_video(Path(tmp) / "clip.mp4", num_frames=16, height=360, width=640))
        results = {
            "text only": measure(model, processor, None, args.new_tokens, args.repeats),
            "video (8 frames)": measure(model, processor, clip, args.new_tokens, args.repeats),
        }
    report = {
        "machine": f"{platform.machine()} CPU",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "new_tokens": args.new_tokens,
        "repeats": args.repeats,
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2), encoding="utf-8")
    section = markdown(report)
    print(section)
    if args.update_results_md:
        update_results_md(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
