"""From benchmark samples to generation requests, and from predictions to judge tasks.

This is where the protocol details live that are neither reading files nor arithmetic: the prediction record format
(``{"id", "question", "answer", "pred"}`` JSONL as in Video-LLaVA / Video-Panda, plus ``video_name`` and ``type``),
the generative benchmark's three prediction files, and the consistency prompt bug (``--compat`` sends Q1 twice, as
Video-LLaVA and Video-Panda did; the fixed mode sends Q1 and Q2, as Video-ChatGPT does since its issue #94).
"""

from collections.abc import Iterable, Sequence

from .datasets import VCG_DIMENSIONS, QASample, VCGSample
from .judge_base import JudgeTask
from .predict import GenerationRequest


def qa_requests(samples: Sequence[QASample]) -> list[GenerationRequest]:
    """One request per question, keyed by ``question_id``."""
    return [
        GenerationRequest(
            sample.question_id,
            sample.video_path,
            sample.question,
            {
                "question": sample.question,
                "answer": sample.answer,
                "video_name": sample.video_name,
                "type": sample.type,
            },
        )
        for sample in samples
    ]


def qa_judge_tasks(predictions: Iterable[dict]) -> list[JudgeTask]:
    """QA judge tasks from prediction records (``id``, ``question``, ``answer``, ``pred``)."""
    tasks = []
    for number, record in enumerate(predictions, 1):
        missing = [key for key in ("id", "question", "answer", "pred") if key not in record]
        if missing:
            raise ValueError(f"prediction #{number} lacks {missing}: {record}")
        tasks.append(
            JudgeTask(
                str(record["id"]),
                "qa",
                {"question": record["question"], "answer": record["answer"], "pred": record["pred"]},
                {"type": record.get("type"), "video_name": record.get("video_name")},
            )
        )
    return tasks


def vcg_requests(split: str, samples: Sequence[VCGSample]) -> list[GenerationRequest]:
    """Requests for one generative-benchmark split; consistency records need two answers (``/1`` and ``/2``)."""
    requests = []
    for sample in samples:
        for index, question in enumerate(sample.questions, 1):
            suffix = f"/{index}" if split == "consistency" else ""
            requests.append(
                GenerationRequest(
                    f"{split}/{sample.key}{suffix}", sample.video_path, question, {"video_name": sample.video_name}
                )
            )
    return requests


def vcg_records(split: str, samples: Sequence[VCGSample], predictions: Iterable[dict]) -> list[dict]:
    """Prediction records in the original format (``video_name, Q, A, pred`` or ``Q1, Q2, pred1, pred2``);
    samples without all their answers are left out."""
    answers = {record["id"]: record["pred"] for record in predictions}
    records = []
    for sample in samples:
        if split == "consistency":
            pred1, pred2 = answers.get(f"{split}/{sample.key}/1"), answers.get(f"{split}/{sample.key}/2")
            if pred1 is None or pred2 is None:
                continue
            records.append(
                {
                    "id": sample.key,
                    "video_name": sample.video_name,
                    "Q1": sample.questions[0],
                    "Q2": sample.questions[1],
                    "A": sample.answer,
                    "pred1": pred1,
                    "pred2": pred2,
                }
            )
        elif (pred := answers.get(f"{split}/{sample.key}")) is not None:
            records.append(
                {
                    "id": sample.key,
                    "video_name": sample.video_name,
                    "Q": sample.questions[0],
                    "A": sample.answer,
                    "pred": pred,
                }
            )
    return records


def vcg_judge_tasks(dimension: str, records: Iterable[dict], compat: bool = False) -> list[JudgeTask]:
    """Judge tasks of one dimension from its split's records; ``compat`` reproduces the Q1-twice bug."""
    if dimension not in VCG_DIMENSIONS:
        raise ValueError(f"Unknown dimension {dimension!r}; expected one of {sorted(VCG_DIMENSIONS)}")
    tasks = []
    for record in records:
        if dimension == "consistency":
            fields = {
                "question1": record["Q1"],
                "question2": record["Q1"] if compat else record["Q2"],
                "answer": record["A"],
                "pred1": record["pred1"],
                "pred2": record["pred2"],
            }
        else:
            fields = {"question": record["Q"], "answer": record["A"], "pred": record["pred"]}
        tasks.append(JudgeTask(f"{dimension}/{record['id']}", dimension, fields, {"video_name": record["video_name"]}))
    return tasks
