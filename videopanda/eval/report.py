"""Results tables (Markdown + JSON) with the judge id next to every number and the paper's numbers alongside.

Our numbers carry the judge that produced them (requested and served model ids), the arithmetic mode, and the
counts behind them (counted, unparseable, failed), so a reader can tell a GPT-3.5 number from a local-judge number
and a ``--compat`` number from a fixed one. Per-question-type breakdowns are added where the data has types.
"""

import json
from pathlib import Path

from .datasets import BENCHMARKS, VCG_DIMENSIONS
from .metrics import breakdown, qa_metrics, score_metrics
from .paper_numbers import PAPER, PAPER_JUDGE, TABLE2, table1_rows

QUESTION_WORDS = ("what", "who", "how", "when", "where", "which", "why")


def question_word(question: str) -> str:
    """The MSVD/MSRVTT question type (what/who/how/when/where) from the question's first words."""
    for word in str(question).lower().split()[:3]:
        if word in QUESTION_WORDS:
            return word
    return "other"


def _served(judgments) -> list[str]:
    return sorted({judgment.served_model for judgment in judgments if judgment.served_model})


def _percent(value):
    return None if value is None else round(100 * value, 2)


def qa_report(
    benchmark: str,
    judgments_by_judge: dict,
    model: str = "",
    compat: bool = False,
    questions: dict | None = None,
    missing_predictions: int = 0,
) -> dict:
    """Report for one zero-shot QA run: one result row per judge, breakdowns, and the paper's rows.

    ``questions`` maps ``uid -> question text`` to add the what/who/how breakdown; judgments' ``meta["type"]``
    gives the dataset's own type breakdown (named for ActivityNet-QA).
    """
    spec = BENCHMARKS.get(benchmark)
    results, breakdowns = [], {}
    for judge_id, judgments in judgments_by_judge.items():
        metrics = qa_metrics(judgments, compat=compat)
        results.append(
            {
                "judge": judge_id,
                "served_models": _served(judgments),
                **metrics,
                "accuracy_percent": _percent(metrics["accuracy"]),
            }
        )
        groups = {}
        if any(judgment.meta.get("type") is not None for judgment in judgments):
            names = spec.type_names if spec else {}
            groups["type"] = breakdown(
                judgments, lambda j, names=names: names.get(j.meta.get("type"), j.meta.get("type")), compat
            )
        if questions:
            groups["question_word"] = breakdown(judgments, lambda j: question_word(questions.get(j.uid, "")), compat)
        for grouping in groups.values():
            for row in grouping.values():
                row["accuracy_percent"] = _percent(row["accuracy"])
        breakdowns[judge_id] = groups
    return {
        "kind": "qa",
        "benchmark": benchmark,
        "title": spec.title if spec else benchmark,
        "model": model,
        "mode": "compat" if compat else "fixed",
        "missing_predictions": missing_predictions,
        "results": results,
        "breakdown": breakdowns,
        "paper": {"source": PAPER, "judge": PAPER_JUDGE, "rows": table1_rows(benchmark) if spec else []},
    }


def vcg_report(judgments_by_dimension: dict, judge_id: str, model: str = "", compat: bool = False) -> dict:
    """Report for the Video-ChatGPT generative benchmark: one score per dimension and their mean."""
    dimensions = {}
    served = set()
    for dimension in VCG_DIMENSIONS:
        if dimension in judgments_by_dimension:
            judgments = judgments_by_dimension[dimension]
            dimensions[dimension] = score_metrics(judgments, compat=compat)
            served.update(_served(judgments))
    scores = [row["average_score"] for row in dimensions.values() if row["average_score"] is not None]
    average = sum(scores) / len(scores) if len(scores) == len(VCG_DIMENSIONS) else None
    return {
        "kind": "vcgbench",
        "benchmark": "vcgbench",
        "title": "Video-ChatGPT generative benchmark",
        "model": model,
        "mode": "compat" if compat else "fixed",
        "judge": judge_id,
        "served_models": sorted(served),
        "dimensions": dimensions,
        "average": average,
        "paper": {"source": PAPER, "judge": PAPER_JUDGE, "rows": [{"model": m, **v} for m, v in TABLE2.items()]},
    }


