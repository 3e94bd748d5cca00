"""Key mapping from the original Video-Panda checkpoints (LLaVA-style ``VideoPandaLlamaForCausalLM`` state dicts) to
this implementation. A pure function over state dicts: file reading/writing lives in ``videopanda.convert_checkpoint``.

What happens to each original key:

| original | ours |
| --- | --- |
| ``model.video_tower.<stab>`` | ``model.video_tower.<our stage names>`` (table ``_TOWER_RENAMES``) |
| ``model.video_tower.dec.attn.in_proj_{weight,bias}`` | split into ``temporal_aggregation.{q,k,v}_proj`` |
| ``model.video_tower.{local,global}_attention.kv.1.weight`` | split into ``key_proj`` / ``value_proj`` |
| ``model.video_tower.temporal_cls_token`` ``(1,1,d)`` | ``temporal_aggregation.query`` ``(d,)`` |
| ``model.video_projector.{0,2}.*`` (``.weight``/``.bias`` for a linear projector) | ``model.video_tower.projector.linear_{1,2}.*`` |
| ``model.vision_tower.*``, ``model.mm_projector.*`` | aliases of the two above: checked equal, dropped |
| ``model.{layers,embed_tokens,norm}.*`` | ``model.language_model.*`` |
| ``lm_head.weight`` | ``lm_head.weight`` |
| ``model.video_tower.lmhra2.*`` | dropped: built but never used by the original's forward |
| ``model.video_tower_compressor.*``, ``model.vision_tower_compressor.*``, ``model.video_teacher.*`` | dropped: training-only |
| ``*.num_batches_tracked``, ``*.rotary_emb.inv_freq`` | dropped: bookkeeping buffers our model does not store |

Embedding rows: Vicuna has 32000 rows, our vocabulary adds ``<video>`` (32000) and pads to ``text_config.vocab_size``
(32064). Missing rows of ``embed_tokens`` and ``lm_head`` are filled with the mean of the existing rows (a neutral
start for tokens the original never embedded: the placeholder rows are replaced by visual features anyway).
"""

import logging
import re
from dataclasses import dataclass, field

import torch

logger = logging.getLogger(__name__)

TOWER = "model.video_tower."

# original suffix (after ``model.video_tower.``) -> our suffix; ``{}`` keeps the remaining key tail.
_TOWER_RENAMES = [
    (r"class_embedding", "frame_aggregation.query"),
    (r"split_embedding", "row_embedding"),
    (r"balance", "class_fusion.balance"),
    (r"patch_embedding\.(.+)", "patch_embedding.{}"),
    (r"lmhra1\.pos_embed\.0\.(.+)", "temporal_encoding.norm.{}"),
    (r"lmhra1\.pos_embed\.1\.(.+)", "temporal_encoding.reduce.{}"),
    (r"lmhra1\.pos_embed\.2\.(.+)", "temporal_encoding.temporal_conv.{}"),
    (r"lmhra1\.pos_embed\.3\.(.+)", "temporal_encoding.expand.{}"),
    (r"dpe\.(.+)", "temporal_encoding.position_conv.{}"),
    (r"dec\.attn\.out_proj\.(.+)", "temporal_aggregation.out_proj.{}"),
    (r"dec\.ln_1\.(.+)", "temporal_aggregation.query_norm.{}"),
    (r"dec\.ln_2\.(.+)", "temporal_aggregation.mlp_norm.{}"),
    (r"dec\.ln_3\.(.+)", "temporal_aggregation.context_norm.{}"),
    (r"dec\.mlp\.c_fc\.(.+)", "temporal_aggregation.fc1.{}"),
    (r"dec\.mlp\.c_proj\.(.+)", "temporal_aggregation.fc2.{}"),
    (r"proj\.0\.(.+)", "class_fusion.norm.{}"),
    (r"proj\.2\.(.+)", "class_fusion.linear.{}"),
    (r"local_attention\.q\.0\.(.+)", "spatial_downsample.query_norm.{}"),
    (r"local_attention\.q\.1\.(.+)", "spatial_downsample.query_proj.{}"),
    (r"local_attention\.kv\.0\.(.+)", "spatial_downsample.key_value_norm.{}"),
    (r"local_attention\.proj\.(.+)", "spatial_downsample.out_proj.{}"),
    (r"global_attention\.q\.0\.(.+)", "frame_aggregation.query_norm.{}"),
    (r"global_attention\.q\.1\.(.+)", "frame_aggregation.query_proj.{}"),
    (r"global_attention\.kv\.0\.(.+)", "frame_aggregation.key_value_norm.{}"),
    (r"global_attention\.proj\.(.+)", "frame_aggregation.out_proj.{}"),
]
# original suffix -> our suffixes of the equal row blocks it is split into.
_TOWER_SPLITS = {
    "dec.attn.in_proj_weight": (
        "temporal_aggregation.q_proj.weight",
        "temporal_aggregation.k_proj.weight",
        "temporal_aggregation.v_proj.weight",
    ),
    "dec.attn.in_proj_bias": (
        "temporal_aggregation.q_proj.bias",
        "temporal_aggregation.k_proj.bias",
        "temporal_aggregation.v_proj.bias",
    ),
    "local_attention.kv.1.weight": ("spatial_downsample.key_proj.weight", "spatial_downsample.value_proj.weight"),
    "global_attention.kv.1.weight": ("frame_aggregation.key_proj.weight", "frame_aggregation.value_proj.weight"),
}
_TRAINING_ONLY = ("model.video_tower_compressor.", "model.vision_tower_compressor.", "model.video_teacher.")
_ALIASES = {"model.vision_tower.": TOWER, "model.mm_projector.": "model.video_projector."}
# stage name in our tower -> config switch that removes it
_OPTIONAL_STAGES = {
    "temporal_encoding.": "use_lste",
    "temporal_aggregation.": "use_gstra",
    "class_fusion.": "use_gstra",
}

