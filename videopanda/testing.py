"""Small, real building blocks for tests, examples and benchmarks: encoded videos and tiny configurations.

Nothing here is mocked: videos are encoded with PyAV, configs describe models that really run.
"""

from pathlib import Path

import av
import numpy as np

from .modeling import VideoPandaConfig


def moving_square_frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 frames of a coloured square sliding right over a noisy background."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 60, size=(num_frames, height, width, 3), dtype=np.uint8)
    side = max(2, min(height, width) // 4)
    colour = rng.integers(128, 256, size=3, dtype=np.uint8)
    for t in range(num_frames):
        x = int((width - side) * t / max(1, num_frames - 1))
        y = (height - side) // 2
        frames[t, y : y + side, x : x + side] = colour
    return frames


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: int = 8,
    codec: str = "mpeg4",
    audio: bool = False,
) -> Path:
    """Encode ``(T, H, W, 3)`` uint8 frames to ``path`` with PyAV (``yuv420p``; odd sizes are fine for mpeg4)."""
    path = Path(path)
    frames = np.asarray(frames, dtype=np.uint8)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        audio_stream = container.add_stream("aac", rate=16000) if audio else None
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio_stream is not None:
            samples = np.zeros((1, 16000 * len(frames) // fps), dtype=np.float32)
            audio_frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            audio_frame.sample_rate = 16000
            for packet in audio_stream.encode(audio_frame):
                container.mux(packet)
            for packet in audio_stream.encode():
                container.mux(packet)
    return path


def make_video(path: str | Path, num_frames: int = 16, height: int = 64, width: int = 80, fps: int = 8, **kwargs):
    """Write a small moving-square clip and return its path."""
    return write_video(path, moving_square_frames(num_frames, height, width), fps=fps, **kwargs)


def tiny_text_config(vocab_size: int = 32064, **overrides) -> dict:
    """A 2-layer Llama small enough for CPU tests; the default vocabulary fits the LLaMA tokenizer plus `<video>`."""
    config = {
        "model_type": "llama",
        "vocab_size": vocab_size,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 2048,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
        "tie_word_embeddings": False,
    }
    config.update(overrides)
    return config


def tiny_config(**overrides) -> VideoPandaConfig:
    """A complete, small Video-Panda: STAB width 32 with 4 heads on 112x112 frames, 2-layer Llama text model."""
    kwargs = {
        "text_config": tiny_text_config(),
        "vision_hidden_size": 32,
        "vision_num_heads": 4,
        "image_size": 112,
        "video_token_id": 32000,
    }
    kwargs.update(overrides)
    return VideoPandaConfig(**kwargs)


def tiny_model(seed: int = 0, randomize: bool = True, **overrides):
    """A tiny `VideoPandaForConditionalGeneration` from `tiny_config(**overrides)`, in eval mode.

    With `randomize`, every parameter gets seeded noise (matrices N(0, 0.1), vectors +N(0, 0.1)) so that the original's
    zero-initialised layers are active and greedy decoding has clear argmax margins; buffers are left alone.
    """
    import torch

    from .modeling.modeling_videopanda import VideoPandaForConditionalGeneration

    torch.manual_seed(seed)
    model = VideoPandaForConditionalGeneration(tiny_config(**overrides))
    if randomize:
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for parameter in model.parameters():
                noise = torch.randn(parameter.shape, generator=generator, dtype=parameter.dtype) * 0.1
                if parameter.ndim >= 2:
                    parameter.copy_(noise)
                else:
                    parameter.add_(noise)
    return model.eval()


def video_pixels(num_frames: int, size: int = 112, valid_rows: tuple[int, int] | None = None, seed: int = 0):
    """`(num_frames, 4, size, size)` float model input: random RGB plus the validity mask (channel 3).

    `valid_rows=(start, stop)` marks only that pixel band valid (a landscape video padded to a square).
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    rgb = torch.randn(num_frames, 3, size, size, generator=generator)
    mask = torch.ones(num_frames, 1, size, size)
    if valid_rows is not None:
        mask.zero_()
        mask[:, :, valid_rows[0] : valid_rows[1]] = 1
    return torch.cat([rgb, mask], dim=1)


def frame_token_count(grid_h: int, grid_w: int) -> int:
    """Visual tokens of one frame: class token plus `grid_h` rows of `grid_w` LSD tokens and one `<row>` token each."""
    return 1 + grid_h * (grid_w + 1)


TINY_WORDS = (
    "a chat between curious human and an artificial intelligence assistant the gives helpful detailed polite answers "
    "to s questions user what is in this video does do which where who how many why when it of on at from with for "
    "moves move moving left right up down square circle triangle shape colour color red green blue yellow white black "
    "orange purple bright dark background object objects frame frames first last start end yes no one two three four "
    "five six seven eight nine ten there are was were be describe tell me happens happening slowly quickly across "
    "screen image picture clip scene person man woman rabbit car taxi bike city night day"
).split()


def tiny_word_tokenizer():
    """A word-level tokenizer built in code (no files): LLaMA-compatible special ids (<unk> 0, <s> 1, </s> 2), a few
    hundred words, and filler entries up to id 31999 so that `<video>`, added by the processor, gets id 32000 like the
    LLaMA tokenizer (the id `tiny_config()` expects)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<s>", "</s>", *dict.fromkeys(TINY_WORDS), *"0123456789.,?!:;'\"-()"]
    words += [f"<unused{i}>" for i in range(32000 - len(words))]
    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.decoder = decoders.WordPiece(prefix="##")
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<unk>"
    )


def tiny_processor(image_size: int = 112, tokenizer=None):
    """A `VideoPandaProcessor` for `image_size` frames; `tokenizer` defaults to `tiny_word_tokenizer()` (the tests'
    `tiny_processor` fixture uses the real LLaMA tokenizer from tests/fixtures instead)."""
    from .processing.processing_videopanda import VideoPandaProcessor
    from .processing.video_processing_videopanda import VideoPandaVideoProcessor

    video_processor = VideoPandaVideoProcessor(size={"height": image_size, "width": image_size})
    return VideoPandaProcessor(video_processor=video_processor, tokenizer=tokenizer or tiny_word_tokenizer())


TINY_TEACHER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, patch_size=14,
                    projection_dim=16, num_frames=8)
