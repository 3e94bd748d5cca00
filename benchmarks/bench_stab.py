"""Benchmark: Video-Panda's STAB + projector against an encoder-based video tower, in one run.

Measured (full-size defaults: STAB width 1024, projector to 4096, 8 frames at 448x448, all valid):
  1. ours, fast path (factorised single-query attention, <row> projected once) at batch 1, 2 and 4 videos;
  2. ours, reference path (straightforward attention, what the original computes) at batch 1;
  3. the anchor: transformers' CLIPVisionModel ViT-L/14 (24 layers, width 1024, random weights, SDPA) on the same
     8 frames at 224x224 (the Video-LLaVA/LanguageBind image-encoder shape);
  4. that tower with LanguageBind's temporal attention (``videopanda.train``'s LanguageBind video teacher, random
     weights, SDPA): the Video-LLaVA video encoder, run to its penultimate layer as Video-LLaVA uses it.
For each: median latency over --repeats interleaved rounds after a warm-up round (each round times every entry
once, so a shared machine's load drifts affect all entries alike), MACs counted with torch.utils.flop_counter
(one MAC = 2 FLOPs; compare with the paper's 105.5 G), achieved GFLOP/s against a measured fp32 matmul peak (the best
round of 10 back-to-back 2048x2048 products, about as long as one STAB forward: a single 0.1 s product is too short to
time reliably on a shared VM, and the best round makes the share of peak a conservative figure), and the peak memory
of one forward. On CPU the peak memory is the resident-set growth of a fresh process during its first
forward (kernel VmHWM, weights and inputs excluded, allocator and BLAS workspaces included); on CUDA it is
torch.cuda.max_memory_allocated minus the memory held before the forward, in bf16 timed with CUDA events.

Prints a table, writes JSON to benchmarks/results/bench_stab.json and, with --update-results-md, rewrites the STAB
section of benchmarks/RESULTS.md.
"""

import argparse
import functools
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode

logger = logging.getLogger("bench_stab")
HERE = Path(__file__).parent
SECTION_START = "<!-- bench_stab:start -->"
SECTION_END = "<!-- bench_stab:end -->"
PAPER_GMACS = 105.5
PEAK_MATMULS = 10  # 2048x2048 products per timed peak measurement (about 1 s on 2 cores)


# ---------------------------------------------------------------------------------------------------- models
def build_stab(device, dtype):
    from videopanda.modeling import VideoPandaConfig
    from videopanda.modeling.modeling_stab import VideoPandaVisionTower

    torch.manual_seed(0)
    tower = VideoPandaVisionTower(VideoPandaConfig())
    with torch.no_grad():  # wake the zero-initialised stages up so nothing is trivially zero
        for parameter in tower.parameters() if device.type != "meta" else []:
            if parameter.ndim >= 2 and not parameter.any():
                parameter.normal_(std=0.02)
    return tower.to(device=device, dtype=dtype).eval()


def build_clip(device, dtype):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    config = CLIPVisionConfig(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=224,
        patch_size=14,
        attn_implementation="sdpa",
    )
    torch.manual_seed(0)
    return CLIPVisionModel(config).to(device=device, dtype=dtype).eval()


def build_languagebind(device, dtype):
    from videopanda.train.teacher_languagebind import LanguageBindVideoConfig, LanguageBindVideoTeacher

    torch.manual_seed(0)
    return LanguageBindVideoTeacher(LanguageBindVideoConfig()).to(device=device, dtype=dtype).eval()


def stab_input(batch, frames, size, device, dtype):
    generator = torch.Generator().manual_seed(1)
    pixels = torch.randn(batch, frames, 4, size, size, generator=generator)
    pixels[:, :, 3] = 1  # all valid
    return pixels.to(device=device, dtype=dtype)


def clip_input(frames, device, dtype):
    return torch.randn(frames, 3, 224, 224, generator=torch.Generator().manual_seed(2)).to(device=device, dtype=dtype)


