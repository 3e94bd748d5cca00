"""Registers the installed Video-Panda classes with transformers' Auto classes and pipeline registry.

With the package installed, `AutoModelForImageTextToText.from_pretrained(folder)` (no `trust_remote_code`) then
builds the local classes, and `pipeline("video-text-to-text", model=model, processor=processor)` works for models
built in this process. Checkpoint folders carry the same code as remote code, so none of this is needed to load them
with `trust_remote_code=True` elsewhere.
"""

import logging

logger = logging.getLogger(__name__)

VIDEO_TEXT_TO_TEXT = "video-text-to-text"
_registered = False


def register_local_classes() -> None:
    """Register config, models, processors and the pipeline once per process (safe to call again)."""
    global _registered
    if _registered:
        return
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForImageTextToText,
        AutoModelForMultimodalLM,
        AutoProcessor,
    )
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor
    from transformers.pipelines import PIPELINE_REGISTRY

    from .modeling.configuration_videopanda import VideoPandaConfig
    from .modeling.modeling_videopanda import VideoPandaForConditionalGeneration, VideoPandaModel
    from .modeling.pipeline_videopanda import VideoTextToTextPipeline
    from .processing.processing_videopanda import VideoPandaProcessor
    from .processing.video_processing_videopanda import VideoPandaVideoProcessor

    model_type = VideoPandaConfig.model_type
    AutoConfig.register(model_type, VideoPandaConfig, exist_ok=True)
    AutoModel.register(VideoPandaConfig, VideoPandaModel, exist_ok=True)
    AutoModelForImageTextToText.register(VideoPandaConfig, VideoPandaForConditionalGeneration, exist_ok=True)
    AutoModelForMultimodalLM.register(VideoPandaConfig, VideoPandaForConditionalGeneration, exist_ok=True)
    AutoVideoProcessor.register(VideoPandaConfig, VideoPandaVideoProcessor, exist_ok=True)
    AutoProcessor.register(VideoPandaConfig, VideoPandaProcessor, exist_ok=True)
    PIPELINE_REGISTRY.register_pipeline(
        VIDEO_TEXT_TO_TEXT,
        pipeline_class=VideoTextToTextPipeline,
        pt_model=AutoModelForImageTextToText,
        type="multimodal",
    )
    _registered = True
    logger.debug("Registered the local Video-Panda classes for model_type %r.", model_type)


__all__ = ["VIDEO_TEXT_TO_TEXT", "register_local_classes"]
