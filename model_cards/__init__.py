"""Model-card generation (installed as ``videopanda.model_cards``)."""
