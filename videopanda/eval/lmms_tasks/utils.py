"""Task functions for the Video-Panda lmms-eval tasks (``msvd_qa``, ``msrvtt_qa``, ``tgif_qa``).

Data: the published ``GPT_Zero_Shot_QA`` layout, found through ``VIDEOPANDA_QA_ROOT`` (or ``dataset_kwargs.data_root``);
questions whose video is missing are left out with a warning. Prompt: the question as the original Video-Panda
inference asked it. Metrics: the normalised-match accuracy (no LLM), and the GPT-assisted accuracy/score through any
OpenAI-compatible judge configured with ``VIDEOPANDA_JUDGE_MODEL`` / ``VIDEOPANDA_JUDGE_BASE_URL`` /
``VIDEOPANDA_JUDGE_API_KEY`` (or ``OPENAI_*``); ``VIDEOPANDA_JUDGE_COMPAT=1`` selects the published arithmetic and
``VIDEOPANDA_JUDGE_CACHE`` the reply cache. Without a judge the GPT metrics are NaN (and a warning says why).
"""

import logging
import math
import os
from pathlib import Path

from datasets import Dataset, DatasetDict
from lmms_eval.api.task import ConfigurableTask

from videopanda.eval.datasets import load_benchmark
from videopanda.eval.judge_base import JudgeTask
from videopanda.eval.judge_match import MatchJudge
from videopanda.eval.metrics import qa_metrics

logger = logging.getLogger(__name__)
_JUDGED: dict = {}


class VideoPandaQATask(ConfigurableTask):
    """Reads test_q.json / test_a.json and the videos from disk instead of downloading a Hub dataset."""

    def __init__(self, *args, config=None, **kwargs):
        config = {key: value for key, value in (config or {}).items() if key != "class"}
        super().__init__(*args, config=config, **kwargs)

    def download(self, dataset_kwargs=None) -> None:
        kwargs = dict(dataset_kwargs or {})
        benchmark = kwargs.get("benchmark")
        root = os.environ.get("VIDEOPANDA_QA_ROOT") or kwargs.get("data_root")
        if not root:
            raise ValueError(f"Set VIDEOPANDA_QA_ROOT to the GPT_Zero_Shot_QA folder to run the {benchmark} task")
        samples = load_benchmark(benchmark, root)
        rows = [
            {
                "question_id": s.question_id,
                "video_name": s.video_name,
                "question": s.question,
                "answer": s.answer,
                "type": "" if s.type is None else str(s.type),
                "video_path": str(s.video_path),
            }
            for s in samples
            if s.video_path is not None
        ]
        if len(rows) < len(samples):
            logger.warning("%s: %d question(s) left out for missing videos", benchmark, len(samples) - len(rows))
        split = self.config.test_split
        self.dataset = DatasetDict({split: Dataset.from_list(rows)})
        self.dataset_no_image = self.dataset


def doc_to_visual(doc):
    return [doc["video_path"]]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{doc['question']}{kwargs.get('post_prompt', '')}"


def doc_to_target(doc):
    return doc["answer"]


def process_results(doc, results):
    record = {
        "question_id": doc["question_id"],
        "question": doc["question"],
        "answer": doc["answer"],
        "pred": results[0],
        "type": doc["type"],
    }
    return {"match_accuracy": record, "gpt_eval_accuracy": record, "gpt_eval_score": record}


def _tasks(results):
    return [
        JudgeTask(
            r["question_id"],
            "qa",
            {"question": r["question"], "answer": r["answer"], "pred": r["pred"]},
            {"type": r["type"]},
        )
        for r in results
    ]


def aggregate_match_accuracy(results):
    return 100 * qa_metrics(MatchJudge("contains").judge(_tasks(results)))["accuracy"]


def _judge_configured() -> bool:
    return any(
        os.environ.get(name)
        for name in ("VIDEOPANDA_JUDGE_BASE_URL", "VIDEOPANDA_JUDGE_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL")
    )


def _gpt_metrics(results):
    if not _judge_configured():
        logger.warning(
            "No judge configured (VIDEOPANDA_JUDGE_BASE_URL / VIDEOPANDA_JUDGE_API_KEY): GPT metrics are NaN"
        )
        return None
    from videopanda.eval.judge_openai import OpenAIJudge

    tasks = _tasks(results)
    key = tuple((task.uid, task.fields["pred"]) for task in tasks)
    if key not in _JUDGED:
        cache = os.environ.get("VIDEOPANDA_JUDGE_CACHE") or str(Path.home() / ".cache" / "videopanda" / "judge.jsonl")
        judge = OpenAIJudge(cache=cache)
        metrics = qa_metrics(judge.judge(tasks), compat=os.environ.get("VIDEOPANDA_JUDGE_COMPAT") == "1")
        logger.info("judge %s: %s", judge.judge_id, metrics)
        _JUDGED[key] = metrics
    return _JUDGED[key]


def aggregate_gpt_accuracy(results):
    metrics = _gpt_metrics(results)
    return math.nan if metrics is None or metrics["accuracy"] is None else 100 * metrics["accuracy"]


def aggregate_gpt_score(results):
    metrics = _gpt_metrics(results)
    return math.nan if metrics is None or metrics["average_score"] is None else metrics["average_score"]
