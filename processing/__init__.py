"""Video and chat processing (installed as ``videopanda.processing``)."""

from .processing_videopanda import VideoPandaProcessor
from .video_decoding_videopanda import VideoDecodeError
from .video_processing_videopanda import VideoPandaVideoProcessor

__all__ = ["VideoDecodeError", "VideoPandaProcessor", "VideoPandaVideoProcessor"]
