"""Video-Panda model classes: the STAB video tower feeding a causal LM through `<video>` placeholder tokens.

Laid out like transformers' LLaVA-family models (`llava_next_video`, `qwen2_vl`): a base `VideoPandaModel` that
scatters the projected visual tokens into the text embeddings and runs the language model, and
`VideoPandaForConditionalGeneration` that adds the LM head, the loss and generation. This file travels as remote code:
relative imports only, nothing from `videopanda.*`.
"""

import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache
from transformers.modeling_outputs import BaseModelOutputWithPast, BaseModelOutputWithPooling, ModelOutput
from transformers.modeling_utils import slice_logits_to_keep
from transformers.utils import logging
from transformers.utils.generic import can_return_tuple, merge_with_config_defaults

from .configuration_videopanda import VideoPandaConfig
from .modeling_stab import VideoPandaVisionTower
from .pipeline_videopanda import VideoTextToTextPipeline  # noqa: F401 -- so every save copies the pipeline file

logger = logging.get_logger(__name__)

# Names under which `save_pretrained` advertises the remote-code classes (see transformers-v5 notes, section 1.6).
_AUTO_MAP_MODEL_CLASSES = {
    "AutoModel": "VideoPandaModel",
    "AutoModelForImageTextToText": "VideoPandaForConditionalGeneration",
    "AutoModelForMultimodalLM": "VideoPandaForConditionalGeneration",
}
# `pipeline("video-text-to-text", model=folder, trust_remote_code=True)` reads this from config.json.
_CUSTOM_PIPELINES = {
    "video-text-to-text": {
        "impl": "pipeline_videopanda.VideoTextToTextPipeline",
        "pt": ["AutoModelForImageTextToText"],
        "tf": [],
        "type": "multimodal",
    }
}


@dataclass
class VideoPandaVideoFeaturesOutput(BaseModelOutputWithPooling):
    r"""
    Output of [`VideoPandaModel.get_video_features`].

    last_hidden_state (`torch.FloatTensor` of shape `(total_tokens, vision_hidden_size)`):
        STAB tokens of every frame of every video, before the projector, concatenated in input order.
    pooler_output (`tuple(torch.FloatTensor)`, one `(tokens_of_video, text_hidden_size)` tensor per video):
        The same tokens after the projector: concatenated, exactly what replaces the `<video>` placeholders.
    frame_grids (`torch.LongTensor` of shape `(total_frames, 2)`):
        LSD grid `(h, w)` of each frame; a frame has `1 + h * (w + 1)` tokens (class token, rows with `<row>` tokens).
    tokens_per_frame (`torch.LongTensor` of shape `(total_frames,)`):
        Number of visual tokens of each frame.
    frames_per_video (`torch.LongTensor` of shape `(num_videos,)`):
        Frames each video contributed (`video_grids[:, 0]`, or `T_max` for all videos when no grids were given).
    """

    frame_grids: torch.LongTensor | None = None
    tokens_per_frame: torch.LongTensor | None = None
    frames_per_video: torch.LongTensor | None = None


@dataclass
class VideoPandaModelOutputWithPast(BaseModelOutputWithPast):
    r"""
    Output of [`VideoPandaModel`]: the language model's output plus the visual-token layout, so that training code
    (e.g. the distillation head) can find the visual tokens in `hidden_states` without re-running the tower.

    video_hidden_states (`torch.FloatTensor` of shape `(total_tokens, text_hidden_size)`, *optional*):
        Projected visual tokens that were scattered into the placeholder positions (prefill only).
    frame_grids (`torch.LongTensor` of shape `(total_frames, 2)`, *optional*):
        LSD grid `(h, w)` per frame, frames of all videos in input order.
    tokens_per_frame (`torch.LongTensor` of shape `(total_frames,)`, *optional*):
        Visual tokens per frame, `1 + h * (w + 1)`.
    frames_per_video (`torch.LongTensor` of shape `(num_videos,)`, *optional*):
        Frames per video, to split `frame_grids` / `tokens_per_frame` by video.
    video_token_mask (`torch.BoolTensor` of shape `(batch_size, sequence_length)`, *optional*):
        True at the `<video>` placeholder positions; their row-major order matches the order of `video_hidden_states`.
    """

    video_hidden_states: torch.FloatTensor | None = None
    frame_grids: torch.LongTensor | None = None
    tokens_per_frame: torch.LongTensor | None = None
    frames_per_video: torch.LongTensor | None = None
    video_token_mask: torch.BoolTensor | None = None


