"""The LanguageBind video encoder, the teacher of Video-Panda's distillation (training only).

A CLIP ViT-L/14 (224 px) whose every encoder layer also has a temporal embedding, a temporal LayerNorm and a temporal
self-attention over the frames of one clip, applied as a residual before the spatial block. Module names follow the
Hugging Face CLIP convention used by ``LanguageBind/LanguageBind_Video_merge`` (``vision_model.pre_layrnorm`` sic,
``encoder.layers.N.temporal_attn`` ...), so that checkpoint's vision tower loads with no missing or unexpected keys;
its text tower (``text_model.*``, ``text_projection``, ``logit_scale``) is not needed to distil and is skipped by name.

Features for distillation are the penultimate layer's hidden states with the class token removed, one
``(grid*grid, 1024)`` matrix per frame.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .teacher_outputs import TeacherFeatures

logger = logging.getLogger(__name__)

TEXT_TOWER_PREFIXES = ("text_model.", "text_projection.", "logit_scale")


@dataclass
class LanguageBindVideoConfig:
    """Vision-tower fields of ``LanguageBind_Video_merge``'s ``config.json`` (defaults: the released full size)."""

    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    patch_size: int = 14
    image_size: int = 224
    num_channels: int = 3
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-5
    projection_dim: int = 768
    num_frames: int = 8
    select_layer: int = -2

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads "
                f"({self.num_attention_heads})."
            )
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size ({self.image_size}) must be a multiple of patch_size ({self.patch_size}).")
        if not -self.num_hidden_layers <= self.select_layer < 0:
            raise ValueError(f"select_layer must be in [-{self.num_hidden_layers}, -1], got {self.select_layer}.")

    @property
    def grid_size(self) -> int:
        return self.image_size // self.patch_size

    @classmethod
    def from_dict(cls, config: dict) -> LanguageBindVideoConfig:
        """Read either a bare vision config or a full LanguageBind config with a ``vision_config`` entry."""
        vision = dict(config.get("vision_config", config))
        if "projection_dim" not in vision and "projection_dim" in config:
            vision["projection_dim"] = config["projection_dim"]
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in vision.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


class LanguageBindAttention(nn.Module):
    """Multi-head self-attention with CLIP's parameter names (``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``)."""

    def __init__(self, hidden_size: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.k_proj = nn.Linear(hidden_size, hidden_size)
        self.v_proj = nn.Linear(hidden_size, hidden_size)
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, dim = x.shape
        heads = (batch, length, self.num_heads, dim // self.num_heads)
        q, k, v = (proj(x).view(heads).transpose(1, 2) for proj in (self.q_proj, self.k_proj, self.v_proj))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, dim))


class LanguageBindMLP(nn.Module):
    def __init__(self, config: LanguageBindVideoConfig):
        super().__init__()
        if config.hidden_act not in ("gelu", "quick_gelu"):
            raise ValueError(f"hidden_act must be 'gelu' or 'quick_gelu', got {config.hidden_act!r}.")
        self.quick = config.hidden_act == "quick_gelu"
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc1(x)
        x = x * torch.sigmoid(1.702 * x) if self.quick else F.gelu(x)
        return self.fc2(x)


