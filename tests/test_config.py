import pytest

from videopanda import VideoPandaConfig


def test_defaults_follow_the_paper():
    config = VideoPandaConfig()
    assert config.vision_hidden_size == 1024 and config.patch_size == 14 and config.downsample_window == 2
    assert config.vision_num_heads == 8 and config.lste_reduction == 1.5 and config.temporal_chunk_size == 4
    assert config.gstra_mlp_ratio == 4 and config.projector_type == "mlp2x_gelu"
    assert config.num_frames == 8 and config.image_size == 448 and config.grid_size == 16
    assert config.lste_hidden_size == 682
    assert config.text_config.model_type == "llama" and config.text_config.hidden_size == 4096


def test_round_trip(tmp_path):
    config = VideoPandaConfig(
        text_config={"model_type": "llama", "hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "intermediate_size": 64, "num_hidden_layers": 2, "vocab_size": 100},
        vision_hidden_size=64, image_size=112, use_gstra=False,
    )
    config.save_pretrained(tmp_path)
    loaded = VideoPandaConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.text_config.hidden_size == 32


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_size": 100}, "multiple of patch_size \\* downsample_window"),
        ({"vision_hidden_size": 100}, "multiple of vision_num_heads"),
        ({"projector_type": "qformer"}, "projector_type"),
    ],
)
def test_invalid_configs_explain_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VideoPandaConfig(**kwargs)