DROPPED_UNUSED = "unused in the original forward (lmhra2)"
DROPPED_TRAINING = "training-only (distillation compressor / teacher)"
DROPPED_ALIAS = "alias of another key (identical tensor)"
DROPPED_BOOKKEEPING = "bookkeeping buffer (num_batches_tracked / rotary inv_freq)"
DROPPED_DISABLED = "stage disabled by the config (use_lste / use_gstra)"
DROPPED_TIED = "lm_head tied to embed_tokens by the config"


@dataclass
class ConversionReport:
    """What the mapping did: dropped keys by reason, keys it did not recognise, and embedding matrices it padded."""

    dropped: dict[str, list[str]] = field(default_factory=dict)
    unmapped: list[str] = field(default_factory=list)
    padded: dict[str, tuple[int, int]] = field(default_factory=dict)
    num_converted: int = 0

    def drop(self, reason: str, key: str):
        self.dropped.setdefault(reason, []).append(key)

    def summary(self) -> str:
        lines = [f"converted {self.num_converted} tensors"]
        lines += [f"dropped {len(keys)} ({reason})" for reason, keys in self.dropped.items()]
        lines += [f"padded {key}: {old} -> {new} rows (mean row)" for key, (old, new) in self.padded.items()]
        lines.append(f"unmapped {len(self.unmapped)}" + (f": {self.unmapped[:10]}" if self.unmapped else ""))
        return "\n".join(lines)


def _rename_tower_key(suffix: str) -> str | None:
    for pattern, target in _TOWER_RENAMES:
        match = re.fullmatch(pattern, suffix)
        if match:
            return target.format(*match.groups())
    return None


def _map_tower(suffix: str, tensor: torch.Tensor, config, out: dict, report: ConversionReport, key: str):
    if suffix.startswith("lmhra2."):
        report.drop(DROPPED_UNUSED, key)
        return
    if suffix == "temporal_cls_token":
        pairs = [("temporal_aggregation.query", tensor.reshape(-1))]
    elif suffix in _TOWER_SPLITS:
        targets = _TOWER_SPLITS[suffix]
        pairs = list(zip(targets, tensor.chunk(len(targets), dim=0)))
    else:
        target = _rename_tower_key(suffix)
        if target is None:
            report.unmapped.append(key)
            return
        pairs = [(target, tensor)]
    for target, value in pairs:
        switch = next((flag for stage, flag in _OPTIONAL_STAGES.items() if target.startswith(stage)), None)
        if switch is not None and not getattr(config, switch):
            report.drop(DROPPED_DISABLED, key)
            return
        out[TOWER + target] = value.contiguous()


def _map_projector(suffix: str) -> str | None:
    match = re.fullmatch(r"(?:(0|2)\.)?(weight|bias)", suffix)
    if match is None:
        return None
    layer = {"0": "linear_1", "2": "linear_2", None: "linear_1"}[match.group(1)]
    return f"{TOWER}projector.{layer}.{match.group(2)}"


def _resolve_aliases(state_dict: dict, report: ConversionReport) -> dict:
    """Drop alias keys after checking they equal their primary; an alias without a primary stands in for it."""
    resolved = {}
    for key, tensor in state_dict.items():
        alias = next((prefix for prefix in _ALIASES if key.startswith(prefix)), None)
        if alias is None:
            resolved.setdefault(key, tensor)
            continue
        primary = _ALIASES[alias] + key[len(alias) :]
        if primary in state_dict:
            other = state_dict[primary]
            if other.shape != tensor.shape or not torch.equal(other, tensor):
                raise ValueError(f"alias {key} differs from {primary}; the checkpoint is inconsistent.")
            report.drop(DROPPED_ALIAS, key)
        else:
            resolved.setdefault(primary, tensor)
    return resolved


