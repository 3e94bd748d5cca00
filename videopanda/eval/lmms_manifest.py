"""The ``lmms_eval.models`` entry point: tells lmms-eval where the Video-Panda model class lives.

Kept apart from the class so that lmms-eval can read the manifest while its own registry is still being built,
without importing torch-heavy code. Registered in setup.py as
``"lmms_eval.models": ["videopanda = videopanda.eval.lmms_manifest:manifest"]``.
"""

MODEL_ID = "videopanda"
CLASS_PATH = "videopanda.eval.lmms_plugin.VideoPandaLMMS"


def manifest():
    """The manifest lmms-eval registers: ``--model videopanda`` (alias ``video_panda``), a simple (non-chat) model."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_ID, simple_class_path=CLASS_PATH, aliases=("video_panda",))
