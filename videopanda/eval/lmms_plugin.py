"""Video-Panda as an lmms-eval model: ``lmms-eval --model videopanda --model_args pretrained=DIR --tasks ...``.

A "simple" lmms-eval model: each request brings the task's prompt text and a ``doc_to_visual`` returning video file
paths. Prompts are rendered with the processor's videopanda_v1 chat template (video first, then the text, as the
original inference script did) and answered in left-padded greedy batches. Data parallelism follows lmms-eval's
convention (one process per device, ``accelerate launch``); lmms-eval shards the requests itself.
"""

import logging

import torch
from accelerate import Accelerator
from lmms_eval.api.model import lmms
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)


def _as_bool(value) -> bool:
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes", "on")


class VideoPandaLMMS(lmms):
    """lmms-eval wrapper around ``VideoPandaForConditionalGeneration`` + ``VideoPandaProcessor``.

    Model args: ``pretrained`` (folder or Hub id), ``processor`` (default: ``pretrained``), ``dtype`` (``auto``:
    float16 on GPU, float32 on CPU), ``batch_size``, ``device``, ``max_new_tokens`` (default when the task sets none).
    """

    is_simple = True

    def __init__(
        self,
        pretrained: str,
        processor: str | None = None,
        dtype: str = "auto",
        batch_size: int = 1,
        device: str | None = None,
        max_new_tokens: int = 1024,
        **kwargs,
    ):
        super().__init__()
        if kwargs:
            raise ValueError(f"Unknown videopanda model args: {sorted(kwargs)}")
        from videopanda.modeling.modeling_videopanda import VideoPandaForConditionalGeneration
        from videopanda.processing.processing_videopanda import VideoPandaProcessor

        self.accelerator = Accelerator()
        self._device = torch.device(device) if device else self.accelerator.device
        if dtype == "auto":
            dtype = "float16" if self._device.type == "cuda" else "float32"
        self.model = VideoPandaForConditionalGeneration.from_pretrained(pretrained, dtype=getattr(torch, dtype))
        self.model.to(self._device).eval()
        self.processor = VideoPandaProcessor.from_pretrained(processor or pretrained)
        self.batch_size = int(batch_size)
        self.default_max_new_tokens = int(max_new_tokens)
        self._rank = self.accelerator.process_index
        self._world_size = self.accelerator.num_processes

    def _videos(self, doc_to_visual, doc_id, task, split) -> list[str]:
        visuals = doc_to_visual(self.task_dict[task][split][doc_id]) if doc_to_visual is not None else []
        visuals = visuals if isinstance(visuals, (list, tuple)) else [visuals]
        paths = [visual for visual in visuals if isinstance(visual, str)]
        if len(paths) != len(visuals):
            raise ValueError(f"videopanda expects video file paths from doc_to_visual, got {visuals!r}")
        return paths

    def _generate(self, conversations: list, gen_kwargs: dict) -> list[str]:
        inputs = self.processor.apply_chat_template(
            conversations,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            add_generation_prompt=True,
            processor_kwargs={"padding": True, "padding_side": "left"},
        ).to(self._device)
        if "pixel_values_videos" in inputs:
            inputs["pixel_values_videos"] = inputs["pixel_values_videos"].to(self.model.dtype)
        temperature = float(gen_kwargs.get("temperature", 0) or 0)
        do_sample = _as_bool(gen_kwargs.get("do_sample", False)) and temperature > 0
        options = {
            "max_new_tokens": int(gen_kwargs.get("max_new_tokens", self.default_max_new_tokens)),
            "do_sample": do_sample,
            "num_beams": int(gen_kwargs.get("num_beams", 1) or 1),
        }
        if do_sample:
            options.update(temperature=temperature, top_p=float(gen_kwargs.get("top_p", 1.0) or 1.0))
        tokenizer = self.processor.tokenizer
        with torch.inference_mode():
            output = self.model.generate(
                **inputs, **options, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id
            )
        texts = tokenizer.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        until = gen_kwargs.get("until") or []
        until = [until] if isinstance(until, str) else until
        results = []
        for text in texts:
            for stop in until:
                if stop:
                    text = text.split(stop)[0]
            results.append(text.strip())
        return results

    def generate_until(self, requests) -> list[str]:
        results = []
        bar = tqdm(total=len(requests), desc="videopanda", disable=self.rank != 0)
        batches, current = [], []
        for request in requests:  # consecutive requests with the same generation options, batch_size at most
            if current and (len(current) == self.batch_size or request.args[1] != current[0].args[1]):
                batches.append(current)
                current = []
            current.append(request)
        batches += [current] if current else []
        for batch in batches:
            conversations, gen_kwargs = [], batch[0].args[1]
            for request in batch:
                context, _, doc_to_visual, doc_id, task, split = request.args
                content = [{"type": "video", "path": path} for path in self._videos(doc_to_visual, doc_id, task, split)]
                conversations.append([{"role": "user", "content": [*content, {"type": "text", "text": context}]}])
            answers = self._generate(conversations, gen_kwargs)
            for request, answer in zip(batch, answers):
                self.cache_hook.add_partial("generate_until", (request.args[0], request.args[1]), answer)
            results += answers
            bar.update(len(batch))
        bar.close()
        return results

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("videopanda does not implement multi-round generation")

    def loglikelihood(self, requests):
        raise NotImplementedError(
            "videopanda answers open-ended tasks (generate_until); loglikelihood is not implemented"
        )
