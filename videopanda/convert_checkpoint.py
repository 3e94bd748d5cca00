"""Convert a released Video-Panda checkpoint folder (original LLaVA-style layout) into a `save_pretrained` folder.

This is the file I/O around the pure key mapping :func:`videopanda.conversion.convert_original_state_dict`:

1. read the weights of an original folder (e.g. `jh-yi/Video-Panda-7B/videopanda_fitu` or `videopanda_prtr1`):
   sharded or single `.bin` files (`torch.load(weights_only=True)`) or safetensors, with their index files;
2. build the target `VideoPandaConfig` from the folder's LLaVA-style `config.json` and the tensor shapes, unless one is
   given;
3. map the keys, log the original keys that have no place in the model (aliases, training-only heads), and refuse to
   write anything when a weight of the model would be left uninitialised;
4. write a safetensors `save_pretrained` folder (with the remote-code files) into a temporary directory next to the
   destination and move it into place only when complete, so a failure never leaves a half-written folder.

Command line: ``python -m videopanda.convert_checkpoint SRC DST`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm

from .conversion import convert_original_state_dict
from .modeling.configuration_videopanda import VideoPandaConfig
from .modeling.modeling_videopanda import VideoPandaForConditionalGeneration

logger = logging.getLogger(__name__)

SAFETENSORS_INDEX = "model.safetensors.index.json"
SAFETENSORS_SINGLE = "model.safetensors"
BIN_INDEX = "pytorch_model.bin.index.json"
BIN_SINGLE = "pytorch_model.bin"

# Fields of the original (LLaVA-style, Llama-based) config.json that describe the language model.
_TEXT_CONFIG_FIELDS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "max_position_embeddings",
    "rms_norm_eps",
    "hidden_act",
    "rope_theta",
    "rope_scaling",
    "rope_parameters",
    "attention_bias",
    "mlp_bias",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "tie_word_embeddings",
    "initializer_range",
)


def _checkpoint_files(src_dir: Path) -> tuple[str, list[Path]]:
    """Return the format (`"safetensors"` or `"bin"`) and the weight files of an original checkpoint folder."""
    for index_name, fmt in ((SAFETENSORS_INDEX, "safetensors"), (BIN_INDEX, "bin")):
        index_path = src_dir / index_name
        if index_path.is_file():
            weight_map = json.loads(index_path.read_text()).get("weight_map")
            if not isinstance(weight_map, dict) or not weight_map:
                raise ValueError(f"{index_path} has no 'weight_map'.")
            shards = sorted(set(weight_map.values()))
            missing = [name for name in shards if not (src_dir / name).is_file()]
            if missing:
                raise ValueError(f"{index_path} lists shard files that are not in {src_dir}: {missing}")
            return fmt, [src_dir / name for name in shards]
    for single, fmt in ((SAFETENSORS_SINGLE, "safetensors"), (BIN_SINGLE, "bin")):
        if (src_dir / single).is_file():
            return fmt, [src_dir / single]
    raise ValueError(
        f"No checkpoint found in {src_dir}: expected {SAFETENSORS_INDEX}, {BIN_INDEX}, {SAFETENSORS_SINGLE} or "
        f"{BIN_SINGLE}."
    )


def load_original_state_dict(src_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read every tensor of an original checkpoint folder (sharded or single, `.bin` or safetensors).

    `.bin` shards are read with `torch.load(weights_only=True)`, so no pickled code runs. Keys listed in an index file
    but absent from its shards raise a ValueError, as do keys that appear in two shards.
    """
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise ValueError(f"Checkpoint folder {src_dir} does not exist.")
    fmt, files = _checkpoint_files(src_dir)
    state_dict: dict[str, torch.Tensor] = {}
    for path in tqdm(files, desc=f"reading {fmt} shards", disable=len(files) < 2):
        if fmt == "safetensors":
            shard = load_file(str(path))
        else:
            shard = torch.load(str(path), map_location="cpu", weights_only=True)
            if not isinstance(shard, dict):
                raise ValueError(f"{path} does not hold a state dict (got {type(shard).__name__}).")
        duplicated = sorted(set(shard) & set(state_dict))
        if duplicated:
            raise ValueError(f"Keys stored in more than one shard (second: {path.name}): {duplicated[:5]}")
        state_dict.update(shard)
    index_name = SAFETENSORS_INDEX if fmt == "safetensors" else BIN_INDEX
    if (src_dir / index_name).is_file():
        expected = set(json.loads((src_dir / index_name).read_text())["weight_map"])
        absent = sorted(expected - set(state_dict))
        if absent:
            raise ValueError(f"{len(absent)} keys of {index_name} are missing from the shards: {absent[:5]}")
    logger.info("Read %d tensors from %d %s file(s) in %s", len(state_dict), len(files), fmt, src_dir)
    return state_dict