@dataclass
class VideoPandaCausalLMOutputWithPast(ModelOutput):
    r"""
    Output of [`VideoPandaForConditionalGeneration`].

    loss (`torch.FloatTensor` of shape `(1,)`, *optional*): next-token loss when `labels` are given.
    logits (`torch.FloatTensor` of shape `(batch_size, kept_positions, vocab_size)`): LM head scores.
    past_key_values (`Cache`, *optional*): the KV cache, returned when `use_cache=True`.
    hidden_states (`tuple(torch.FloatTensor)`, *optional*): LM hidden states when `output_hidden_states=True`.
    attentions (`tuple(torch.FloatTensor)`, *optional*): LM attentions when `output_attentions=True` (eager only).
    video_hidden_states, frame_grids, tokens_per_frame, frames_per_video, video_token_mask:
        see [`VideoPandaModelOutputWithPast`].
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    past_key_values: Cache | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None
    video_hidden_states: torch.FloatTensor | None = None
    frame_grids: torch.LongTensor | None = None
    tokens_per_frame: torch.LongTensor | None = None
    frames_per_video: torch.LongTensor | None = None
    video_token_mask: torch.BoolTensor | None = None


class VideoPandaPreTrainedModel(PreTrainedModel):
    """Shared class attributes, weight initialisation and remote-code saving of the Video-Panda classes."""

    config: VideoPandaConfig
    config_class = VideoPandaConfig
    base_model_prefix = "model"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    # The language model's own decoder-layer class is collected from `language_model` automatically.
    _no_split_modules = ["VideoPandaVisionTower"]
    _skip_keys_device_placement = ["past_key_values"]
    _supports_flash_attn = True
    _supports_sdpa = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module):
        """Generic init for Linear/Conv/Norm/Embedding, then the STAB's own choices for its raw parameters.

        STAB and projector Linear/Conv layers carry their own weight std (`init_std`, see
        `VideoPandaConfig.vision_initializer_range`); every other layer gets the generic N(0, initializer_range).
        Every STAB stage has an `init_like_original()` (the original's zero inits of LSTE `expand`, GSTRA `query` /
        `out_proj` / `fc2`, fusion `balance`; N(0, d**-0.5) class and `<row>` vectors). Modules are visited children
        first and the stage's choice is applied after the generic one, so it wins. `transformers.initialization`
        skips tensors loaded from a checkpoint.
        """
        init_std = getattr(module, "init_std", None)
        if init_std is None:
            super()._init_weights(module)
        else:
            init.normal_(module.weight, std=init_std)
            if module.bias is not None:
                init.zeros_(module.bias)
        init_like_original = getattr(module, "init_like_original", None)
        if callable(init_like_original):
            init_like_original()

    def _initialize_weights(self, module, is_custom_code: bool = False):
        """Never skip a STAB stage's `init_like_original`.

        For custom code, transformers marks a module as initialised without calling `_init_weights` when it has no
        parameters of its own that still need init; STAB stages such as the LSTE hold only child convs, so their
        zero inits would silently be lost when the tower is missing from a checkpoint (e.g. `from_pretrained(llm_dir,
        key_mapping=...)`). Tensors loaded from the checkpoint stay untouched: `transformers.initialization` skips them.
        """
        if not getattr(module, "_is_hf_initialized", False) and callable(getattr(module, "init_like_original", None)):
            self._init_weights(module)
            module._is_hf_initialized = True
            return
        super()._initialize_weights(module, is_custom_code)

    def save_pretrained(self, save_directory, *args, **kwargs):
        """Save as usual, and list every Auto class of Video-Panda in `config.auto_map` for remote-code loading."""
        if self.is_remote_code():
            module = type(self).__module__.split(".")[-1]
            auto_map = dict(getattr(self.config, "auto_map", None) or {})
            auto_map.update({auto: f"{module}.{name}" for auto, name in _AUTO_MAP_MODEL_CLASSES.items()})
            self.config.auto_map = auto_map
            if not getattr(self.config, "custom_pipelines", None):
                self.config.custom_pipelines = _CUSTOM_PIPELINES
        return super().save_pretrained(save_directory, *args, **kwargs)


def _validate_video_inputs(pixel_values_videos, video_grids):
    """Raise a ValueError that names the problem for malformed `pixel_values_videos` / `video_grids`."""
    if not isinstance(pixel_values_videos, torch.Tensor):
        raise ValueError(f"pixel_values_videos must be a torch.Tensor, got {type(pixel_values_videos).__name__}.")
    if not pixel_values_videos.is_floating_point():
        raise ValueError(
            f"pixel_values_videos must be a floating-point tensor of normalised pixels, got dtype "
            f"{pixel_values_videos.dtype}; run the frames through VideoPandaVideoProcessor first."
        )
    if pixel_values_videos.ndim != 5:
        raise ValueError(
            "pixel_values_videos must have shape (num_videos, num_frames, 4, height, width), got "
            f"{tuple(pixel_values_videos.shape)}."
        )
    if pixel_values_videos.shape[2] != 4:
        raise ValueError(
            f"pixel_values_videos must have 4 channels (RGB plus the validity mask as channel 3), got "
            f"{pixel_values_videos.shape[2]} channels in shape {tuple(pixel_values_videos.shape)}."
        )
    num_videos, max_frames = pixel_values_videos.shape[:2]
    if video_grids is None:
        return None
    if not isinstance(video_grids, torch.Tensor) or video_grids.is_floating_point() or video_grids.is_complex():
        raise ValueError("video_grids must be an integer tensor of shape (num_videos, 3) = (frames, grid_h, grid_w).")
    if video_grids.ndim != 2 or video_grids.shape[1] != 3 or video_grids.shape[0] != num_videos:
        raise ValueError(
            f"video_grids must have shape (num_videos, 3) = ({num_videos}, 3) to match pixel_values_videos "
            f"{tuple(pixel_values_videos.shape)}, got {tuple(video_grids.shape)}."
        )
    frames = video_grids[:, 0].to(device=pixel_values_videos.device, dtype=torch.long)
    if bool((frames < 1).any()) or bool((frames > max_frames).any()):
        raise ValueError(
            f"video_grids[:, 0] (frames per video) must lie in [1, {max_frames}] (the frame axis of "
            f"pixel_values_videos), got {frames.tolist()}."
        )
    return frames


class VideoPandaModel(VideoPandaPreTrainedModel):
    """STAB video tower + any causal LM backbone (no LM head): visual tokens replace the `<video>` placeholders."""

    def __init__(self, config: VideoPandaConfig):
        super().__init__(config)
        self.video_tower = VideoPandaVisionTower(config)
        self.language_model = AutoModel.from_config(config.text_config)
        self.post_init()

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    @can_return_tuple
    def get_video_features(
        self,
        pixel_values_videos: torch.FloatTensor,
        video_grids: torch.LongTensor | None = None,
        **kwargs,
    ) -> tuple | VideoPandaVideoFeaturesOutput:
        r"""
        Run the STAB and the projector.

        pixel_values_videos (`torch.FloatTensor` of shape `(num_videos, T_max, 4, S, S)`):
            Normalised RGB plus the validity mask as channel 3. A video with one frame takes the image path.
        video_grids (`torch.LongTensor` of shape `(num_videos, 3)`, *optional*):
            `(frames, grid_h, grid_w)` per video; only `frames` is read. `None` means all `T_max` frames.

        Returns a [`VideoPandaVideoFeaturesOutput`] whose `pooler_output` is a tuple with one
        `(tokens_of_video, text_hidden_size)` tensor per video (the layout `generate` expects when it pre-encodes,
        expands or slices multimodal inputs).
        """
        frames = _validate_video_inputs(pixel_values_videos, video_grids)
        tower_outputs = self.video_tower(pixel_values_videos, num_frames=frames)
        if frames is None:
            frames = torch.full(
                (pixel_values_videos.shape[0],),
                pixel_values_videos.shape[1],
                dtype=torch.long,
                device=pixel_values_videos.device,
            )
        frame_video = torch.repeat_interleave(torch.arange(len(frames), device=frames.device), frames)
        tokens_per_video = torch.zeros(len(frames), dtype=torch.long, device=frames.device).index_add_(
            0, frame_video, tower_outputs.tokens_per_frame.to(frames.device)
        )
        return VideoPandaVideoFeaturesOutput(
            last_hidden_state=tower_outputs.pre_projector,
            pooler_output=tuple(tower_outputs.features.split(tokens_per_video.tolist())),
            frame_grids=tower_outputs.frame_grids,
            tokens_per_frame=tower_outputs.tokens_per_frame,
            frames_per_video=frames,
        )

    def get_placeholder_mask(
        self,
        input_ids: torch.LongTensor | None,
        inputs_embeds: torch.FloatTensor,
        video_features: torch.FloatTensor | None = None,
    ) -> torch.BoolTensor:
        """Boolean mask `(batch, seq, 1)` of the `<video>` placeholders; checks it matches the number of features.

        Without `input_ids` the placeholders are found by comparing `inputs_embeds` with the `<video>` embedding.
        """
        if input_ids is None:
            video_embedding = self.get_input_embeddings()(
                torch.tensor(self.config.video_token_id, dtype=torch.long, device=inputs_embeds.device)
            )
            special_video_mask = (inputs_embeds == video_embedding.to(inputs_embeds.dtype)).all(-1)
        else:
            special_video_mask = input_ids == self.config.video_token_id
        if video_features is not None:
            num_placeholders = int(special_video_mask.sum())
            num_features = video_features.shape[0]
            if num_placeholders == 0 and num_features > 0:
                raise ValueError(
                    f"pixel_values_videos were given but the input has no <video> placeholder tokens (id "
                    f"{self.config.video_token_id}); the video tower produced {num_features} visual tokens that "
                    "have nowhere to go."
                )
            if num_placeholders != num_features:
                raise ValueError(
                    f"Video features and <video> placeholder tokens do not match: the input has {num_placeholders} "
                    f"placeholder tokens (id {self.config.video_token_id}) but the video tower produced "
                    f"{num_features} visual tokens. Each frame needs 1 + h * (w + 1) placeholders; build the prompt "
                    "with VideoPandaProcessor and do not truncate it."
                )
        return special_video_mask.unsqueeze(-1).to(inputs_embeds.device)

    @merge_with_config_defaults
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        video_grids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        use_cache: bool | None = None,
        mm_encoder_outputs: dict[str, BaseModelOutputWithPooling] | None = None,
        **kwargs,
    ) -> tuple | VideoPandaModelOutputWithPast:
        r"""
        input_ids / inputs_embeds: exactly one of them; `<video>` placeholders mark where visual tokens go.
        pixel_values_videos, video_grids: see [`~VideoPandaModel.get_video_features`]; consumed at prefill only.
        mm_encoder_outputs (`dict`, *optional*): `{"video": VideoPandaVideoFeaturesOutput}` from an earlier
            `get_video_features` call, instead of `pixel_values_videos`.
        Other arguments and `**kwargs` (e.g. `output_hidden_states`) go to the language model.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("Pass exactly one of input_ids or inputs_embeds.")
        # The processor's optional half-size frames for the distillation teacher: training code reads them, the model
        # does not; dropping them keeps `model(**processor_outputs)` from leaking them into the language model.
        kwargs.pop("teacher_pixel_values_videos", None)
        if pixel_values_videos is not None and mm_encoder_outputs is not None:
            raise ValueError("Pass either pixel_values_videos or mm_encoder_outputs, not both.")
        if (
            isinstance(pixel_values_videos, torch.Tensor)
            and pixel_values_videos.ndim > 0
            and not len(pixel_values_videos)
        ):
            # A text-only batch from a collator that always emits the key: zero videos means no video.
            if video_grids is not None and len(video_grids):
                raise ValueError(f"video_grids has {len(video_grids)} rows but pixel_values_videos has no videos.")
            pixel_values_videos = video_grids = None
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)

        video_outputs = (mm_encoder_outputs or {}).get("video")
        if video_outputs is None and pixel_values_videos is not None:
            video_outputs = self.get_video_features(pixel_values_videos, video_grids=video_grids, return_dict=True)

        video_features = video_token_mask = None
        if video_outputs is not None:
            video_features = video_outputs.pooler_output
            if not isinstance(video_features, torch.Tensor):
                video_features = torch.cat([feature.reshape(-1, feature.shape[-1]) for feature in video_features])
            video_features = video_features.reshape(-1, video_features.shape[-1])
            video_features = video_features.to(inputs_embeds.device, inputs_embeds.dtype)
            special_video_mask = self.get_placeholder_mask(input_ids, inputs_embeds, video_features=video_features)
            inputs_embeds = inputs_embeds.masked_scatter(special_video_mask, video_features)
            video_token_mask = special_video_mask.squeeze(-1)
        elif video_grids is not None:
            raise ValueError("video_grids was given without pixel_values_videos (or mm_encoder_outputs['video']).")
        elif (
            input_ids is not None
            and (past_key_values is None or past_key_values.get_seq_length() == 0)
            and bool((input_ids == self.config.video_token_id).any())
        ):
            logger.warning_once(
                f"The input has <video> placeholder tokens (id {self.config.video_token_id}) but no "
                "pixel_values_videos: they are embedded as ordinary tokens."
            )

        outputs = self.language_model(
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            **kwargs,
        )
        return VideoPandaModelOutputWithPast(
            last_hidden_state=outputs.last_hidden_state,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            video_hidden_states=video_features,
            frame_grids=getattr(video_outputs, "frame_grids", None),
            tokens_per_frame=getattr(video_outputs, "tokens_per_frame", None),
            frames_per_video=getattr(video_outputs, "frames_per_video", None),
            video_token_mask=video_token_mask,
        )


