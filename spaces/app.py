"""Hugging Face Space entry point for the Video-Panda demo.

Set the Space variable `VIDEOPANDA_MODEL` to a Video-Panda checkpoint repo (it carries its own code and loads with
`trust_remote_code=True`). `videopanda_demo.py` next to this file is the project's `videopanda/demo.py`, so the Space
needs only the packages in requirements.txt; with the `videopanda` package installed that module is used instead.
"""

import os

try:
    from videopanda.demo import build_demo
except ImportError:
    from videopanda_demo import build_demo

demo = build_demo(os.environ.get("VIDEOPANDA_MODEL") or None)

if __name__ == "__main__":
    demo.queue().launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"))