def _first_present(state_dict: dict, *keys: str) -> torch.Tensor | None:
    for key in keys:
        if key in state_dict:
            return state_dict[key]
    return None


def config_from_original(original_config: dict, state_dict: dict[str, torch.Tensor], **overrides) -> VideoPandaConfig:
    """Build the target config from an original `config.json` (LLaVA-style) and the checkpoint's tensor shapes.

    The LLM shape comes from `config.json` (layer count and MLP width fall back to the tensors; head counts cannot be
    read from shapes); the STAB width, patch size and projector type are read from the tensors (they are exact there);
    everything else keeps the paper defaults. The vocabulary is padded to a multiple of 64
    that has a row for `video_token_id`, as the original adds no `<video>` token (it splices features at id -200).
    """
    text_config = {key: original_config[key] for key in _TEXT_CONFIG_FIELDS if original_config.get(key) is not None}
    text_config["model_type"] = "llama"
    embed = _first_present(state_dict, "model.embed_tokens.weight")
    if embed is not None:
        text_config["vocab_size"] = embed.shape[0]
        text_config.setdefault("hidden_size", embed.shape[1])
    elif "vocab_size" in original_config:
        text_config["vocab_size"] = original_config["vocab_size"]
    layers = {int(key.split(".")[2]) for key in state_dict if key.startswith("model.layers.")}
    if layers and "num_hidden_layers" not in text_config:
        text_config["num_hidden_layers"] = max(layers) + 1
    up = _first_present(state_dict, "model.layers.0.mlp.up_proj.weight")
    if up is not None and "intermediate_size" not in text_config:
        text_config["intermediate_size"] = up.shape[0]
    kwargs: dict = {}
    class_embedding = _first_present(
        state_dict, "model.video_tower.class_embedding", "model.vision_tower.class_embedding"
    )
    if class_embedding is not None:
        kwargs["vision_hidden_size"] = class_embedding.shape[-1]
    patch = _first_present(
        state_dict, "model.video_tower.patch_embedding.weight", "model.vision_tower.patch_embedding.weight"
    )
    if patch is not None:
        kwargs["patch_size"] = patch.shape[-1]
    reduced = _first_present(
        state_dict, "model.video_tower.lmhra1.pos_embed.1.weight", "model.vision_tower.lmhra1.pos_embed.1.weight"
    )
    if (
        reduced is not None
        and class_embedding is not None
        and reduced.shape[0] != int(class_embedding.shape[-1] // 1.5)
    ):
        kwargs["lste_reduction"] = class_embedding.shape[-1] / reduced.shape[0]
    projector_type = original_config.get("mm_projector_type")
    if projector_type is None and any(
        k.startswith(("model.video_projector.2.", "model.mm_projector.2.")) for k in state_dict
    ):
        projector_type = "mlp2x_gelu"
    if projector_type is None and any(
        k.startswith(("model.video_projector.", "model.mm_projector.")) for k in state_dict
    ):
        projector_type = "linear"
    if projector_type is not None:
        kwargs["projector_type"] = projector_type
    kwargs["tie_word_embeddings"] = bool(original_config.get("tie_word_embeddings", False))
    kwargs.update(overrides)
    video_token_id = kwargs.get("video_token_id", VideoPandaConfig.__dataclass_fields__["video_token_id"].default)
    vocab = text_config.get("vocab_size")
    if vocab is not None and vocab <= video_token_id:
        text_config["vocab_size"] = -(-(video_token_id + 1) // 64) * 64
    return VideoPandaConfig(text_config=text_config, **kwargs)


def _check_against_model(state_dict: dict[str, torch.Tensor], model: VideoPandaForConditionalGeneration) -> None:
    """Refuse a converted state dict that would leave model weights uninitialised or does not fit their shapes."""
    expected = {key: (value.shape, value.dtype) for key, value in model.state_dict().items()}
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    missing = sorted(set(expected) - set(state_dict) - tied)
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = [
        f"{key}: checkpoint {tuple(state_dict[key].shape)} vs model {tuple(shape)}"
        for key, (shape, _) in expected.items()
        if key in state_dict and state_dict[key].shape != shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} model weights have no source in the checkpoint: {missing[:10]}")
    if unexpected:
        problems.append(f"{len(unexpected)} converted keys do not exist in the model: {unexpected[:10]}")
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} shape mismatches: {wrong_shape[:10]}")
    if problems:
        raise ValueError("Refusing to write the converted checkpoint. " + " ".join(problems))


def convert_checkpoint(
    src_dir: str | os.PathLike,
    dst_dir: str | os.PathLike,
    config: VideoPandaConfig | None = None,
    *,
    dtype: torch.dtype | str | None = None,
    max_shard_size: str | int = "5GB",
    overwrite: bool = False,
):
    """Convert the original checkpoint in `src_dir` into a `save_pretrained` safetensors folder at `dst_dir`.

    Args:
        src_dir: folder with the original weights (`pytorch_model*.bin` or `model*.safetensors`, index optional)
            and, ideally, its LLaVA-style `config.json`.
        dst_dir: output folder; must not exist or be empty unless `overwrite=True`.
        config: target `VideoPandaConfig`; by default built by :func:`config_from_original`.
        dtype: cast floating-point weights to this dtype (default: keep the checkpoint's).
        max_shard_size: passed to `save_pretrained`.
        overwrite: replace an existing, non-empty `dst_dir`.

    Returns:
        The report of :func:`videopanda.conversion.convert_original_state_dict` (mapped, dropped and unmapped keys).
        Original keys the mapping does not place anywhere are logged as warnings.

    Raises:
        ValueError: unreadable folder, a model weight without a source, a shape mismatch, or an existing `dst_dir`.
    """
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    if dst_dir.exists() and any(dst_dir.iterdir()) and not overwrite:
        raise ValueError(f"{dst_dir} exists and is not empty; pass overwrite=True (--overwrite) to replace it.")
    original = load_original_state_dict(src_dir)
    if config is None:
        config_path = src_dir / "config.json"
        original_config = json.loads(config_path.read_text()) if config_path.is_file() else {}
        if not original_config:
            logger.warning("No config.json in %s: the LLM shape is taken from defaults and tensor shapes.", src_dir)
        config = config_from_original(original_config, original)

    converted, report = convert_original_state_dict(original, config)
    del original
    for key in report.unmapped:
        logger.warning("Original key not recognised, left out of the converted model: %s", key)
    for reason, keys in report.dropped.items():
        logger.info("Dropped %d original keys: %s (e.g. %s)", len(keys), reason, keys[0])
    if dtype is not None:
        dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        converted = {k: v.to(dtype) if v.is_floating_point() else v for k, v in converted.items()}
    with torch.device("meta"):  # the real tensors are assigned below: no memory for a second copy, no init
        model = VideoPandaForConditionalGeneration(config)
    _check_against_model(converted, model)
    model.load_state_dict(converted, strict=False, assign=True)
    if config.tie_word_embeddings:
        model.tie_weights()
    model.eval()

    dst_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{dst_dir.name}.converting-", dir=dst_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_dir, 0o777 & ~umask)  # mkdtemp makes it private; the result should look like any new folder
    try:
        model.save_pretrained(tmp_dir, max_shard_size=max_shard_size)
        if dst_dir.exists():
            shutil.rmtree(dst_dir)
        os.replace(tmp_dir, dst_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    logger.info("Wrote %d tensors to %s", len(converted), dst_dir)
    return report


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: ``videopanda convert SRC DST`` / ``python -m videopanda.convert_checkpoint``."""
    parser = argparse.ArgumentParser(
        prog="videopanda convert",
        description="Convert an original Video-Panda checkpoint folder (LLaVA-style keys, .bin or safetensors shards) "
        "into a transformers save_pretrained folder (safetensors, remote code included).",
    )
    parser.add_argument("src", help="folder with the original weights and config.json (e.g. videopanda_fitu)")
    parser.add_argument("dst", help="output folder (must be empty or absent unless --overwrite)")
    parser.add_argument("--config", help="a VideoPandaConfig config.json to use instead of deriving one from SRC")
    parser.add_argument("--dtype", choices=["float32", "float16", "bfloat16"], help="cast floating weights")
    parser.add_argument("--max-shard-size", default="5GB", help="largest safetensors shard (default 5GB)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty DST")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = VideoPandaConfig.from_json_file(args.config) if args.config else None
    try:
        report = convert_checkpoint(
            args.src, args.dst, config, dtype=args.dtype, max_shard_size=args.max_shard_size, overwrite=args.overwrite
        )
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    print(f"converted {args.src} -> {args.dst}")
    print(report.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
