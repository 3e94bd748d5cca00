"""Readers for the benchmark files in the layout the community uses (Video-LLaVA / Video-Panda ``GPT_Zero_Shot_QA``).

Zero-shot QA: ``test_q.json`` and ``test_a.json`` are parallel lists (the i-th answer belongs to the i-th question);
videos are looked up by ``video_name`` with the extensions tried in the original's order, and ActivityNet files carry
a ``v_`` prefix that its ``video_name`` lacks. The Video-ChatGPT generative benchmark reads ``generic_qa.json``,
``temporal_qa.json`` and ``consistency_qa.json``. Misaligned or duplicated ids are errors, not silent mismatches
(a misaligned Q/A pairing is a known way to get wrong numbers from the original scripts).
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

#: the order the original inference scripts try, then ``.webm`` (some ActivityNet videos), which only adds files the
#: original could not find
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")


@dataclass(frozen=True)
class QABenchmark:
    """Where one zero-shot QA benchmark lives below the ``GPT_Zero_Shot_QA`` root, and how it names things."""

    name: str
    title: str
    folder: str
    video_dir: str
    video_prefix: str = ""
    type_names: dict = field(default_factory=dict)


ACTIVITYNET_TYPES = {
    0: "motion",
    1: "spatial",
    2: "temporal",
    3: "yes/no",
    4: "color",
    5: "object",
    6: "location",
    7: "number",
    8: "other",
}

#: the project's synthetic VideoQA (``videopanda.synthetic``): ``<root>/test/{test_q.json,test_a.json,videos/}``
SYNTHETIC_TYPES = {0: "colour", 1: "shape", 2: "direction", 3: "order", 4: "count"}

BENCHMARKS = {
    "msvd": QABenchmark("msvd", "MSVD-QA", "MSVD_Zero_Shot_QA", "videos"),
    "msrvtt": QABenchmark("msrvtt", "MSRVTT-QA", "MSRVTT_Zero_Shot_QA", "videos/all"),
    "tgif": QABenchmark("tgif", "TGIF-QA", "TGIF_Zero_Shot_QA", "mp4"),
    "activitynet": QABenchmark(
        "activitynet", "ActivityNet-QA", "Activitynet_Zero_Shot_QA", "all_test", "v_", ACTIVITYNET_TYPES
    ),
    "synthetic": QABenchmark("synthetic", "Synthetic VideoQA (test split)", "test", "videos", "", SYNTHETIC_TYPES),
}


@dataclass
class QASample:
    """One open-ended question with its reference answer; ``video_path`` is ``None`` when no file was found."""

    question_id: str
    video_name: str
    question: str
    answer: str
    type: object = None
    video_path: Path | None = None


def _load_json_list(path: Path, what: str) -> list:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} file not found: {path}")
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, list):
        raise ValueError(f"{what} file {path} must hold a JSON list, got {type(data).__name__}")  # noqa: TRY004
    return data


def resolve_video(video_dir: str | Path, name: str, prefix: str = "", extensions=VIDEO_EXTENSIONS) -> Path | None:
    """The first existing ``video_dir/prefix+name+ext`` (``name`` as given first if it already has an extension)."""
    video_dir = Path(video_dir)
    stem = f"{prefix}{name}"
    candidates = [video_dir / stem] if Path(stem).suffix.lower() in extensions else []
    candidates += [video_dir / f"{stem}{extension}" for extension in extensions]
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def load_qa_samples(
    questions_path, answers_path, video_dir, video_prefix: str = "", extensions=VIDEO_EXTENSIONS
) -> list[QASample]:
    """Pair ``test_q.json`` with ``test_a.json`` by position, checking the ids agree, and find each video."""
    questions = _load_json_list(questions_path, "questions")
    answers = _load_json_list(answers_path, "answers")
    if len(questions) != len(answers):
        raise ValueError(
            f"{questions_path} has {len(questions)} questions but {answers_path} has {len(answers)} answers"
        )
    samples, seen, cache = [], set(), {}
    for index, (question, answer) in enumerate(zip(questions, answers)):
        for key in ("video_name", "question_id", "question"):
            if key not in question:
                raise ValueError(f"question #{index} in {questions_path} lacks {key!r}: {question}")
        if "answer" not in answer:
            raise ValueError(f"answer #{index} in {answers_path} lacks 'answer': {answer}")
        question_id = str(question["question_id"])
        if "question_id" in answer and str(answer["question_id"]) != question_id:
            raise ValueError(
                f"question and answer #{index} are misaligned: question_id {question_id!r} vs {answer['question_id']!r}"
            )
        if question_id in seen:
            raise ValueError(f"duplicate question_id {question_id!r} in {questions_path}")
        seen.add(question_id)
        name = str(question["video_name"])
        if name not in cache:
            cache[name] = resolve_video(video_dir, name, video_prefix, extensions)
        samples.append(
            QASample(
                question_id, name, str(question["question"]), str(answer["answer"]), answer.get("type"), cache[name]
            )
        )
    missing = sum(sample.video_path is None for sample in samples)
    if missing:
        logger.warning(
            "%d of %d questions have no video under %s (tried %s)",
            missing,
            len(samples),
            video_dir,
            ", ".join(extensions),
        )
    return samples


def benchmark_paths(benchmark: str, root: str | Path) -> dict:
    """``questions``/``answers``/``video_dir``/``video_prefix`` of a named benchmark below the ``GPT_Zero_Shot_QA`` root."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"Unknown benchmark {benchmark!r}; expected one of {sorted(BENCHMARKS)}")
    spec = BENCHMARKS[benchmark]
    folder = Path(root) / spec.folder
    return {
        "questions": folder / "test_q.json",
        "answers": folder / "test_a.json",
        "video_dir": folder / spec.video_dir,
        "video_prefix": spec.video_prefix,
    }


