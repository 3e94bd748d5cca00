"""Answer benchmark questions with a Video-Panda model: batched greedy generation, sharded, resumable.

Each process (``accelerate launch`` / ``torchrun``; one process is fine) appends finished batches to its own journal
``<output>.parts/rank<r>.jsonl``; a rerun skips every id found in the final file or any journal. Batches are formed
over the pending questions in dataset order and dealt round-robin to the ranks, so a sharded run sees exactly the
batches (and left padding) of a single-process run and produces the same answers. At the end the main process writes
``<output>`` with all records in dataset order (atomically) and ``<output>.summary.json`` with skipped videos.
"""

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from .journal import Journal, read_jsonl

logger = logging.getLogger(__name__)

#: a run whose first this-many requests all fail stops instead of listing every question as skipped
FAILURES_BEFORE_ABORT = 8


@dataclass
class GenerationRequest:
    """One prompt to answer: ``uid`` keys the journal; ``record`` fields are copied into the prediction line."""

    uid: str
    video: Path | None
    question: str
    record: dict = field(default_factory=dict)


def distributed_state():
    """accelerate's process state; CPU-only multi-process launches (``torchrun`` without GPUs) get the gloo backend,
    which accelerate only picks when asked for CPU explicitly."""
    import torch
    from accelerate import PartialState

    multi_process = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return PartialState(cpu=multi_process and not torch.cuda.is_available())


def build_messages(video: Path, question: str) -> list[dict]:
    """The user turn of the original ``run_inference_video_qa.py``: the video, then the question."""
    return [{"role": "user", "content": [{"type": "video", "path": str(video)}, {"type": "text", "text": question}]}]


def _encode(processor, requests: Sequence[GenerationRequest]):
    return processor.apply_chat_template(
        [build_messages(request.video, request.question) for request in requests],
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        add_generation_prompt=True,
        processor_kwargs={"padding": True, "padding_side": "left"},
    )


