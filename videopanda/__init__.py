"""videopanda: Video-Panda (CVPR 2025), the encoder-free video-language model, native to Hugging Face transformers."""

from .modeling import VideoPandaConfig

__version__ = "0.1.0"
__all__ = ["VideoPandaConfig", "__version__"]