class VideoPandaForConditionalGeneration(VideoPandaPreTrainedModel, GenerationMixin):
    """Video-Panda with the LM head: training loss, `logits_to_keep`, KV-cache generation (video used at prefill)."""

    _tied_weights_keys = {"lm_head.weight": "model.language_model.embed_tokens.weight"}

    def __init__(self, config: VideoPandaConfig):
        super().__init__(config)
        self.model = VideoPandaModel(config)
        self.lm_head = nn.Linear(config.text_config.hidden_size, config.text_config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    def set_output_embeddings(self, new_embeddings):
        self.lm_head = new_embeddings

    @property
    def video_tower(self):
        return self.model.video_tower

    @property
    def language_model(self):
        return self.model.language_model

    def get_video_features(self, pixel_values_videos, video_grids=None, **kwargs):
        """See [`VideoPandaModel.get_video_features`]."""
        return self.model.get_video_features(pixel_values_videos, video_grids=video_grids, **kwargs)

    @merge_with_config_defaults
    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values_videos: torch.FloatTensor | None = None,
        video_grids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values: Cache | None = None,
        inputs_embeds: torch.FloatTensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        mm_encoder_outputs: dict[str, BaseModelOutputWithPooling] | None = None,
        **kwargs,
    ) -> tuple | VideoPandaCausalLMOutputWithPast:
        r"""
        labels (`torch.LongTensor` of shape `(batch_size, sequence_length)`, *optional*):
            Next-token targets (not shifted; `-100` is ignored, e.g. on the prompt and on the visual tokens).
        logits_to_keep (`int` or `torch.Tensor`): keep the last N positions (0 = all) or the given indices.
        Everything else: see [`VideoPandaModel.forward`]. `num_items_in_batch` (from `Trainer`) reaches the loss.
        """
        outputs = self.model(
            input_ids=input_ids,
            pixel_values_videos=pixel_values_videos,
            video_grids=video_grids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
            mm_encoder_outputs=mm_encoder_outputs,
            **kwargs,
        )
        hidden_states = slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep)
        logits = self.lm_head(hidden_states)

        loss = None
        if labels is not None:
            loss = self.loss_function(
                logits=logits, labels=labels, vocab_size=self.config.text_config.vocab_size, **kwargs
            )
        return VideoPandaCausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            past_key_values=outputs.past_key_values,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
            video_hidden_states=outputs.video_hidden_states,
            frame_grids=outputs.frame_grids,
            tokens_per_frame=outputs.tokens_per_frame,
            frames_per_video=outputs.frames_per_video,
            video_token_mask=outputs.video_token_mask,
        )

    @classmethod
    def from_text_model(cls, text_model, config: VideoPandaConfig | None = None, **kwargs):
        """Build a Video-Panda around an existing causal LM, copying every LLM weight exactly.

        `text_model` is a causal-LM `PreTrainedModel` (e.g. `LlamaForCausalLM`) or a folder / Hub id loadable with
        `AutoModelForCausalLM` (extra `**kwargs` such as `dtype` go to that `from_pretrained`). Without `config`, a
        `VideoPandaConfig` with default STAB fields and the LLM's config as `text_config` is built. The video tower
        is freshly initialised; `tie_word_embeddings` follows the LLM. Returns the model in the LLM's dtype.

        Equivalent without a second copy of the LLM in memory, for Llama-style checkpoints (`model.*` + `lm_head`):
        `VideoPandaForConditionalGeneration.from_pretrained(llm_dir, config=config,
        key_mapping={r"^model\\.": "model.language_model."})` (set `config.tie_word_embeddings` like the LLM's).
        """
        if isinstance(text_model, (str, os.PathLike)):
            text_model = AutoModelForCausalLM.from_pretrained(text_model, **kwargs)
        elif kwargs:
            raise ValueError(f"Loading kwargs {sorted(kwargs)} only apply when text_model is a path or Hub id.")
        if not isinstance(text_model, PreTrainedModel) or text_model.get_output_embeddings() is None:
            raise ValueError(f"text_model must be a causal LM with an LM head, got {type(text_model).__name__}.")
        text_config = text_model.config
        tied = bool(getattr(text_config, "tie_word_embeddings", False))
        if config is None:
            config = VideoPandaConfig(text_config=text_config.to_dict(), tie_word_embeddings=tied)
        else:
            config = config.__class__.from_dict(config.to_dict())
            for field in ("model_type", "hidden_size", "vocab_size", "num_hidden_layers"):
                ours, theirs = getattr(config.text_config, field, None), getattr(text_config, field, None)
                if ours != theirs:
                    raise ValueError(
                        f"config.text_config.{field} is {ours!r} but the text model has {theirs!r}; pass a config "
                        "whose text_config is the LLM's config (or no config)."
                    )
            config.tie_word_embeddings = tied
        if config.video_token_id >= config.text_config.vocab_size:
            raise ValueError(
                f"video_token_id {config.video_token_id} is outside the LLM vocabulary ({config.text_config.vocab_size}"
                " tokens); add the <video> token and call resize_token_embeddings on the LLM first."
            )
        model = cls(config)
        base = text_model.get_decoder() if hasattr(text_model, "get_decoder") else text_model.base_model
        result = model.model.language_model.load_state_dict(base.state_dict(), strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise ValueError(
                f"The text model's weights do not fit text_config: missing {result.missing_keys[:5]}, "
                f"unexpected {result.unexpected_keys[:5]}."
            )
        with torch.no_grad():  # with tied embeddings this writes the same values into the shared tensor
            model.lm_head.weight.copy_(text_model.get_output_embeddings().weight)
        model.to(dtype=text_model.dtype)
        if getattr(text_model, "generation_config", None) is not None:
            model.generation_config = text_model.generation_config
        return model


VideoPandaModel.register_for_auto_class("AutoModel")
VideoPandaForConditionalGeneration.register_for_auto_class("AutoModelForImageTextToText")

__all__ = [
    "VideoPandaCausalLMOutputWithPast",
    "VideoPandaForConditionalGeneration",
    "VideoPandaModel",
    "VideoPandaModelOutputWithPast",
    "VideoPandaPreTrainedModel",
    "VideoPandaVideoFeaturesOutput",
]