class LanguageBindEncoderLayer(nn.Module):
    """CLIP encoder layer preceded by a temporal block: ``x += temporal_embedding``, then ``x += attn_t(LN_t(x))``."""

    def __init__(self, config: LanguageBindVideoConfig):
        super().__init__()
        dim = config.hidden_size
        self.temporal_embedding = nn.Parameter(torch.zeros(1, config.num_frames, dim))
        self.temporal_layer_norm1 = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.temporal_attn = LanguageBindAttention(dim, config.num_attention_heads)
        self.self_attn = LanguageBindAttention(dim, config.num_attention_heads)
        self.layer_norm1 = nn.LayerNorm(dim, eps=config.layer_norm_eps)
        self.mlp = LanguageBindMLP(config)
        self.layer_norm2 = nn.LayerNorm(dim, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        """``x``: ``(clips * num_frames, tokens, dim)``, frames of a clip contiguous (``(b t)`` order)."""
        bt, tokens, dim = x.shape
        clips = bt // num_frames
        # (b t) n d -> (b n) t d: attention runs along time, separately for every token position of every clip
        temporal = x.view(clips, num_frames, tokens, dim).transpose(1, 2).reshape(clips * tokens, num_frames, dim)
        if num_frames != 1:
            temporal = temporal + self.temporal_embedding[:, :num_frames]
        temporal = temporal + self.temporal_attn(self.temporal_layer_norm1(temporal))
        x = temporal.view(clips, tokens, num_frames, dim).transpose(1, 2).reshape(bt, tokens, dim)
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class LanguageBindEmbeddings(nn.Module):
    def __init__(self, config: LanguageBindVideoConfig):
        super().__init__()
        dim = config.hidden_size
        self.class_embedding = nn.Parameter(torch.zeros(dim))
        self.patch_embedding = nn.Conv2d(config.num_channels, dim, config.patch_size, config.patch_size, bias=False)
        self.position_embedding = nn.Embedding(config.grid_size**2 + 1, dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embedding(pixels.to(self.patch_embedding.weight.dtype)).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(patches.dtype).expand(patches.shape[0], 1, -1)
        return torch.cat([cls, patches], dim=1) + self.position_embedding.weight.to(patches.dtype)


class LanguageBindEncoder(nn.Module):
    def __init__(self, config: LanguageBindVideoConfig):
        super().__init__()
        self.layers = nn.ModuleList(LanguageBindEncoderLayer(config) for _ in range(config.num_hidden_layers))


class LanguageBindVisionTransformer(nn.Module):
    def __init__(self, config: LanguageBindVideoConfig):
        super().__init__()
        self.embeddings = LanguageBindEmbeddings(config)
        self.pre_layrnorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # sic, CLIP's name
        self.encoder = LanguageBindEncoder(config)
        self.post_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)


class LanguageBindVideoTeacher(nn.Module):
    """Frozen LanguageBind video tower; ``forward`` returns penultimate-layer patch features per frame."""

    def __init__(self, config: LanguageBindVideoConfig | None = None):
        super().__init__()
        self.config = config or LanguageBindVideoConfig()
        self.vision_model = LanguageBindVisionTransformer(self.config)
        self.visual_projection = nn.Linear(self.config.hidden_size, self.config.projection_dim, bias=False)
        self.freeze()

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    @property
    def patch_size(self) -> int:
        return self.config.patch_size

    def freeze(self) -> LanguageBindVideoTeacher:
        self.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> LanguageBindVideoTeacher:
        """The teacher has no dropout or batch norm, but it stays in eval mode whatever the trainer asks."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, pixel_values_videos: torch.Tensor) -> TeacherFeatures:
        """``(videos, frames, 3 or 4, S, S)`` CLIP-normalised frames -> features ``(videos, frames, grid^2, D)``.

        A 4th channel (the validity mask) is dropped. Every video must have ``config.num_frames`` frames or fewer:
        the temporal embedding has one row per frame position.
        """
        if pixel_values_videos.ndim != 5:
            raise ValueError(f"expected (videos, frames, channels, S, S), got {tuple(pixel_values_videos.shape)}.")
        videos, frames, _, height, width = pixel_values_videos.shape
        if frames > self.config.num_frames:
            raise ValueError(f"{frames} frames per video, but the teacher has {self.config.num_frames} positions.")
        if (height, width) != (self.config.image_size, self.config.image_size):
            raise ValueError(f"teacher frames must be {self.config.image_size}px squares, got {height}x{width}.")
        pixels = pixel_values_videos[:, :, :3].reshape(videos * frames, 3, height, width)
        x = self.vision_model.pre_layrnorm(self.vision_model.embeddings(pixels))
        # hidden_states[0] is the embedding output, hidden_states[i] the output of layer i; select_layer -2 needs
        # num_hidden_layers - 1 layers, so the last layer is never run.
        layers_needed = self.config.num_hidden_layers + 1 + self.config.select_layer
        for layer in self.vision_model.encoder.layers[:layers_needed]:
            x = layer(x, frames)
        features = x[:, 1:].reshape(videos, frames, -1, x.shape[-1])
        return TeacherFeatures(
            features=features, grid=(self.config.grid_size, self.config.grid_size), patch_size=self.config.patch_size
        )

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype = torch.float32) -> LanguageBindVideoTeacher:
        """Load a local ``LanguageBind_Video_merge`` folder (``config.json`` + safetensors or ``pytorch_model.bin``)."""
        path = Path(path)
        config_file = path / "config.json"
        if not config_file.is_file():
            raise ValueError(f"{path} has no config.json; expected a LanguageBind_Video_merge folder.")
        teacher = cls(LanguageBindVideoConfig.from_dict(json.loads(config_file.read_text())))
        teacher.load_checkpoint_state_dict(_read_state_dict(path))
        return teacher.to(dtype)

    def load_checkpoint_state_dict(self, state_dict: dict[str, torch.Tensor]) -> list[str]:
        """Strictly load the vision tower from a full LanguageBind state dict; return the skipped text-tower keys.

        Text-tower keys are skipped by name; ``*.position_ids`` buffers that older transformers versions saved are
        checked to be the plain ``arange`` they always are and dropped. Anything else missing or unexpected raises.
        """
        own, skipped = {}, []
        for key, value in state_dict.items():
            if key.startswith(TEXT_TOWER_PREFIXES):
                skipped.append(key)
            elif key.endswith("position_ids"):
                if not torch.equal(value.reshape(-1).long(), torch.arange(value.numel())):
                    raise ValueError(f"{key} is not the arange buffer it should be.")
            else:
                own[key] = value
        result = self.load_state_dict(own, strict=False)
        if result.missing_keys or result.unexpected_keys:
            raise ValueError(
                f"LanguageBind checkpoint does not match: missing {result.missing_keys[:8]} "
                f"(total {len(result.missing_keys)}), unexpected {result.unexpected_keys[:8]} "
                f"(total {len(result.unexpected_keys)})."
            )
        self.freeze()
        logger.info(
            "Loaded the LanguageBind video tower (%d tensors, %d text-tower tensors skipped).", len(own), len(skipped)
        )
        return skipped


def languagebind_vision_key_shapes(config: LanguageBindVideoConfig | None = None) -> dict[str, tuple[int, ...]]:
    """Every vision-tower key of the checkpoint with its shape, computed without allocating the model."""
    c = config or LanguageBindVideoConfig()
    d, i = c.hidden_size, c.intermediate_size
    shapes = {
        "vision_model.embeddings.class_embedding": (d,),
        "vision_model.embeddings.patch_embedding.weight": (d, c.num_channels, c.patch_size, c.patch_size),
        "vision_model.embeddings.position_embedding.weight": (c.grid_size**2 + 1, d),
        "vision_model.pre_layrnorm.weight": (d,),
        "vision_model.pre_layrnorm.bias": (d,),
        "vision_model.post_layernorm.weight": (d,),
        "vision_model.post_layernorm.bias": (d,),
        "visual_projection.weight": (c.projection_dim, d),
    }
    for n in range(c.num_hidden_layers):
        p = f"vision_model.encoder.layers.{n}."
        for attn in ("self_attn", "temporal_attn"):
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                shapes[f"{p}{attn}.{proj}.weight"] = (d, d)
                shapes[f"{p}{attn}.{proj}.bias"] = (d,)
        for norm in ("layer_norm1", "layer_norm2", "temporal_layer_norm1"):
            shapes[f"{p}{norm}.weight"] = (d,)
            shapes[f"{p}{norm}.bias"] = (d,)
        shapes[f"{p}mlp.fc1.weight"] = (i, d)
        shapes[f"{p}mlp.fc1.bias"] = (i,)
        shapes[f"{p}mlp.fc2.weight"] = (d, i)
        shapes[f"{p}mlp.fc2.bias"] = (d,)
        shapes[f"{p}temporal_embedding"] = (1, c.num_frames, d)
    return shapes


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    files = sorted(path.glob("*.safetensors"))
    if files:
        from safetensors.torch import load_file

        state = {}
        for file in files:
            state.update(load_file(str(file)))
        return state
    files = sorted(path.glob("pytorch_model*.bin"))
    if not files:
        raise ValueError(f"no *.safetensors or pytorch_model*.bin weights in {path}.")
    state = {}
    for file in files:
        state.update(torch.load(file, map_location="cpu", weights_only=True))
    return state


__all__ = ["LanguageBindVideoConfig", "LanguageBindVideoTeacher", "languagebind_vision_key_shapes"]