def _fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def render_markdown(report: dict) -> str:
    """A readable results table; every number of ours names its judge."""
    lines = [
        f"# {report['title']}: {report.get('model') or 'model'}",
        "",
        f"Arithmetic: **{report['mode']}** "
        + (
            "(published scripts reproduced: int() scores, unparseable replies dropped, substring yes/no)"
            if report["mode"] == "compat"
            else "(float scores, unparseable replies counted apart)"
        ),
        "",
    ]
    if report["kind"] == "qa":
        lines += [
            "| Source | Judge | Accuracy (%) | Score (0-5) | Counted | Unparseable | Failed |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in report["results"]:
            judge = row["judge"] + (f" (served: {', '.join(row['served_models'])})" if row["served_models"] else "")
            lines.append(
                f"| ours | {judge} | {_fmt(row['accuracy_percent'], 1)} | {_fmt(row['average_score'])} | "
                f"{row['counted']} | {row['unparseable']} | {row['failed']} |"
            )
        for row in report["paper"]["rows"]:
            lines.append(
                f"| paper: {row['model']} | {report['paper']['judge']} | {_fmt(row['accuracy'], 1)} | "
                f"{_fmt(row['score'], 1)} | | | |"
            )
        if report.get("missing_predictions"):
            lines += [
                "",
                (
                    f"{report['missing_predictions']} question(s) have no prediction (missing or unreadable "
                    "video) and are not judged."
                ),
            ]
        for judge_id, groups in report["breakdown"].items():
            for grouping, rows in groups.items():
                lines += [
                    "",
                    f"## By {grouping.replace('_', ' ')} ({judge_id})",
                    "",
                    "| Group | Accuracy (%) | Score (0-5) | Counted | Unparseable |",
                    "| --- | ---: | ---: | ---: | ---: |",
                ]
                lines += [
                    f"| {name} | {_fmt(row['accuracy_percent'], 1)} | {_fmt(row['average_score'])} | "
                    f"{row['counted']} | {row['unparseable']} |"
                    for name, row in rows.items()
                ]
    else:
        dims = list(VCG_DIMENSIONS)
        judge = report["judge"] + (
            f" (served: {', '.join(report['served_models'])})" if report["served_models"] else ""
        )
        lines += [
            "| Source | Judge | " + " | ".join(d.capitalize() for d in dims) + " | Average |",
            "| --- | --- | " + " | ".join("---:" for _ in dims) + " | ---: |",
        ]
        ours = [_fmt(report["dimensions"].get(d, {}).get("average_score")) for d in dims]
        lines.append(f"| ours | {judge} | " + " | ".join(ours) + f" | {_fmt(report['average'])} |")
        for row in report["paper"]["rows"]:
            lines.append(
                f"| paper: {row['model']} | {report['paper']['judge']} | "
                + " | ".join(_fmt(row[d]) for d in dims)
                + f" | {_fmt(row['average'])} |"
            )
        lines += ["", "| Dimension | Counted | Unparseable | Failed |", "| --- | ---: | ---: | ---: |"]
        lines += [
            f"| {d} | {row['counted']} | {row['unparseable']} | {row['failed']} |"
            for d, row in report["dimensions"].items()
        ]
    lines += [
        "",
        (
            f"Paper numbers: {report['paper']['source']}, judged by {report['paper']['judge']} with the "
            "published arithmetic (our `--compat` mode)."
        ),
    ]
    return "\n".join(lines) + "\n"


def write_report(report: dict, output_dir: str | Path, stem: str | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.md`` and ``<stem>.json``; returns both paths."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = stem or f"{report['benchmark']}_{report['mode']}"
    markdown, data = output_dir / f"{stem}.md", output_dir / f"{stem}.json"
    markdown.write_text(render_markdown(report), encoding="utf-8")
    data.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    return markdown, data
