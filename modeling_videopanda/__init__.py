"""Video-Panda model classes (installed as ``videopanda.modeling``)."""

from .configuration_videopanda import VideoPandaConfig

__all__ = ["VideoPandaConfig"]
