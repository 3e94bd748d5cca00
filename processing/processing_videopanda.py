"""VideoPandaProcessor: chat template + tokenizer + video processor, with one placeholder token per visual token.

The model writes its visual tokens (per frame: class token, then ``h`` rows of ``w`` LSD tokens each closed by a
``<row>`` token) over the ``<video>`` placeholder ids, so each ``<video>`` in the text is expanded here to exactly
``sum over frames of 1 + h * (w + 1)`` placeholders, ``h, w`` read from each frame's validity mask with the model's
crop rule (all-zero padding frames keep the top-left ``padded_frame_crop`` patches).

Tokenisation rule (parity with the original ``tokenizer_image_token``): the original splits the prompt at each
``<image>``, tokenises every chunk on its own (each chunk gets SentencePiece's leading "▁"), keeps one BOS and puts
one image marker per frame. A LLaMA ``tokenizer.json`` whose normaliser prepends "▁" to every text segment between
added tokens does the same to the text around our special ``<video>`` tokens, so the ids are the original's with each
frame's marker replaced by that frame's placeholder run.
"""

import logging
from pathlib import Path

import torch
from tokenizers import AddedToken
from transformers.models.auto.tokenization_auto import get_tokenizer_config, tokenizer_class_from_name
from transformers.processing_utils import MultiModalData, ProcessorMixin

from .frame_geometry_videopanda import model_layout, tokens_per_frame, valid_token_grid
from .video_processing_videopanda import VideoPandaVideoProcessor, _flatten_inputs

logger = logging.getLogger(__name__)

CHAT_TEMPLATE_FILE = Path(__file__).with_name("chat_template.jinja")


def default_chat_template() -> str | None:
    """The videopanda_v1 template shipped next to this file (``None`` where the file did not travel, e.g. remote code)."""
    return CHAT_TEMPLATE_FILE.read_text(encoding="utf-8") if CHAT_TEMPLATE_FILE.is_file() else None


