"""videopanda: Video-Panda (CVPR 2025), the encoder-free video-language model, native to Hugging Face transformers.

The public classes are imported lazily, so that `videopanda --help` and other light entry points don't pay for
importing torch and transformers. Call `register_local_classes()` to make transformers' Auto classes and the
`video-text-to-text` pipeline task resolve to the installed classes without `trust_remote_code`.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "VideoPandaConfig": "videopanda.modeling",
    "VideoPandaModel": "videopanda.modeling",
    "VideoPandaForConditionalGeneration": "videopanda.modeling",
    "VideoPandaVisionTower": "videopanda.modeling",
    "VideoPandaProcessor": "videopanda.processing",
    "VideoPandaVideoProcessor": "videopanda.processing",
    "VideoDecodeError": "videopanda.processing",
    "register_local_classes": "videopanda.registration",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'videopanda' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_EXPORTS])


__all__ = [*_EXPORTS, "__version__"]
