"""Shared helpers of the STAB tests (no tests here): the parity fixture, configs built from its json, randomised tiny
towers, and an independent, deliberately naive per-frame re-implementation of the original STAB semantics
(fixtures README section 1) that the batched tower is compared against."""

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import safe_open
from videopanda.modeling import VideoPandaConfig
from videopanda.modeling.modeling_stab import VideoPandaVisionTower

from videopanda.conversion import convert_original_state_dict

FIXTURES = Path(__file__).parent / "fixtures"
PARITY_NAME = "stab_parity_small"


def load_parity_fixture(name: str = PARITY_NAME):
    """``(meta json, {tensor name: tensor})`` of a STAB parity fixture in ``tests/fixtures``."""
    meta = json.loads((FIXTURES / f"{name}.json").read_text())
    with safe_open(str(FIXTURES / f"{name}.safetensors"), "pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (safe_open is not a dict)
    return meta, tensors


def text_config_for(hidden_size: int) -> dict:
    """A 1-layer Llama of the given width: only its width matters to the tower (projector output)."""
    heads = next(h for h in (4, 3, 2, 1) if hidden_size % h == 0)
    return {
        "model_type": "llama",
        "hidden_size": hidden_size,
        "intermediate_size": 2 * hidden_size,
        "num_hidden_layers": 1,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "vocab_size": 128,
    }


def config_from_fixture(meta: dict) -> VideoPandaConfig:
    """The `VideoPandaConfig` whose STAB has the fixture's dimensions (read from its json, nothing hard-coded)."""
    fixture = meta["config"]
    heads = {fixture["n_head_gstra"], fixture["num_heads_lsd"], fixture["num_heads_fsra"]}
    assert len(heads) == 1, "our STAB uses one head count for GSTRA, LSD and FSRA"
    projector = fixture["projector"].split(":")[0].strip()
    return VideoPandaConfig(
        text_config=text_config_for(fixture["llm_hidden_size"]),
        vision_hidden_size=fixture["stab_hidden_size"],
        vision_num_heads=heads.pop(),
        patch_size=fixture["patch_stride"],
        downsample_window=fixture["conv_stride"],
        lste_reduction=float(fixture["dw_reduction"]),
        gstra_mlp_ratio=float(fixture["mlp_factor"]),
        temporal_chunk_size=fixture["chunk_size"],
        image_size=fixture["frame_size"],
        projector_type=projector,
    )


def tower_from_fixture(meta: dict, tensors: dict, dtype=torch.float64) -> VideoPandaVisionTower:
    """Build the tower from the fixture json and load its original-format weights through the converter."""
    config = config_from_fixture(meta)
    weights = {key: value for key, value in tensors.items() if not key.startswith("cases.")}
    converted, _ = convert_original_state_dict(weights, config, expect_language_model=False)
    tower = VideoPandaVisionTower(config)
    prefix = "model.video_tower."
    tower.load_state_dict({key[len(prefix) :]: value for key, value in converted.items()}, strict=True)
    return tower.to(dtype).eval()


def case_input(meta: dict, tensors: dict, case: str) -> torch.Tensor:
    """The case input as ``(V, T, 4, S, S)``: one video, or a batch of single-frame images."""
    pixels = tensors[f"cases.{case}.input"]
    return pixels.unsqueeze(0) if meta["cases"][case]["kind"] == "video" else pixels.unsqueeze(1)


def tiny_stab_config(**overrides) -> VideoPandaConfig:
    """A small STAB (d=32, 4 heads, patch 14) on 112x112 frames with a 48-wide text model."""
    kwargs = {
        "text_config": text_config_for(48),
        "vision_hidden_size": 32,
        "vision_num_heads": 4,
        "image_size": 112,
        "patch_size": 14,
    }
    kwargs.update(overrides)
    return VideoPandaConfig(**kwargs)


def random_tower(config: VideoPandaConfig, seed: int = 0, dtype=torch.float64) -> VideoPandaVisionTower:
    """A tower with every parameter and BatchNorm statistic randomised (so no zero-initialised stage hides a bug)."""
    torch.manual_seed(seed)
    tower = VideoPandaVisionTower(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*tower.named_parameters(), *tower.named_buffers()]:
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator)
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif tensor.ndim >= 2:
                tensor.copy_(0.1 * noise)
            elif name.endswith("norm.weight"):
                tensor.copy_(1 + 0.1 * noise)
            else:
                tensor.copy_(noise if name.endswith(("query", "row_embedding", "balance")) else 0.1 * noise)
    return tower.to(dtype).eval()


