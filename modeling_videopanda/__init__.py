"""Video-Panda model classes (installed as ``videopanda.modeling``)."""

from .configuration_videopanda import VideoPandaConfig
from .modeling_stab import VideoPandaVisionOutput, VideoPandaVisionTower
from .modeling_videopanda import (
    VideoPandaCausalLMOutputWithPast,
    VideoPandaForConditionalGeneration,
    VideoPandaModel,
    VideoPandaModelOutputWithPast,
    VideoPandaPreTrainedModel,
    VideoPandaVideoFeaturesOutput,
)
from .pipeline_videopanda import VideoTextToTextPipeline

__all__ = [
    "VideoPandaCausalLMOutputWithPast",
    "VideoPandaConfig",
    "VideoPandaForConditionalGeneration",
    "VideoPandaModel",
    "VideoPandaModelOutputWithPast",
    "VideoPandaPreTrainedModel",
    "VideoPandaVideoFeaturesOutput",
    "VideoPandaVisionOutput",
    "VideoPandaVisionTower",
    "VideoTextToTextPipeline",
]
