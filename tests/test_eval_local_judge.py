"""The local judge: a transformers chat model through a pipeline, the same published prompts, end to end.

Two tiny real Llama chat models: one with random weights (replies are gibberish: counted as unparseable, never
crash), and one whose weights are set so that greedy decoding writes ``{'pred': 'yes', 'score': 4}``, which checks
that the local path parses and scores like the API path.
"""

import itertools

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, pipeline

from videopanda.eval.judge_base import JudgeTask
from videopanda.eval.judge_local import LocalJudge
from videopanda.eval.metrics import qa_metrics, score_metrics

CHAIN = ["assistant:", "{'pred':", "'yes',", "'score':", "4}", "</s>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] + ': ' + message['content'] + ' ' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}"
)


def chat_tokenizer():
    words = ["<unk>", "<s>", "</s>", "<pad>", "system:", "user:", *CHAIN[:-1]]
    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def chat_model(tokenizer, scripted: bool):
    torch.manual_seed(0)
    vocab = len(tokenizer)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    if scripted:  # the residual stream carries the current token's embedding; lm_head maps it to its successor
        with torch.no_grad():
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            embed = torch.nn.functional.normalize(torch.randn(vocab, 32), dim=-1)
            model.model.embed_tokens.weight.copy_(embed)
            model.model.norm.weight.fill_(1.0)
            head = torch.zeros(vocab, 32)
            for current, following in itertools.pairwise(CHAIN):
                head[tokenizer.convert_tokens_to_ids(following)] += 10 * embed[tokenizer.convert_tokens_to_ids(current)]
            model.lm_head.weight.copy_(head)
    return model


def tasks():
    qa = [
        JudgeTask(f"q{i}", "qa", {"question": f"what {i} ?", "answer": "a cat", "pred": p}, {"type": i})
        for i, p in enumerate(["a cat", "a dog", "cats"])
    ]
    generative = [
        JudgeTask(
            "c0", "consistency", {"question1": "q1", "question2": "q2", "answer": "a", "pred1": "p1", "pred2": "p2"}
        )
    ]
    return qa, generative


@pytest.mark.parametrize("scripted", [True, False])
def test_local_judge_end_to_end(scripted):
    tokenizer = chat_tokenizer()
    pipe = pipeline("text-generation", model=chat_model(tokenizer, scripted), tokenizer=tokenizer)
    judge = LocalJudge(pipe, max_new_tokens=8, batch_size=2, progress=False)
    assert judge.judge_id.startswith("local:")
    qa, generative = tasks()
    judgments = judge.judge(qa)
    consistency = judge.judge(generative)
    assert [j.uid for j in judgments] == ["q0", "q1", "q2"] and all(isinstance(j.raw, str) for j in judgments)
    metrics = qa_metrics(judgments)
    if scripted:
        assert [j.raw for j in judgments] == ["{'pred': 'yes', 'score': 4}"] * 3
        assert (metrics["accuracy"], metrics["average_score"], metrics["unparseable"]) == (1.0, 4.0, 0)
        assert qa_metrics(judgments, compat=True)["average_score"] == 4.0
        assert score_metrics(consistency)["average_score"] == 4.0
    else:
        assert metrics["total"] == 3 and metrics["counted"] + metrics["unparseable"] == 3
        assert score_metrics(consistency)["total"] == 1


def test_local_judge_needs_a_chat_template():
    tokenizer = chat_tokenizer()
    tokenizer.chat_template = None
    pipe = pipeline("text-generation", model=chat_model(tokenizer, False), tokenizer=tokenizer)
    with pytest.raises(ValueError, match="chat template"):
        LocalJudge(pipe)


def test_judge_command_with_a_local_model(tmp_path):
    import json

    from videopanda.eval.cli import main

    tokenizer = chat_tokenizer()
    model_dir = tmp_path / "judge"
    chat_model(tokenizer, scripted=True).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "question": "what is it ?", "answer": "a cat", "pred": pred, "type": i}) + "\n"
            for i, pred in enumerate(["a cat", "dog"])
        )
    )
    assert main(["judge", "--predictions", str(predictions), "--judge", "local", "--judge-model", str(model_dir)]) == 0
    report = json.loads((tmp_path / "qa_fixed.json").read_text())
    local, contains, exact = report["results"]
    assert local["judge"] == f"local:{model_dir}" and (local["accuracy"], local["average_score"]) == (1.0, 4.0)
    assert (contains["judge"], contains["accuracy"]) == ("contains-match", 0.5)
    assert (exact["judge"], exact["accuracy"]) == ("exact-match", 0.5)
    raws = [json.loads(line)["raw"] for line in (tmp_path / "judgments.jsonl").read_text().splitlines()]
    assert raws[:2] == ["{'pred': 'yes', 'score': 4}"] * 2