def random_frames(num_frames: int, size: int, valid=None, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    """``(T, 4, size, size)``: random RGB, mask channel 1 inside ``valid=(r0, r1, c0, c1)`` pixels (all if None)."""
    generator = torch.Generator().manual_seed(seed)
    rgb = torch.randn(num_frames, 3, size, size, generator=generator, dtype=dtype)
    mask = torch.zeros(num_frames, 1, size, size, dtype=dtype)
    r0, r1, c0, c1 = valid if valid is not None else (0, size, 0, size)
    mask[:, :, r0:r1, c0:c1] = 1
    rgb = rgb * mask  # padded pixels are zero, as after preprocessing of the original's all-zero padding
    return torch.cat([rgb, mask], dim=1)


# ---------------------------------------------------------------------------------------------------------------
# A naive per-frame implementation of the original semantics, written from the fixtures README, using only the
# tower's weights. Loops over chunks and frames on purpose.


def _naive_query_attention(query, tokens, norm_q, proj_q, norm_kv, key_w, value_w, out_proj, heads):
    """LSD/FSRA attention with scale ``d**-0.5``: one query (d,) over tokens (n, d)."""
    d = tokens.shape[-1]
    q = proj_q(norm_q(query)).view(heads, d // heads)
    kv_in = norm_kv(tokens)
    k = (kv_in @ key_w.t()).view(-1, heads, d // heads)
    v = (kv_in @ value_w.t()).view(-1, heads, d // heads)
    weights = torch.softmax((q.unsqueeze(0) * d**-0.5 * k).sum(-1), dim=0)  # (n, heads)
    return query + out_proj((weights.unsqueeze(-1) * v).sum(0).flatten())


def naive_tower(tower: VideoPandaVisionTower, video: torch.Tensor, config: VideoPandaConfig) -> torch.Tensor:
    """Projected tokens of ONE video ``(T, 4, S, S)`` (T=1: an image), frame by frame."""
    d, heads, s = config.vision_hidden_size, config.vision_num_heads, config.downsample_window
    x = tower.patch_embedding(video[:, :3])
    patch_mask = F.avg_pool2d(video[:, 3:], config.patch_size)[:, 0]
    features, chunk_of_frame, chunk_cls = x, [], []
    if video.shape[0] > 1:
        lste, gstra = tower.temporal_encoding, tower.temporal_aggregation
        chunks = torch.chunk(torch.arange(video.shape[0]), max(video.shape[0] // config.temporal_chunk_size, 1))
        dense = []
        for index, frame_ids in enumerate(chunks):
            clip = x[frame_ids].permute(1, 0, 2, 3).unsqueeze(0)  # (1, d, t, gh, gw)
            y = clip + lste.expand(lste.temporal_conv(lste.reduce(lste.norm(clip))))
            z = y + lste.position_conv(y)
            tokens = z[0].flatten(1).t().unsqueeze(1)  # (n, 1, d)
            query = gstra.query.view(1, 1, d)
            attended, _ = F.multi_head_attention_forward(
                gstra.query_norm(query),
                gstra.context_norm(tokens),
                gstra.context_norm(tokens),
                d,
                heads,
                torch.cat([gstra.q_proj.weight, gstra.k_proj.weight, gstra.v_proj.weight]),
                torch.cat([gstra.q_proj.bias, gstra.k_proj.bias, gstra.v_proj.bias]),
                None,
                None,
                False,
                0.0,
                gstra.out_proj.weight,
                gstra.out_proj.bias,
                training=False,
                need_weights=False,
            )
            hidden = query + attended
            hidden = hidden + gstra.fc2(gstra.act(gstra.fc1(gstra.mlp_norm(hidden))))
            chunk_cls.append(hidden.view(d))
            dense.append((z + clip)[0].permute(1, 0, 2, 3))
            chunk_of_frame += [index] * len(frame_ids)
        features = torch.cat(dense)
    outputs = []
    for i in range(video.shape[0]):
        nonzero = patch_mask[i].flatten().nonzero()[:, 0]
        if len(nonzero) == 0:
            crop = features[i, :, : config.padded_frame_crop, : config.padded_frame_crop]
        else:
            width = patch_mask.shape[-1]
            h1, w1 = divmod(int(nonzero[0]), width)
            h2, w2 = divmod(int(nonzero[-1]), width)
            crop = features[i, :, h1 : h2 + 1, w1 : w2 + 1]
        h, w = crop.shape[1] // s, crop.shape[2] // s
        pooled = F.avg_pool2d(crop.unsqueeze(0), s)[0]  # (d, h, w)
        lsd = torch.empty(h, w, d, dtype=video.dtype)
        sd = tower.spatial_downsample
        for r in range(h):
            for c in range(w):
                window = crop[:, r * s : (r + 1) * s, c * s : (c + 1) * s].flatten(1).t()
                lsd[r, c] = _naive_query_attention(
                    pooled[:, r, c],
                    window,
                    sd.query_norm,
                    sd.query_proj,
                    sd.key_value_norm,
                    sd.key_proj.weight,
                    sd.value_proj.weight,
                    sd.out_proj,
                    heads,
                )
        fa = tower.frame_aggregation
        cls = _naive_query_attention(
            fa.query,
            lsd.view(h * w, d),
            fa.query_norm,
            fa.query_proj,
            fa.key_value_norm,
            fa.key_proj.weight,
            fa.value_proj.weight,
            fa.out_proj,
            heads,
        )
        if video.shape[0] > 1 and tower.class_fusion is not None:
            gate = torch.sigmoid(tower.class_fusion.balance)
            mixed = (1 - gate) * chunk_cls[chunk_of_frame[i]] + gate * cls
            cls = tower.class_fusion.linear(tower.class_fusion.norm(mixed))
        rows = [torch.cat([lsd[r], tower.row_embedding.view(1, d)]) for r in range(h)]
        outputs.append(tower.projector(torch.cat([cls.view(1, d), *rows])))
    return torch.cat(outputs)