def runner(name, device, dtype, batch=1, frames=8, size=448):
    """``(model, zero-argument callable running one forward)`` for a benchmark entry."""
    if name == "clip":
        model, inputs = build_clip(device, dtype), clip_input(frames * batch, device, dtype)
        return model, lambda: model(pixel_values=inputs)
    if name == "languagebind":
        model, inputs = build_languagebind(device, dtype), clip_input(frames * batch, device, dtype)
        return model, lambda: model(inputs.view(batch, frames, *inputs.shape[1:]))
    model, inputs = build_stab(device, dtype), stab_input(batch, frames, size, device, dtype)
    fast = name == "stab_fast"
    return model, lambda: model(inputs, use_fast_path=fast)


# ---------------------------------------------------------------------------------------------------- measures
def time_once(run, device):
    """Seconds of one forward (CUDA events on GPU)."""
    with torch.no_grad():
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / 1000
        begin = time.perf_counter()
        run()
        return time.perf_counter() - begin


def count_macs(run):
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        run()
    per_op = {str(op).replace("aten.", ""): flops / 2e9 for op, flops in counter.get_flop_counts()["Global"].items()}
    return counter.get_total_flops() / 2e9, per_op


def _status_bytes(field):
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_probe(name, batch):
    """Run in a fresh process: peak resident-set growth (bytes) during the first forward, weights and input excluded.

    Uses the kernel's per-process high-water mark (VmHWM), reset to the current RSS just before the forward through
    /proc/self/clear_refs. (``ru_maxrss`` is not usable here: a child started by a big parent inherits its peak.)
    """
    _model, run = runner(name, torch.device("cpu"), torch.float32, batch=batch)
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # reset VmHWM to the current RSS
    before = _status_bytes("VmRSS")
    with torch.no_grad():
        run()
    return max(_status_bytes("VmHWM") - before, 0)