def load_benchmark(benchmark: str, root: str | Path, extensions=VIDEO_EXTENSIONS) -> list[QASample]:
    """All samples of MSVD-QA / MSRVTT-QA / TGIF-QA / ActivityNet-QA from the published layout."""
    paths = benchmark_paths(benchmark, root)
    return load_qa_samples(paths["questions"], paths["answers"], paths["video_dir"], paths["video_prefix"], extensions)


# --- Video-ChatGPT generative benchmark ----------------------------------------------------------------------------

VCG_FILES = {"generic": "generic_qa.json", "temporal": "temporal_qa.json", "consistency": "consistency_qa.json"}
#: which prediction file each judged dimension reads
VCG_DIMENSIONS = {
    "correctness": "generic",
    "detail": "generic",
    "context": "generic",
    "temporal": "temporal",
    "consistency": "consistency",
}


@dataclass
class VCGSample:
    """One generative-benchmark record; ``key`` is ``video_name`` made unique with ``_k`` suffixes as originally."""

    key: str
    video_name: str
    answer: str
    questions: tuple
    video_path: Path | None = None


def load_vcg_samples(
    qa_dir, video_dir, split: str, video_prefix: str = "", extensions=VIDEO_EXTENSIONS
) -> list[VCGSample]:
    """Records of ``generic``/``temporal`` (``Q``, ``A``) or ``consistency`` (``Q1``, ``Q2``, ``A``)."""
    if split not in VCG_FILES:
        raise ValueError(f"Unknown generative-benchmark split {split!r}; expected one of {sorted(VCG_FILES)}")
    records = _load_json_list(Path(qa_dir) / VCG_FILES[split], f"{split} QA")
    keys = ("Q1", "Q2") if split == "consistency" else ("Q",)
    samples, counts = [], {}
    for index, record in enumerate(records):
        for key in ("video_name", "A", *keys):
            if key not in record:
                raise ValueError(f"record #{index} of {VCG_FILES[split]} lacks {key!r}: {record}")
        name = str(record["video_name"])
        counts[name] = counts.get(name, 0) + 1
        key = name if counts[name] == 1 else f"{name}_{counts[name] - 1}"
        samples.append(
            VCGSample(
                key,
                name,
                str(record["A"]),
                tuple(str(record[k]) for k in keys),
                resolve_video(video_dir, name, video_prefix, extensions),
            )
        )
    return samples
