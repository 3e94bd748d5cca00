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