def peak_memory(name, batch, device, dtype):
    if device.type == "cuda":
        _model, run = runner(name, device, dtype, batch=batch)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        held = torch.cuda.memory_allocated()
        with torch.no_grad():
            run()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - held, "torch.cuda.max_memory_allocated delta"
    result = subprocess.run(
        [sys.executable, __file__, "--memory-probe", name, "--batch", str(batch)],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(result.stdout.strip().splitlines()[-1]), (
        "peak RSS growth of a fresh process during its first forward (VmHWM reset just before the forward, minus the "
        "RSS then; weights and input excluded, allocator and BLAS workspaces included)"
    )


# ---------------------------------------------------------------------------------------------------- report
def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def markdown(results):
    env = results["environment"]
    rows = results["entries"]
    clip = rows["clip_vit_l14_224"]
    lines = [
        SECTION_START,
        "## STAB + projector vs an encoder (`benchmarks/bench_stab.py`)",
        "",
        f"Command: `{results['command']}`  ",
        f"{env['device_name']}, {env['threads']} threads, {env['dtype']}, torch {env['torch']}, transformers "
        f"{env['transformers']}; load average {env['load_average_start']:.1f} at start, {env['load_average_end']:.1f} "
        "at end"
        + (
            " (other jobs were sharing the CPU: absolute times are inflated and noisy; the ratios come from the same run)"
            if env["shared_cpu"]
            else ""
        )
        + ".",
        (
            f"STAB + projector parameters at full size: {results['stab_projector_parameters']:,} (the paper's 45M; the "
            "original's never-used `lmhra2` branch is not built). "
            f"Measured fp32 matmul peak: {results['matmul_peak_gflops']:.0f} GFLOP/s (best round of "
            f"{PEAK_MATMULS} back-to-back 2048x2048 products). "
            f"Latencies are medians of {results['repeats']} interleaved rounds (each round times every entry once, "
            "the matmul peak included) after a warm-up round."
        ),
        "",
        (
            "| model (8 frames) | batch | latency s (median) | best s | vs CLIP | GMACs | vs paper 105.5 | GFLOP/s | "
            "% of peak | peak mem MB |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows.values():
        gmacs = row.get("gmacs")
        lines.append(
            f"| {row['label']} | {row['batch']} | {row['latency_s']:.3f} | {min(row['times_s']):.3f} | "
            f"{clip['latency_s'] * row['batch'] / row['latency_s']:.1f}x | "
            + (f"{gmacs:.1f} | " if gmacs else "- | ")
            + (f"{gmacs / PAPER_GMACS:.2f} | " if gmacs and "STAB" in row["label"] else "- | ")
            + (f"{row['gflops']:.0f} | {row['fraction_of_peak'] * 100:.0f}% | " if gmacs else "- | - | ")
            + (f"{row['peak_memory_mb']:.0f} |" if row.get("peak_memory_mb") is not None else "- |")
        )
    fast, reference = rows["stab_fast_b1"], rows["stab_reference_b1"]
    lines += [
        "",
        (
            f"- Fast path vs reference path: {reference['latency_s'] / fast['latency_s']:.2f}x faster, "
            f"{reference['gmacs'] - fast['gmacs']:.1f} GMACs fewer ({fast['gmacs']:.1f} vs {reference['gmacs']:.1f})."
        ),
        (
            f"- Fast path vs the ViT-L/14 anchor: {clip['latency_s'] / fast['latency_s']:.1f}x faster, "
            f"{clip['gmacs'] / fast['gmacs']:.1f}x fewer MACs."
        ),
        *(
            [
                f"- Fast path vs the LanguageBind video tower (ViT-L/14 plus temporal attention, to its penultimate "
                f"layer): {rows['languagebind_video_224']['latency_s'] / fast['latency_s']:.1f}x faster, "
                f"{rows['languagebind_video_224']['gmacs'] / fast['gmacs']:.1f}x fewer MACs."
            ]
            if "languagebind_video_224" in rows
            else []
        ),
        (
            f"- Arithmetic floor of the fast path at the measured peak: {fast['floor_s']:.3f} s; measured "
            f"{fast['latency_s'] / fast['floor_s']:.2f}x that floor."
        ),
        f"- Peak memory: {results['memory_method']}.",
        "- Targets (performance issue): "
        + "; ".join(
            f"{name} {value} ({'met' if ok else 'missed'})"
            for name, value, ok in [
                (
                    ">= 8x faster than the anchor:",
                    f"{clip['latency_s'] / fast['latency_s']:.1f}x",
                    clip["latency_s"] / fast["latency_s"] >= 8,
                ),
                ("<= 75 GMACs:", f"{fast['gmacs']:.1f}", fast["gmacs"] <= 75),
                (
                    ">= 70% of the matmul peak:",
                    f"{fast['fraction_of_peak'] * 100:.0f}%",
                    fast["fraction_of_peak"] >= 0.7,
                ),
                (
                    "peak memory < 1 GB:",
                    f"{fast.get('peak_memory_mb', float('nan')):.0f} MB",
                    fast.get("peak_memory_mb", 1e9) < 1024,
                ),
            ]
        )
        + ".",
        *(
            ["- No CUDA device in this run: the bf16 CUDA-events variant (`--device cuda`) was not measured."]
            if env["device"] == "cpu"
            else []
        ),
        "- Fast-path MACs by op (G): "
        + ", ".join(f"{op} {value:.1f}" for op, value in fast["gmacs_by_op"].items())
        + ".",
        SECTION_END,
    ]
    return "\n".join(lines)


def update_results_md(section):
    path = HERE / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if SECTION_START in text and SECTION_END in text:
        head, rest = text.split(SECTION_START, 1)
        text = head + section + rest.split(SECTION_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


# ---------------------------------------------------------------------------------------------------- main
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per entry after one warm-up (default 3)")
    parser.add_argument("--batch-sizes", default="1,2,4", help="video batch sizes for the fast path (default 1,2,4)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when available)")
    parser.add_argument(
        "--skip-clip", action="store_true", help="skip the ViT-L/14 and LanguageBind anchors (no ratios then)"
    )
    parser.add_argument("--skip-memory", action="store_true", help="skip the peak-memory probes")
    parser.add_argument("--clip-memory", action="store_true", help="also probe the anchors' peak memory (slow)")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "bench_stab.json")
    parser.add_argument("--update-results-md", action="store_true", help="rewrite the STAB section of RESULTS.md")
    parser.add_argument("--report-only", type=Path, help="re-render the Markdown section from a JSON result, no run")
    parser.add_argument("--memory-probe", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        print(memory_probe(args.memory_probe, args.batch))
        return 0
    if args.report_only:
        section = markdown(json.loads(args.report_only.read_text()))
        print(section)
        if args.update_results_md:
            update_results_md(section)
        return 0

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    load_start = load_average()
    started = time.perf_counter()
    plan = [("stab_fast", b) for b in map(int, args.batch_sizes.split(","))] + [("stab_reference", 1)]
    if not args.skip_clip:
        plan += [("clip", 1), ("languagebind", 1)]
    labels = {
        "stab_fast": "STAB+projector, fast path",
        "stab_reference": "STAB+projector, reference path",
        "clip": "CLIP ViT-L/14 @224 (anchor)",
        "languagebind": "LanguageBind video tower @224 (anchor with temporal attention)",
    }
    anchor_keys = {"clip": "clip_vit_l14_224", "languagebind": "languagebind_video_224"}
    keys = [anchor_keys.get(name, f"{name}_b{batch}") for name, batch in plan]
    runs = {key: runner(name, device, dtype, batch=batch) for key, (name, batch) in zip(keys, plan)}
    a = torch.randn(2048, 2048, device=device)
    b = torch.randn(2048, 2048, device=device)
    runs["matmul_fp32_2048"] = (None, lambda: [a @ b for _ in range(PEAK_MATMULS)])

    # Interleaved rounds: every entry is timed once per round, so load changes on a shared machine hit all alike.
    times = {key: [] for key in runs}
    for round_index in range(args.repeats + 1):
        for key, (_, run) in runs.items():
            seconds = time_once(run, device)
            if round_index > 0:  # round 0 is the warm-up
                times[key].append(seconds)
        logger.info("round %d done (%.0f s)", round_index, time.perf_counter() - started)
    peak = 2 * 2048**3 * PEAK_MATMULS / min(times.pop("matmul_fp32_2048")) / 1e9
    runs.pop("matmul_fp32_2048")
    logger.info("fp32 matmul peak: %.0f GFLOP/s", peak)

    entries, memory_method = {}, None
    for key, (name, batch) in zip(keys, plan):
        latency = statistics.median(times[key])
        row = {"label": labels[name], "batch": batch, "latency_s": latency, "times_s": times[key]}
        if batch == 1:
            # CLIP encodes frames independently, so its count is 8x that of one frame (one forward instead of eight).
            model, run = runs[key]
            counted = functools.partial(model, pixel_values=clip_input(1, device, dtype)) if name == "clip" else run
            row["gmacs"], row["gmacs_by_op"] = count_macs(counted)
            if name == "clip":
                row["gmacs"] *= 8
                row["gmacs_by_op"] = {op: value * 8 for op, value in row["gmacs_by_op"].items()}
            row["gflops"] = 2 * row["gmacs"] / latency
            row["fraction_of_peak"] = row["gflops"] / peak
            row["floor_s"] = 2 * row["gmacs"] / peak
        entries[key] = row
    runs.clear()
    if not args.skip_memory:
        for key, (name, batch) in zip(keys, plan):
            if batch == 1 and (name not in anchor_keys or args.clip_memory):
                memory, memory_method = peak_memory(name, batch, device, dtype)
                entries[key]["peak_memory_mb"] = memory / 2**20
    for row in entries.values():
        logger.info(
            "%-32s batch %d: %.3f s %s",
            row["label"],
            row["batch"],
            row["latency_s"],
            f"{row['gmacs']:.1f} GMACs" if "gmacs" in row else "",
        )

    load_end = load_average()
    with torch.device("meta"):
        parameters = sum(p.numel() for p in build_stab(torch.device("meta"), torch.float32).parameters())
    results = {
        "stab_projector_parameters": parameters,
        "command": "python benchmarks/bench_stab.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "repeats": args.repeats,
        "matmul_peak_gflops": peak,
        "memory_method": memory_method,
        "entries": entries,
        "wall_seconds": time.perf_counter() - started,
        "environment": {
            "device": device.type,
            "device_name": torch.cuda.get_device_name()
            if device.type == "cuda"
            else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
            "threads": torch.get_num_threads(),
            "dtype": str(dtype).replace("torch.", ""),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "load_average_start": load_start,
            "load_average_end": load_end,
            "shared_cpu": device.type == "cpu" and max(load_start or 0, load_end or 0) > (os.cpu_count() or 1) * 1.2,
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    if "clip_vit_l14_224" in entries:
        section = markdown(results)
        print(section)
        if args.update_results_md:
            update_results_md(section)
    logger.info("wrote %s in %.0f s", args.output, results["wall_seconds"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