class VideoPandaProcessor(ProcessorMixin):
    r"""
    Tokenizer + [`VideoPandaVideoProcessor`] + the original videopanda_v1 (Vicuna v1) chat template.

    Args:
        video_processor ([`VideoPandaVideoProcessor`]): turns videos and images into ``pixel_values_videos``.
        tokenizer: any Llama-family tokenizer (a ``tokenizers``-backed one for ``return_assistant_tokens_mask``). The
            ``video_token`` is added as a special token if missing; a tokenizer without a pad token gets its unk token
            (else eos) as pad token, as the original training code did.
        chat_template (`str`, *optional*): defaults to ``chat_template.jinja`` next to this file.
        video_token (`str`, defaults to ``"<video>"``): placeholder marking where a video's visual tokens go.
    """

    videos_kwargs = {"return_tensors": "pt"}

    def __init__(self, video_processor=None, tokenizer=None, chat_template=None, video_token="<video>", **kwargs):
        if video_processor is None or tokenizer is None:
            raise ValueError("VideoPandaProcessor needs both a video_processor and a tokenizer.")
        if kwargs:
            raise TypeError(f"Unexpected arguments for VideoPandaProcessor: {sorted(kwargs)}.")
        if chat_template is None:
            chat_template = default_chat_template()
        self.video_token = video_token
        token_id = tokenizer.convert_tokens_to_ids(video_token)
        if token_id is None or token_id == tokenizer.unk_token_id:
            tokenizer.add_tokens([AddedToken(video_token, special=True, normalized=False)], special_tokens=True)
            token_id = tokenizer.convert_tokens_to_ids(video_token)
            logger.info("Added %s to the tokenizer with id %d.", video_token, token_id)
        self.video_token_id = token_id
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.unk_token if tokenizer.unk_token is not None else tokenizer.eos_token
        super().__init__(video_processor, tokenizer, chat_template=chat_template)

    def __call__(self, images=None, text=None, videos=None, **kwargs):
        """Tokenise ``text`` and process ``videos``; ``images`` are one-frame videos (use one or the other)."""
        if images is not None:
            if videos is not None:
                raise ValueError(
                    "Pass images and videos together through `videos` (an image is a one-frame video), in the order "
                    "of their placeholders."
                )
            videos = images
        return super().__call__(text=text, videos=videos, **kwargs)

    def apply_chat_template(self, conversation, chat_template=None, **kwargs):
        """transformers' ``apply_chat_template``, with the processor's ``video_token`` passed to the template."""
        kwargs.setdefault("video_token", self.video_token)
        return super().apply_chat_template(conversation, chat_template=chat_template, **kwargs)

    def validate_inputs(self, images=None, text=None, videos=None, audio=None, **kwargs):
        """Check that there is input and that the ``<video>`` placeholders match the videos one to one."""
        if text is None and videos is None:
            raise ValueError("VideoPandaProcessor needs `text`, `videos` or both.")
        if text is None:
            return
        texts = [text] if isinstance(text, str) else text
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise ValueError("`text` must be a string or a list of strings.")
        num_placeholders = sum(t.count(self.video_token) for t in texts)
        num_videos = len(_flatten_inputs(videos))
        if num_placeholders != num_videos:
            raise ValueError(
                f"The text has {num_placeholders} {self.video_token} placeholder(s) but {num_videos} video(s)/image(s) "
                f"were given; each video needs exactly one {self.video_token} in the text, in order."
            )

    def _process_videos(self, videos, **kwargs):
        processed = self.video_processor(videos, **kwargs)
        replacements = [
            self.replace_video_token(processed, video_idx=i, **kwargs) for i in range(len(processed["video_grids"]))
        ]
        return processed, replacements

    def num_video_tokens(self, pixel_values: torch.Tensor, num_frames: int | None = None, **kwargs) -> int:
        """Placeholder count of one video ``(T, 4, S, S)``: per frame ``1 + h * (w + 1)`` from its validity mask."""
        vp = self.video_processor
        patch_size = kwargs.get("patch_size") or vp.patch_size
        window = kwargs.get("downsample_window") or vp.downsample_window
        crop = kwargs.get("padded_frame_crop") or vp.padded_frame_crop
        pixel_values = torch.as_tensor(pixel_values)
        frames = pixel_values.shape[0] if num_frames is None else int(num_frames)
        return sum(
            tokens_per_frame(*valid_token_grid(pixel_values[t, 3], patch_size, window, crop)) for t in range(frames)
        )

    def replace_video_token(self, video_inputs: dict, video_idx: int, **kwargs) -> str:
        """The run of placeholders for video ``video_idx`` (its ``video_grids`` frames, padding frames included)."""
        num_frames = int(video_inputs["video_grids"][video_idx][0])
        kwargs.pop("num_frames", None)  # the sampling request (e.g. num_frames=4); the grid's count is what matters
        count = self.num_video_tokens(video_inputs["pixel_values_videos"][video_idx], num_frames, **kwargs)
        return self.video_token * count

    def _get_num_multimodal_tokens(self, video_sizes=None, **kwargs) -> MultiModalData:
        """Placeholder counts without pixels, for serving engines: ``video_sizes`` holds ``(frames, height, width)``
        per video, ``frames`` being the number of real frames after sampling. One frame is an image; a shorter clip
        gets all-zero frames up to ``num_frames`` (with the default ``short_video_padding="zeros"``)."""
        if video_sizes is None:
            return MultiModalData()
        vp = self.video_processor
        side = vp.size.height if hasattr(vp.size, "height") else vp.size["height"]
        padding = kwargs.get("short_video_padding", vp.short_video_padding)
        num_frames = kwargs.get("num_frames", vp.num_frames)
        zero_grid = min(vp.padded_frame_crop, side // vp.patch_size) // vp.downsample_window
        counts = []
        for frames, height, width in video_sizes:
            mask = model_layout(int(width), int(height), side, vp.patch_size).mask()
            per_frame = tokens_per_frame(*valid_token_grid(mask, vp.patch_size, vp.downsample_window))
            num_zero = max(0, num_frames - frames) if frames > 1 and padding == "zeros" else 0
            counts.append(frames * per_frame + num_zero * tokens_per_frame(zero_grid, zero_grid))
        return MultiModalData(num_video_tokens=counts)

    @classmethod
    def _get_arguments_from_pretrained(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs):
        """Load the video processor with its own class (no Auto-class registration needed) and the tokenizer."""
        subfolder = kwargs.pop("subfolder", "")
        video_processor = VideoPandaVideoProcessor.from_pretrained(
            pretrained_model_name_or_path, subfolder=subfolder, **kwargs
        )
        return [video_processor, cls._load_own_tokenizer(pretrained_model_name_or_path, subfolder, **kwargs)]

    @classmethod
    def _load_own_tokenizer(cls, path, subfolder, **kwargs):
        """Build the tokenizer from the class its config names; AutoTokenizer would first read the folder's
        ``config.json``, whose remote-code ``auto_map`` makes transformers ask interactively whether to trust it."""
        tokenizer_config = get_tokenizer_config(path, subfolder=subfolder, **kwargs)
        class_name = tokenizer_config.get("tokenizer_class")
        tokenizer_class = tokenizer_class_from_name(class_name) if class_name else None
        if tokenizer_class is None:
            return cls._load_tokenizer_from_pretrained("tokenizer", path, subfolder=subfolder, **kwargs)
        kwargs.pop("trust_remote_code", None)
        return tokenizer_class.from_pretrained(path, subfolder=subfolder, **kwargs)


# Saved processors carry this file as remote code (auto_map), see docs/hub.md.
VideoPandaProcessor.register_for_auto_class("AutoProcessor")

__all__ = ["VideoPandaProcessor"]
