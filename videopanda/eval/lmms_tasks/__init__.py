"""lmms-eval task configs for MSVD-QA, MSRVTT-QA and TGIF-QA (which lmms-eval lacks): ``--include_path`` this folder."""

from pathlib import Path

TASKS_DIR = Path(__file__).parent
