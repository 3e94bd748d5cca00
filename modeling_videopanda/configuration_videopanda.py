"""Configuration of Video-Panda: a causal LM (``text_config``) plus the Spatio-Temporal Alignment Block (STAB)."""

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

# Vicuna-7B v1.5 (the paper's LLM), with the vocabulary padded so that the `<video>` placeholder (id 32000) has a row.
VICUNA_7B_TEXT_CONFIG = {
    "model_type": "llama",
    "vocab_size": 32064,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
    "tie_word_embeddings": False,
}

PROJECTOR_TYPES = ("mlp2x_gelu", "linear")


@strict
class VideoPandaConfig(PreTrainedConfig):
    r"""
    Configuration for [`VideoPandaForConditionalGeneration`].

    STAB fields (paper defaults, Sec. 3.1):
        vision_hidden_size: width of the STAB (1024).
        patch_size: pixels per patch of the patch embedding (14).
        downsample_window: side of the LSD pooling window in patches (2, i.e. 2x2 patches per token).
        vision_num_heads: heads of the GSTRA, LSD and FSRA attentions (8).
        lste_reduction: LSTE bottleneck divisor, width ``int(vision_hidden_size // lste_reduction)`` (1.5).
        temporal_chunk_size: frames per GSTRA chunk (4); a video's frames are grouped with
            ``torch.chunk(T // temporal_chunk_size)`` as in the original.
        gstra_mlp_ratio: MLP width multiplier of the GSTRA block (4).
        padded_frame_crop: patches kept per side for frames whose validity mask is all zero (the original's
            literal ``[:16, :16]`` crop).
        use_lste / use_gstra: switch the temporal modules off for the paper's Table 4 ablation.
        projector_type: ``"mlp2x_gelu"`` (Linear, GELU, Linear) or ``"linear"``.
        projector_hidden_act: activation of the mlp2x projector.
        num_frames: frames sampled per video (8).
        image_size: side of the square, padded model input (448).
        video_token_id: id of the placeholder token that marks where visual tokens go.
        vision_initializer_range: std of the STAB and projector Linear/Conv weights in a fresh model. None (default):
            ``1 / sqrt(fan_in)`` per layer, so every layer starts near unit gain, where the LLM's fixed
            ``initializer_range`` (0.02) would shrink the signal of a 64-wide STAB about 8x per layer
            (docs/experiments.md). Loaded weights are not touched.
    """

    model_type = "videopanda"
    sub_configs_defaults = {
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama", init_kwargs=VICUNA_7B_TEXT_CONFIG)
    }
    attribute_map = {"video_token_index": "video_token_id"}

    text_config: dict | PreTrainedConfig | None = None
    vision_hidden_size: int = 1024
    patch_size: int = 14
    downsample_window: int = 2
    vision_num_heads: int = 8
    lste_reduction: float = 1.5
    temporal_chunk_size: int = 4
    gstra_mlp_ratio: float = 4.0
    padded_frame_crop: int = 16
    use_lste: bool = True
    use_gstra: bool = True
    projector_type: str = "mlp2x_gelu"
    projector_hidden_act: str = "gelu"
    num_frames: int = 8
    image_size: int = 448
    video_token_id: int = 32000
    initializer_range: float = 0.02
    vision_initializer_range: float | None = None
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self._validate_stab()

    def _validate_stab(self):
        if self.vision_hidden_size % self.vision_num_heads:
            raise ValueError(
                f"vision_hidden_size ({self.vision_hidden_size}) must be a multiple of vision_num_heads "
                f"({self.vision_num_heads})."
            )
        cell = self.patch_size * self.downsample_window
        if self.image_size % cell:
            raise ValueError(
                f"image_size ({self.image_size}) must be a multiple of patch_size * downsample_window "
                f"({self.patch_size} * {self.downsample_window} = {cell}) so that the LSD grid tiles the frame."
            )
        if self.projector_type not in PROJECTOR_TYPES:
            raise ValueError(f"projector_type must be one of {PROJECTOR_TYPES}, got {self.projector_type!r}.")
        if self.temporal_chunk_size < 1 or self.num_frames < 1:
            raise ValueError("temporal_chunk_size and num_frames must be positive.")
        if int(self.vision_hidden_size // self.lste_reduction) < 1:
            raise ValueError(f"lste_reduction ({self.lste_reduction}) leaves no LSTE bottleneck channels.")

    @property
    def lste_hidden_size(self) -> int:
        """Bottleneck width of the LSTE branch, ``int(d // 1.5)`` in the original (682 at d=1024)."""
        return int(self.vision_hidden_size // self.lste_reduction)

    @property
    def grid_size(self) -> int:
        """LSD tokens per side of a fully valid square frame (16 at 448 px)."""
        return self.image_size // (self.patch_size * self.downsample_window)


VideoPandaConfig.register_for_auto_class()

__all__ = ["VideoPandaConfig"]
