"""The `video-text-to-text` pipeline: a video (path, URL or frames) plus a question, or chat messages, in; text out.

transformers 5 has no such task, so this file ships with every checkpoint (``config.custom_pipelines``) and
``pipeline("video-text-to-text", model=repo, trust_remote_code=True)`` finds it. It is remote code: it imports only
from transformers, torch and numpy and works with any processor that has a chat template accepting
``{"type": "video", ...}`` blocks, so it never imports the model or processor files.
"""

import numpy as np
import torch
from transformers import GenerationConfig, Pipeline
from transformers.utils import logging

logger = logging.get_logger(__name__)

# Keys routed to the video processor (through `processor_kwargs` of `apply_chat_template`): transformers' sampling
# options and Video-Panda's own (`frame_sampling="original"|"uniform"|"fps"`, `short_video_padding="zeros"|"repeat"`).
_PROCESSOR_KEYS = ("num_frames", "fps", "do_sample_frames", "frame_sampling", "short_video_padding")


def _is_message(item) -> bool:
    return isinstance(item, dict) and "role" in item and "content" in item


def _is_chat(item) -> bool:
    return isinstance(item, (list, tuple)) and len(item) > 0 and all(_is_message(m) for m in item)


def _video_block(video) -> dict:
    """A chat-template content block for one video given as a path, URL, array, tensor or list of frames."""
    if isinstance(video, str):
        key = "url" if video.startswith(("http://", "https://")) else "path"
        return {"type": "video", key: video}
    if isinstance(video, (np.ndarray, torch.Tensor, list, tuple)):
        return {"type": "video", "video": video}
    raise ValueError(
        f"Unsupported video input of type {type(video).__name__}: pass a file path, a URL, a (T, H, W, 3) array or "
        "tensor, or a list of frames."
    )


def _single_turn(video, text: str) -> list[dict]:
    """The chat for the plain `(video, question)` form: one user turn with the video first, as the model was trained."""
    if text is not None and not isinstance(text, str):
        raise ValueError(f"`text` must be a string question, got {type(text).__name__}.")
    content = [] if video is None else [_video_block(video)]
    content.append({"type": "text", "text": text or ""})
    return [{"role": "user", "content": content}]


class _Request:
    """One conversation to continue; `plain` marks requests built from a (video, question) pair."""

    def __init__(self, messages: list[dict], plain: bool = False):
        if not _is_chat(messages):
            raise ValueError("Chat input must be a non-empty list of {'role': ..., 'content': ...} messages.")
        self.messages = list(messages)
        self.plain = plain


class _Batch:
    """Several requests that are preprocessed, generated and decoded together (left-padded) as one batch."""

    def __init__(self, items: list):
        self.items = items


