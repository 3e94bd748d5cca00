"""Video and chat processing (installed as ``videopanda.processing``)."""
