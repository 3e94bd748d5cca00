"""Judging against a scripted OpenAI-compatible server on 127.0.0.1: arithmetic, cache, retries, concurrency."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from videopanda.eval.judge_base import JudgeTask, Judgment
from videopanda.eval.judge_match import MatchJudge
from videopanda.eval.judge_openai import OpenAIJudge
from videopanda.eval.metrics import breakdown, qa_metrics, score_metrics
from videopanda.eval.parsing import strict_parse, tolerant_parse
from videopanda.eval.prompts import PROMPTS, render_messages

FIXTURES = Path(__file__).parent / "fixtures"


class ScriptedJudgeServer:
    """A chat-completions endpoint whose reply is scripted per sample (keyed by the predicted answer in the prompt).

    A script is a list of behaviours, one per attempt (the last repeats): ``"429"``, ``"500"``, ``"timeout"`` (sleep
    past the client timeout) or ``"ok:<content>"``. The server records every request body and the peak number of
    requests in flight.
    """

    def __init__(
        self, scripts: dict, delay: float = 0.0, timeout_sleep: float = 1.5, default=("ok:{'pred': 'no', 'score': 0}",)
    ):
        self.scripts = scripts
        self.default = list(default)
        self.delay = delay
        self.timeout_sleep = timeout_sleep
        self.attempts: dict = {}
        self.bodies: list = []
        self.in_flight = 0
        self.peak_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                user = body["messages"][-1]["content"]
                key = next((name for name in server.scripts if f"Predicted Answer: {name}\n" in user), None)
                with server.lock:
                    server.bodies.append(body)
                    attempt = server.attempts.get(key, 0)
                    server.attempts[key] = attempt + 1
                    server.in_flight += 1
                    server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay)
                    script = server.scripts.get(key, server.default)
                    behaviour = script[min(attempt, len(script) - 1)]
                    if behaviour == "timeout":
                        time.sleep(server.timeout_sleep)
                        behaviour = "ok:{'pred': 'no', 'score': 0}"
                    if behaviour in ("429", "500"):
                        self._send(
                            int(behaviour), {"error": {"message": "scripted", "type": "scripted"}}, {"retry-after": "0"}
                        )
                        return
                    content = behaviour[len("ok:") :]
                    self._send(
                        200,
                        {
                            "id": "chatcmpl-test",
                            "object": "chat.completion",
                            "created": 0,
                            "model": body["model"] + "-served",
                            "choices": [
                                {
                                    "index": 0,
                                    "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content},
                                }
                            ],
                            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                        },
                    )
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _send(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def requests(self) -> int:
        return len(self.bodies)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


# pred marker -> (script, fixed expectation (pred, score) or "unparseable"/"failed", compat expectation)
SCRIPTS = {
    "P01": ["ok:{'pred': 'yes', 'score': 4.8}"],
    "P02": ["ok:{'pred': 'no', 'score': 1}"],
    "P03": ["ok:{''score': 4.8}"],
    "P04": ["ok:```python\n{'pred': 'yes', 'score': 5}\n```"],
    "P05": ["ok:{'pred': 'unknown', 'score': 2}"],
    "P06": ["ok:{'pred': 'yes', 'score': '4.5'}"],
    "P07": ["429", "ok:{'pred': 'yes', 'score': 3}"],
    "P08": ["timeout", "ok:{'pred': 'no', 'score': 0}"],
    "P09": ["429"],
    "P10": ["ok:The prediction matches. pred: yes, score: 4"],
    "P11": ["500", "500", "ok:{'pred': 'Yes', 'score': 2}"],
}


def qa_tasks(markers=SCRIPTS):
    return [
        JudgeTask(
            uid=f"q{index}",
            protocol="qa",
            meta={"type": index % 2},
            fields={"question": f"what is shown {{{index}}} ?", "answer": "a cat", "pred": marker},
        )
        for index, marker in enumerate(markers)
    ]


def make_judge(server, tmp_path, **kwargs):
    options = {
        "model": "judge-test",
        "base_url": server.url,
        "api_key": "sk-test",
        "concurrency": 4,
        "max_retries": 3,
        "backoff": 0.01,
        "max_backoff": 0.05,
        "timeout": 0.5,
        "cache": str(tmp_path / "cache.jsonl"),
        "progress": False,
    }
    options.update(kwargs)
    return OpenAIJudge(**options)


def test_prompts_are_the_published_strings_verbatim():
    reference = json.loads((FIXTURES / "eval_prompts_reference.json").read_text())
    for protocol, (system, user) in PROMPTS.items():
        assert system == reference[f"{protocol}_system"]
        assert user == reference[f"{protocol}_user"]
    assert "{''score': 4.8}" in PROMPTS["correctness"][1]
    assert "is  a string" in PROMPTS["qa"][1] and "STRING.DO NOT" in PROMPTS["qa"][1]


def test_render_is_literal_and_checks_fields():
    messages = render_messages("qa", {"question": "is {pred} here?", "answer": "{'a': 1}", "pred": "{answer}"})
    assert messages[0]["role"] == "system" and messages[1]["role"] == "user"
    assert (
        "Question: is {pred} here?\nCorrect Answer: {'a': 1}\nPredicted Answer: {answer}\n\n" in messages[1]["content"]
    )
    with pytest.raises(ValueError, match="needs the fields"):
        render_messages("consistency", {"question": "q", "answer": "a", "pred": "p"})
    with pytest.raises(ValueError, match="Unknown judge protocol"):
        JudgeTask("x", "fluency", {})


@pytest.mark.parametrize(
    "text, pred, score",
    [
        ("{'pred': 'yes', 'score': 4.8}", "yes", 4.8),
        ("{''score': 4.8}", None, 4.8),
        ('```json\n{"pred": "no", "score": 2}\n```', "no", 2.0),
        ("Sure: {'pred': 'Yes.', 'score': '3'} done", "yes", 3.0),
        ("{'pred': 'not sure', 'score': 9}", None, None),
        ("", None, None),
    ],
)
def test_tolerant_parser(text, pred, score):
    parsed = tolerant_parse(text)
    assert (parsed.pred, parsed.score) == (pred, score)
    assert (parsed.error is None) == (pred is not None and score is not None)


def test_gpt_judge_arithmetic_fixed_and_compat(tmp_path):
    with ScriptedJudgeServer(SCRIPTS, timeout_sleep=1.0) as server:
        judge = make_judge(server, tmp_path)
        judgments = judge.judge(qa_tasks())
    by_uid = {judgment.uid: judgment for judgment in judgments}
    assert [judgment.uid for judgment in judgments] == [f"q{i}" for i in range(len(SCRIPTS))]
    assert by_uid["q0"].raw == "{'pred': 'yes', 'score': 4.8}" and by_uid["q0"].score == 4.8
    assert by_uid["q0"].served_model == "judge-test-served"
    assert by_uid["q8"].request_failed and "RateLimitError" in by_uid["q8"].error
    assert by_uid["q6"].pred == "yes" and by_uid["q7"].pred == "no"  # recovered after a 429 and a timeout
    assert by_uid["q10"].pred == "yes" and by_uid["q10"].score == 2.0  # two 500s, then an answer
    # every sample sent temperature 0 and the seed; the 429-forever sample used all its retries
    assert all(body["temperature"] == 0 and body["seed"] == 0 for body in server.bodies)
    assert server.attempts["P09"] == 4 and server.attempts["P07"] == 2 and server.attempts["P08"] == 2

    fixed = qa_metrics(judgments)
    # counted: P01 yes 4.8, P02 no 1, P04 yes 5, P06 yes 4.5, P07 yes 3, P08 no 0, P10 yes 4, P11 yes 2
    assert (fixed["yes"], fixed["no"], fixed["unparseable"], fixed["failed"], fixed["total"]) == (6, 2, 2, 1, 11)
    assert fixed["accuracy"] == pytest.approx(6 / 8)
    assert fixed["average_score"] == pytest.approx((4.8 + 1 + 5 + 4.5 + 3 + 0 + 4 + 2) / 8)

    compat = qa_metrics(judgments, compat=True)
    # merged by literal_eval: P01 (int 4, yes), P02 (1, no), P05 (2, "unknown" -> no), P06 (int('4.5') fails:
    # counted, nothing else), P07 (3, yes), P08 (0, no), P11 (2, 'Yes' -> yes); dropped: P03, P04, P10
    assert (compat["counted"], compat["yes"], compat["no"], compat["unparseable"], compat["failed"]) == (7, 3, 3, 3, 1)
    assert compat["accuracy"] == pytest.approx(3 / 6)
    assert compat["average_score"] == pytest.approx((4 + 1 + 2 + 0 + 3 + 0 + 2) / 7)

    per_type = breakdown(judgments, key=lambda judgment: judgment.meta["type"])
    assert set(per_type) == {"0", "1"}
    assert per_type["0"]["counted"] + per_type["1"]["counted"] == fixed["counted"]


def test_cache_prevents_repeat_calls(tmp_path):
    scripts = {name: SCRIPTS[name] for name in ("P01", "P02", "P09")}
    with ScriptedJudgeServer(scripts) as server:
        first = make_judge(server, tmp_path).judge(qa_tasks(scripts))
        sent = server.requests
        assert sent == 1 + 1 + 4
        again = make_judge(server, tmp_path).judge(qa_tasks(scripts))  # fresh judge, same cache file
        # only the failed sample (never cached) is asked again
        assert server.requests == sent + 4
        assert [j.raw for j in again[:2]] == [j.raw for j in first[:2]]
        assert again[0].served_model == "judge-test-served"
        other_model = make_judge(server, tmp_path, model="other-judge").judge(qa_tasks(scripts)[:1])
        assert server.requests == sent + 4 + 1 and other_model[0].judge_id == "other-judge"
    lines = (tmp_path / "cache.jsonl").read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["response"] for line in lines)


def test_concurrency_bound_respected(tmp_path):
    scripts = {f"C{index:02d}": ["ok:{'pred': 'yes', 'score': 5}"] for index in range(12)}
    with ScriptedJudgeServer(scripts, delay=0.15) as server:
        judgments = make_judge(server, tmp_path, concurrency=3).judge(qa_tasks(scripts))
    assert server.requests == 12
    assert 1 < server.peak_in_flight <= 3
    assert qa_metrics(judgments)["accuracy"] == 1.0


def test_score_only_protocol_and_compat(tmp_path):
    scripts = {"S1": ["ok:{''score': 4.8}"], "S2": ["ok:{'score': 3}"], "S3": ["ok:{'score': 'high'}"]}
    tasks = [
        JudgeTask(f"s{i}", "temporal", {"question": "q", "answer": "a", "pred": name}) for i, name in enumerate(scripts)
    ]
    with ScriptedJudgeServer(scripts) as server:
        judgments = make_judge(server, tmp_path).judge(tasks)
    fixed = score_metrics(judgments)
    assert (fixed["average_score"], fixed["counted"], fixed["unparseable"]) == (pytest.approx(3.9), 2, 1)
    compat = score_metrics(judgments, compat=True)
    assert (compat["average_score"], compat["counted"], compat["unparseable"]) == (pytest.approx(1.5), 2, 1)


def test_missing_key_is_a_clear_error(monkeypatch):
    for name in ("OPENAI_API_KEY", "VIDEOPANDA_JUDGE_API_KEY", "OPENAI_BASE_URL", "VIDEOPANDA_JUDGE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="No judge API key"):
        OpenAIJudge(model="gpt-3.5-turbo")


def test_match_judge():
    tasks = [
        JudgeTask(str(i), "qa", {"question": "q", "answer": answer, "pred": pred})
        for i, (answer, pred) in enumerate([("cat", "A cat."), ("cat", "a black cat"), ("dog", "cat")])
    ]
    exact = MatchJudge("exact").judge(tasks)
    contains = MatchJudge("contains").judge(tasks)
    assert [j.pred for j in exact] == ["yes", "no", "no"]
    assert [j.pred for j in contains] == ["yes", "yes", "no"]
    metrics = qa_metrics(contains, compat=True)  # compat has no meaning without an LLM: fixed arithmetic
    assert metrics["accuracy"] == pytest.approx(2 / 3) and metrics["average_score"] is None
    with pytest.raises(ValueError, match="only supports"):
        MatchJudge().judge([JudgeTask("t", "temporal", {"question": "q", "answer": "a", "pred": "p"})])


def test_judgment_roundtrip():
    judgment = Judgment("u", "qa", "j", "{'pred': 'yes', 'score': 1}", "yes", 1.0, meta={"type": 3})
    assert Judgment.from_dict(json.loads(json.dumps(judgment.to_dict()))) == judgment
    assert strict_parse(judgment.raw) == {"pred": "yes", "score": 1}