class VideoTextToTextPipeline(Pipeline):
    """
    Answers questions about videos with a video-language model whose processor has a chat template.

    Inputs (any of):
        - `pipe(video="clip.mp4", text="What is the man doing?")`; `video` may also be a URL, a `(T, H, W, 3)` uint8
          array/tensor or a list of frames; `videos=` is an alias.
        - `pipe(messages)` with chat messages whose content has `{"type": "video", "path"|"url"|"video": ...}` blocks.
        - batches: `pipe(video=[a, b], text=[q1, q2])`, `pipe([{"video": a, "text": q1}, ...])` or a list of chats;
          `batch_size=N` generates N requests at once (left padding).

    Keyword arguments: generation parameters (`max_new_tokens`, `do_sample`, `num_beams`, `streamer`, ... or
    `generate_kwargs={...}`), frame sampling (`num_frames`, `fps`, or any `processor_kwargs={...}`), and
    `return_full_text` (default: the new text for a question, the whole chat for chat input).

    Returns a list with one dict per request: `{"input_text": question_or_messages, "generated_text": answer_or_chat}`
    (a list of such lists for batched input).
    """

    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False
    _pipeline_calls_generate = True
    _default_generation_config = GenerationConfig(max_new_tokens=256)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.processor is None:
            raise ValueError(
                "VideoTextToTextPipeline needs a processor (tokenizer + video processor) with a chat template."
            )

    def _sanitize_parameters(
        self,
        max_new_tokens=None,
        generate_kwargs=None,
        processor_kwargs=None,
        return_full_text=None,
        skip_special_tokens=None,
        streamer=None,
        **kwargs,
    ):
        generate_kwargs = dict(generate_kwargs or {})
        processor_kwargs = dict(processor_kwargs or {})
        generation_keys = {key for key in vars(GenerationConfig()) if not key.startswith("_")}
        for key, value in kwargs.items():
            if key in _PROCESSOR_KEYS:
                processor_kwargs[key] = value
            elif key in generation_keys or key in ("generation_config", "logits_processor", "stopping_criteria"):
                generate_kwargs[key] = value
            else:
                raise ValueError(
                    f"Unknown argument {key!r} for the video-text-to-text pipeline: pass generation parameters "
                    "directly or in `generate_kwargs`, and processor settings in `processor_kwargs`."
                )
        if max_new_tokens is not None:
            if "max_new_tokens" in generate_kwargs:
                raise ValueError("`max_new_tokens` is given twice: directly and in `generate_kwargs`.")
            generate_kwargs["max_new_tokens"] = max_new_tokens
        if streamer is not None:
            generate_kwargs["streamer"] = streamer
        if "num_frames" in processor_kwargs or "fps" in processor_kwargs:
            processor_kwargs.setdefault("do_sample_frames", True)

        preprocess_params = {"processor_kwargs": processor_kwargs} if processor_kwargs else {}
        forward_params = {"generate_kwargs": generate_kwargs} if generate_kwargs else {}
        postprocess_params = {}
        if return_full_text is not None:
            postprocess_params["return_full_text"] = return_full_text
        if skip_special_tokens is not None:
            postprocess_params["skip_special_tokens"] = skip_special_tokens
        return preprocess_params, forward_params, postprocess_params

    def __call__(self, inputs=None, text=None, video=None, videos=None, batch_size=None, **kwargs):
        if video is not None and videos is not None:
            raise ValueError("Pass the video either as `video=` or as `videos=`, not both.")
        video = video if video is not None else videos
        if inputs is not None and video is not None:
            raise ValueError("Pass the video either positionally or as `video=`, not both.")
        if inputs is None and video is None and text is None:
            raise ValueError("Nothing to answer: pass `video=` and `text=`, or chat messages.")

        if _is_chat(text) or (isinstance(text, (list, tuple)) and text and _is_chat(text[0])):
            inputs, text = text, None  # chat passed as `text=` (the image-text-to-text convention)

        requests = self._requests(inputs, video, text)
        if requests is None:  # one request
            return super().__call__(self._single_request(inputs, video, text), **kwargs)
        batch_size = batch_size or self._batch_size or 1
        batches = [_Batch(requests[i : i + batch_size]) for i in range(0, len(requests), batch_size)]
        outputs = []
        for batch in batches:
            outputs.extend(super().__call__(batch, **kwargs))
        return outputs

    def _single_request(self, inputs, video, text):
        if _is_chat(inputs):
            return _Request(list(inputs))
        if isinstance(inputs, dict):
            video = inputs.get("video", inputs.get("videos"))
            return _Request(_single_turn(video, inputs.get("text")), plain=True)
        return _Request(_single_turn(inputs if inputs is not None else video, text), plain=True)

    def _requests(self, inputs, video, text) -> list | None:
        """The list of requests for batched input, or None for a single request."""
        source = inputs if inputs is not None else video
        if isinstance(source, (list, tuple)) and source and not _is_chat(source):
            if all(_is_chat(item) for item in source):
                return [_Request(item) for item in source]
            if all(isinstance(item, dict) for item in source):
                return [self._single_request(item, None, None) for item in source]
        if not isinstance(text, (list, tuple)):
            if isinstance(source, (list, tuple)) and source and all(isinstance(item, str) for item in source):
                raise ValueError(
                    f"Got {len(source)} videos but a single question: pass one question per video as a list."
                )
            return None
        if source is None:
            return [_Request(_single_turn(None, question), plain=True) for question in text]
        if not isinstance(source, (list, tuple)) or len(source) != len(text):
            count = len(source) if isinstance(source, (list, tuple)) else 1
            raise ValueError(
                f"Batched input needs one video per question: got {len(text)} questions and {count} video(s)."
            )
        return [_Request(_single_turn(clip, question), plain=True) for clip, question in zip(source, text)]

    def preprocess(self, inputs, processor_kwargs=None):
        chats = inputs.items if isinstance(inputs, _Batch) else [inputs]
        processor_kwargs = dict(processor_kwargs or {})
        if len(chats) > 1:
            processor_kwargs.setdefault("padding", True)
            processor_kwargs.setdefault("padding_side", "left")
        model_inputs = self.processor.apply_chat_template(
            [chat.messages for chat in chats],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs=processor_kwargs,
        )
        if self.dtype is not None:
            model_inputs = model_inputs.to(dtype=self.dtype)
        return {"model_inputs": dict(model_inputs), "chats": chats, "batched": isinstance(inputs, _Batch)}

    def _forward(self, model_inputs, generate_kwargs=None):
        inputs = model_inputs["model_inputs"]
        generate_kwargs = self._prepare_generate_kwargs(dict(generate_kwargs or {}), return_dict_in_generate=False)
        sequences = self.model.generate(**inputs, **generate_kwargs)
        prompt_length = inputs["input_ids"].shape[-1]
        return {
            "new_tokens": sequences[:, prompt_length:],
            "chats": model_inputs["chats"],
            "batched": model_inputs["batched"],
        }

    def postprocess(self, model_outputs, return_full_text=None, skip_special_tokens=True):
        new_tokens = model_outputs["new_tokens"]
        chats = model_outputs["chats"]
        decode = getattr(self.processor, "post_process_image_text_to_text", None) or self.processor.batch_decode
        texts = decode(new_tokens, skip_special_tokens=skip_special_tokens)
        per_chat = len(texts) // len(chats)  # > 1 with num_return_sequences
        records = []
        for index, chat in enumerate(chats):
            answers = texts[index * per_chat : (index + 1) * per_chat]
            plain = chat.plain
            full = return_full_text if return_full_text is not None else not plain
            question = _question_of(chat.messages) if plain else list(chat.messages)
            chat_records = []
            for answer in answers:
                answer = answer.strip()
                if full:
                    generated = list(chat.messages) + [{"role": "assistant", "content": answer}]
                else:
                    generated = answer
                chat_records.append({"input_text": question, "generated_text": generated})
            records.append(chat_records)
        if model_outputs["batched"]:
            return records
        return records[0]


def _question_of(messages: list[dict]) -> str:
    """The text of a plain request's single user turn."""
    content = messages[-1]["content"]
    return "".join(block.get("text", "") for block in content if block.get("type") == "text")


__all__ = ["VideoTextToTextPipeline"]
