"""Model-card generation (installed as ``videopanda.model_cards``)."""

from .generator import (
    build_model_card,
    count_parameters,
    paper_eval_results,
    released_checkpoint_card,
    write_model_card,
)

__all__ = ["build_model_card", "count_parameters", "paper_eval_results", "released_checkpoint_card", "write_model_card"]