def _expected_shapes(config, expect_language_model: bool) -> dict[str, torch.Size]:
    """Our parameter names and shapes for ``config``, from models built on the meta device (no memory, no init)."""
    from transformers import AutoModelForCausalLM

    from .modeling.modeling_stab import VideoPandaVisionTower

    with torch.device("meta"):
        shapes = {TOWER + k: v.shape for k, v in VideoPandaVisionTower(config).state_dict().items()}
        if expect_language_model:
            language_model = AutoModelForCausalLM.from_config(config.text_config)
            for key, value in language_model.state_dict().items():
                if key.startswith("model."):
                    shapes["model.language_model." + key[len("model.") :]] = value.shape
                elif key == "lm_head.weight" and not config.text_config.tie_word_embeddings:
                    shapes[key] = value.shape
    return shapes


def _pad_rows(key: str, tensor: torch.Tensor, rows: int, report: ConversionReport) -> torch.Tensor:
    if tensor.shape[0] > rows:
        raise ValueError(f"{key} has {tensor.shape[0]} rows, more than text_config.vocab_size ({rows}).")
    if tensor.shape[0] < rows:
        report.padded[key] = (tensor.shape[0], rows)
        mean = tensor.float().mean(dim=0, keepdim=True).to(tensor.dtype)
        tensor = torch.cat([tensor, mean.expand(rows - tensor.shape[0], -1)], dim=0)
    return tensor


def convert_original_state_dict(
    state_dict: dict[str, torch.Tensor], config, expect_language_model: bool = True
) -> tuple[dict[str, torch.Tensor], ConversionReport]:
    """Map an original Video-Panda state dict to ``VideoPandaForConditionalGeneration`` names.

    Args:
        state_dict: original key -> tensor (any subset of a full checkpoint; shards can be merged first).
        config: the target `VideoPandaConfig` (dimensions, ``use_lste``/``use_gstra``, ``text_config.vocab_size``).
        expect_language_model: also require every LLM weight (set False to convert the visual side alone, e.g. the
            STAB parity fixture).

    Returns:
        ``(converted, report)``; ``converted`` holds exactly our names. Raises ``ValueError`` when a weight our model
        needs is missing, has the wrong shape, has no place in the configured model (e.g. more LLM layers than
        ``text_config`` has), or when an alias differs from the tensor it aliases. Keys the mapping
        does not know are listed in ``report.unmapped`` and left out.
    """
    report = ConversionReport()
    out: dict[str, torch.Tensor] = {}
    for key, tensor in _resolve_aliases(state_dict, report).items():
        if key.endswith((".num_batches_tracked", "rotary_emb.inv_freq")):
            report.drop(DROPPED_BOOKKEEPING, key)
        elif key.startswith(_TRAINING_ONLY):
            report.drop(DROPPED_TRAINING, key)
        elif key.startswith(TOWER):
            _map_tower(key[len(TOWER) :], tensor, config, out, report, key)
        elif key.startswith("model.video_projector."):
            target = _map_projector(key[len("model.video_projector.") :])
            if target is None:
                report.unmapped.append(key)
            else:
                out[target] = tensor
        elif key.startswith(("model.layers.", "model.embed_tokens.", "model.norm.")):
            out["model.language_model." + key[len("model.") :]] = tensor
        elif key == "lm_head.weight":
            out[key] = tensor
        else:
            report.unmapped.append(key)

    vocab = config.text_config.vocab_size
    for key in ("model.language_model.embed_tokens.weight", "lm_head.weight"):
        if key in out:
            out[key] = _pad_rows(key, out[key], vocab, report)

    if "lm_head.weight" in out and config.text_config.tie_word_embeddings:
        report.drop(DROPPED_TIED, "lm_head.weight")
        del out["lm_head.weight"]
    expected = _expected_shapes(config, expect_language_model)
    checked = {k for k in out if expect_language_model or k.startswith(TOWER)}
    surplus = sorted(checked - set(expected))
    if surplus:
        raise ValueError(
            f"{len(surplus)} checkpoint weights have no place in a model built from this config (wrong number of "
            f"layers or a disabled stage?), e.g. {surplus[:8]}"
        )
    missing = sorted(set(expected) - set(out))
    if missing:
        raise ValueError(f"the checkpoint lacks {len(missing)} weights the model needs, e.g. {missing[:8]}")
    wrong = [f"{k}: {tuple(out[k].shape)} != {tuple(expected[k])}" for k in expected if out[k].shape != expected[k]]
    if wrong:
        raise ValueError(f"{len(wrong)} weights have the wrong shape for this config: {wrong[:8]}")
    report.num_converted = len(out)
    logger.info("converted original state dict:\n%s", report.summary())
    return out, report


__all__ = ["ConversionReport", "convert_original_state_dict"]
