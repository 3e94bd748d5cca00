"""Model cards: valid Hub metadata, model-index from results, the paper's numbers attributed to the paper."""

import json

import pytest
from huggingface_hub import EvalResult, ModelCard
from huggingface_hub.repocard import metadata_load
from videopanda.model_cards.generator import (
    PAPER_TABLE_1,
    PAPER_TABLE_2,
    build_model_card,
    count_parameters,
    main,
    paper_eval_results,
    released_checkpoint_card,
    write_model_card,
)

REQUIRED = {"license", "library_name", "pipeline_tag", "base_model", "datasets", "tags", "model-index"}


def _metrics(metadata):
    """{(dataset name, metric type): value} from a parsed model-index."""
    values = {}
    for result in metadata["model-index"][0]["results"]:
        for metric in result["metrics"]:
            values[(result["dataset"]["name"], metric["type"])] = metric["value"]
    return values


def test_released_card_quotes_the_paper_tables(tmp_path):
    path = tmp_path / "README.md"
    released_checkpoint_card("videopanda_fitu", "jh-yi/Video-Panda-7B").save(path)
    metadata = metadata_load(path)
    assert REQUIRED <= set(metadata)
    assert metadata["library_name"] == "transformers"
    assert metadata["pipeline_tag"] == "video-text-to-text"
    assert metadata["base_model"] == "lmsys/vicuna-7b-v1.5"
    assert "custom_code" in metadata["tags"]
    values = _metrics(metadata)
    assert values[("MSVD-QA", "accuracy")] == 64.7 and values[("MSVD-QA", "score")] == 3.8
    assert values[("MSRVTT-QA", "accuracy")] == 54.8 and values[("MSRVTT-QA", "score")] == 3.4
    assert values[("TGIF-QA", "accuracy")] == 42.9 and values[("TGIF-QA", "score")] == 3.2
    assert values[("ActivityNet-QA", "accuracy")] == 40.0 and values[("ActivityNet-QA", "score")] == 3.3
    vcg = "Video-ChatGPT benchmark (VCGBench)"
    assert values[(vcg, "correctness")] == 2.74 and values[(vcg, "temporal")] == 2.26
    assert values[(vcg, "average")] == 2.57
    assert len(values) == 2 * len(PAPER_TABLE_1) + len(PAPER_TABLE_2)
    for result in metadata["model-index"][0]["results"]:
        assert "as reported by the authors" in result["source"]["name"]
    text = path.read_text()
    assert "quoted from the paper as reported by the authors" in text
    assert "not re-measured" in text

    card = ModelCard.load(path)  # local path: parsed without network
    assert card.data.model_name == "Video-Panda-7B"
    assert all(isinstance(result, EvalResult) for result in card.data.eval_results)


def test_stage_one_card_has_no_results():
    card = released_checkpoint_card("videopanda_prtr1")
    assert not card.data.eval_results
    assert "No evaluation results" in card.text
    with pytest.raises(ValueError, match="Unknown released variant"):
        released_checkpoint_card("videopanda_final")


def test_measured_results_become_model_index(tmp_path):
    results = [
        {
            "dataset_type": "videopanda-synthetic",
            "dataset_name": "Synthetic VideoQA",
            "dataset_split": "test",
            "metric_type": "accuracy",
            "metric_value": 0.97,
            "metric_name": "colour accuracy",
        },
        EvalResult(
            task_type="video-text-to-text",
            dataset_type="videopanda-synthetic",
            dataset_name="Synthetic VideoQA",
            dataset_split="test",
            metric_type="direction_accuracy",
            metric_value=0.85,
        ),
    ]
    card = build_model_card(
        "me/videopanda-tiny",
        base_model=None,
        license="apache-2.0",
        eval_results=results,
        datasets=["synthetic"],
        tags=["tiny"],
    )
    card.save(tmp_path / "README.md")
    metadata = metadata_load(tmp_path / "README.md")
    assert "base_model" not in metadata
    assert metadata["tags"][-1] == "tiny" and "custom_code" in metadata["tags"]
    values = _metrics(metadata)
    assert values == {("Synthetic VideoQA", "accuracy"): 0.97, ("Synthetic VideoQA", "direction_accuracy"): 0.85}
    assert "Measured with this implementation" in card.text
    assert 'repo = "me/videopanda-tiny"' in card.text


def test_bad_results_are_rejected():
    with pytest.raises(ValueError, match="lacks metric_value"):
        build_model_card("me/x", eval_results=[{"dataset_type": "a", "dataset_name": "a", "metric_type": "acc"}])
    with pytest.raises(ValueError, match="repo_id is required"):
        build_model_card("")


def test_write_card_reads_folder_facts_and_cli(tmp_path):
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "ckpt"
    folder.mkdir()
    save_file({"a": torch.zeros(3, 4), "b": torch.zeros(5)}, folder / "model.safetensors")
    config = {
        "vision_hidden_size": 32,
        "vision_num_heads": 4,
        "num_frames": 8,
        "image_size": 112,
        "text_config": {"model_type": "llama", "num_hidden_layers": 2, "hidden_size": 64},
    }
    (folder / "config.json").write_text(json.dumps(config))
    assert count_parameters(folder) == 17
    write_model_card(folder, "me/tiny", base_model=None)
    text = (folder / "README.md").read_text()
    assert "| Parameters | 17 |" in text
    assert "width 32, 4 heads" in text and "llama, 2 layers, hidden 64" in text and "112 px" in text

    results = tmp_path / "results.json"
    results.write_text(
        json.dumps([{"dataset_type": "s", "dataset_name": "S", "metric_type": "accuracy", "metric_value": 0.5}])
    )
    assert main([str(folder), "--repo-id", "me/tiny", "--results", str(results), "--license", "mit"]) == 0
    metadata = metadata_load(folder / "README.md")
    assert metadata["license"] == "mit" and _metrics(metadata) == {("S", "accuracy"): 0.5}
    assert main([str(folder), "--released", "videopanda_fitu"]) == 0
    assert _metrics(metadata_load(folder / "README.md"))[("MSVD-QA", "accuracy")] == 64.7


def test_paper_results_cover_both_tables():
    results = paper_eval_results()
    sources = {result.source_name.rsplit(", ", 1)[-1] for result in results}
    assert sources == {"Table 1", "Table 2"}