def generate_batch(model, processor, requests: Sequence[GenerationRequest], max_new_tokens: int) -> list[str]:
    """Greedy answers for a batch of requests (left padding, the prompt stripped from the outputs)."""
    import torch

    inputs = _encode(processor, requests).to(model.device)
    if "pixel_values_videos" in inputs:
        inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(model.dtype)
    tokenizer = processor.tokenizer
    with torch.inference_mode():
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    new_tokens = output[:, inputs["input_ids"].shape[1] :]
    return [text.strip() for text in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


def _parts_dir(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def done_ids(output: str | Path, key: str = "id") -> set:
    """Ids already answered: in the final file or in any rank's journal."""
    output = Path(output)
    ids = {record.get(key) for record in read_jsonl(output)}
    for part in sorted(_parts_dir(output).glob("rank*.jsonl")):
        ids.update(record.get(key) for record in read_jsonl(part))
    return ids


def merge_predictions(output: str | Path, order: Sequence[str], key: str = "id") -> list[dict]:
    """Write ``output`` from itself plus all journals: one record per id, in ``order`` (unknown ids last)."""
    output = Path(output)
    parts = sorted(_parts_dir(output).glob("rank*.jsonl"))
    records = {}
    for source in [output, *parts]:
        for record in read_jsonl(source):
            records.setdefault(record[key], record)
    position = {uid: index for index, uid in enumerate(order)}
    ordered = sorted(records.values(), key=lambda record: (position.get(record[key], len(position)),))
    temporary = output.with_name(output.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in ordered))
    os.replace(temporary, output)
    shutil.rmtree(_parts_dir(output), ignore_errors=True)
    return ordered


def predict(
    model,
    processor,
    requests: Sequence[GenerationRequest],
    output: str | Path,
    batch_size: int = 1,
    max_new_tokens: int = 1024,
    limit: int | None = None,
    progress: bool = True,
) -> dict:
    """Answer every request not yet in ``output``; returns (and, on the main process, writes) a summary.

    Requests without a video are skipped and listed; a batch that fails to decode is retried one request at a time
    so a single broken file does not take its neighbours down. ``limit`` stops after that many new answers per process
    (for smoke tests), leaving a resumable journal.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    uids = [request.uid for request in requests]
    if len(set(uids)) != len(uids):
        raise ValueError("Generation request ids must be unique")
    state = distributed_state()
    output = Path(output)
    already = done_ids(output)
    missing = [request for request in requests if request.video is None]
    pending = [request for request in requests if request.video is not None and request.uid not in already]
    batches = [pending[start : start + batch_size] for start in range(0, len(pending), batch_size)]
    mine = batches[state.process_index :: state.num_processes]
    # Every rank must read the journals before any rank appends to them: a rank that started late would otherwise see
    # a faster rank's first answers as done, deal the batches differently, and leave some to nobody.
    state.wait_for_everyone()
    journal = Journal(_parts_dir(output) / f"rank{state.process_index}.jsonl")
    failures, answered = [], 0
    if state.is_main_process:
        logger.info(
            "%d requests: %d done, %d without video, %d to answer on %d process(es)",
            len(requests),
            len(already & set(uids)),
            len(missing),
            len(pending),
            state.num_processes,
        )
    bar = tqdm(
        total=sum(len(batch) for batch in mine),
        desc=f"predict rank {state.process_index}",
        disable=not progress or not state.is_local_main_process,
    )
    for batch in mine:
        if limit is not None and answered >= limit:
            break
        try:
            answers = generate_batch(model, processor, batch, max_new_tokens)
            done = list(zip(batch, answers))
        except Exception as error:  # noqa: BLE001 - isolate the bad request below
            if len(batch) == 1:
                failures.append({"id": batch[0].uid, "video": str(batch[0].video), "error": repr(error)})
                logger.warning("Skipping %s: %r", batch[0].uid, error)
                done = []
            else:
                done = []
                for request in batch:
                    try:
                        done.append((request, generate_batch(model, processor, [request], max_new_tokens)[0]))
                    except Exception as single_error:  # noqa: BLE001
                        failures.append({"id": request.uid, "video": str(request.video), "error": repr(single_error)})
                        logger.warning("Skipping %s: %r", request.uid, single_error)
        journal.append([{"id": request.uid, **request.record, "pred": answer} for request, answer in done])
        answered += len(done)
        if not answered and len(failures) >= FAILURES_BEFORE_ABORT:
            raise RuntimeError(
                f"The first {len(failures)} requests all failed, which looks like a setup problem rather than broken "
                f"videos; last error: {failures[-1]['error']}"
            )
        bar.update(len(batch))
    bar.close()
    failure_file = _parts_dir(output) / f"rank{state.process_index}.failures.json"
    failure_file.write_text(json.dumps(failures))
    state.wait_for_everyone()
    summary = None
    if state.is_main_process:
        all_failures = []
        for path in sorted(_parts_dir(output).glob("rank*.failures.json")):
            all_failures += json.loads(path.read_text())
        complete = limit is None
        records = merge_predictions(output, uids) if complete else read_jsonl(output)
        summary = {
            "output": str(output),
            "requests": len(requests),
            "processes": state.num_processes,
            "answered": len({record["id"] for record in records} & set(uids))
            if complete
            else len(done_ids(output) & set(uids)),
            "missing_videos": [{"id": request.uid, "video": request.record.get("video_name")} for request in missing],
            "failed": all_failures,
            "complete": complete and not all_failures and not missing,
        }
        output.with_name(output.name + ".summary.json").write_text(json.dumps(summary, indent=1))
        if missing or all_failures:
            logger.warning(
                "%d question(s) skipped for missing videos, %d for unreadable videos (see %s)",
                len(missing),
                len(all_failures),
                output.with_name(output.name + ".summary.json"),
            )
    state.wait_for_everyone()
    return summary if summary is not None else {"output": str(output)}