TINY_CLIPS = (  # (colour, direction) -> an answer that the tiny word tokenizer knows
    ((230, 40, 40), 1, "a red square moves right"), ((40, 200, 40), -1, "a green square moves left"),
    ((40, 60, 230), 1, "a blue square moves right"), ((230, 220, 40), -1, "a yellow square moves left"),
)


def write_tiny_training_setup(root, num_samples: int = 8, image_size: int = 56, num_frames: int = 4, seed: int = 0,
                              clip_frames: int = 8):
    """A complete tiny training setup on disk, for training tests and smoke runs.

    Writes ``root/model`` (a tiny Video-Panda + processor folder), ``root/teacher`` (a random tiny LanguageBind video
    teacher at ``image_size // 2``), ``root/videos/*.mp4`` (moving squares) and ``root/train.json`` (LLaVA-style
    records, one question per clip). Returns a dict of these paths.
    """
    import json

    import torch
    from safetensors.torch import save_file

    from .train.teacher_languagebind import LanguageBindVideoConfig, languagebind_vision_key_shapes

    root = Path(root)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    model = tiny_model(seed=seed, randomize=False, image_size=image_size, num_frames=num_frames)
    model.save_pretrained(root / "model")
    processor = tiny_processor(image_size=image_size)
    processor.video_processor.num_frames = num_frames
    processor.save_pretrained(root / "model")

    teacher_config = LanguageBindVideoConfig(image_size=image_size // 2, **{**TINY_TEACHER, "num_frames": num_frames})
    generator = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(s, generator=generator) * 0.2 for k, s in languagebind_vision_key_shapes(teacher_config).items()}
    (root / "teacher").mkdir(exist_ok=True)
    save_file(state, str(root / "teacher" / "model.safetensors"))
    (root / "teacher" / "config.json").write_text(json.dumps({"vision_config": teacher_config.to_dict()}))

    records = []
    for i in range(num_samples):
        colour, direction, answer = TINY_CLIPS[i % len(TINY_CLIPS)]
        clip = np.random.default_rng(seed + i).integers(0, 40, size=(clip_frames, 48, 64, 3), dtype=np.uint8)
        side = 12
        for t in range(clip_frames):
            x = int((64 - side) * t / max(1, clip_frames - 1))
            x = x if direction > 0 else 64 - side - x
            clip[t, 18 : 18 + side, x : x + side] = colour
        write_video(root / "videos" / f"clip{i}.mp4", clip)
        records.append({"id": f"clip{i}", "video": f"clip{i}.mp4", "conversations": [
            {"from": "human", "value": "<video>\nwhat happens in the video ?"}, {"from": "gpt", "value": answer}]})
    (root / "train.json").write_text(json.dumps(records))
    return {"model": root / "model", "teacher": root / "teacher", "videos": root / "videos", "data": root / "train.json"}
