"""The last two STAB stages: the class-token fusion of video- and frame-level context, and the projector into the
language model's embedding space."""

import torch
from torch import nn
from transformers import initialization as init
from transformers.activations import ACT2FN


class ClassTokenFusion(nn.Module):
    """Learnable per-channel sigmoid gate between the chunk's GSTRA vector and the frame's FSRA class token, followed by
    ``LayerNorm -> Dropout(0.5) -> Linear`` (the original's ``proj``): ``linear(norm((1-g) video + g frame))``,
    ``g = sigmoid(balance)``. Only videos use it; images keep the FSRA class token as is."""

    def __init__(self, hidden_size: int, dropout: float = 0.5):
        super().__init__()
        self.balance = nn.Parameter(torch.zeros(hidden_size))
        self.norm = nn.LayerNorm(hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_size, hidden_size)
        self.init_like_original()

    @torch.no_grad()
    def init_like_original(self):
        """The original starts with ``balance = 0``, an even 0.5/0.5 mix."""
        init.zeros_(self.balance)

    def forward(self, video_context: torch.Tensor, frame_class: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.balance)
        return self.linear(self.dropout(self.norm((1 - gate) * video_context + gate * frame_class)))


class VideoPandaProjector(nn.Module):
    """Maps STAB tokens to the LLM width: ``mlp2x_gelu`` = Linear, activation, Linear (LLaVA's), or ``linear``."""

    def __init__(self, vision_hidden_size: int, text_hidden_size: int, projector_type: str, hidden_act: str = "gelu"):
        super().__init__()
        if projector_type not in ("mlp2x_gelu", "linear"):
            raise ValueError(f"projector_type must be 'mlp2x_gelu' or 'linear', got {projector_type!r}.")
        self.linear_1 = nn.Linear(vision_hidden_size, text_hidden_size)
        if projector_type == "mlp2x_gelu":
            self.act = ACT2FN[hidden_act]
            self.linear_2 = nn.Linear(text_hidden_size, text_hidden_size)
        else:
            self.act = self.linear_2 = None

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        hidden = self.linear_1(tokens)
        return hidden if self.linear_2 is None else self.linear_2(self.act(hidden))
