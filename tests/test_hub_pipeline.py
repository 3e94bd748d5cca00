"""The video-text-to-text pipeline and the local Auto-class registration, in process with a tiny real model."""

import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageTextToText,
    AutoModelForMultimodalLM,
    AutoProcessor,
    pipeline,
)

from videopanda.registration import register_local_classes
from videopanda.testing import make_video, moving_square_frames, tiny_model
from videopanda.testing import tiny_processor as build_processor

QUESTION = "what is moving ?"


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    register_local_classes()
    root = tmp_path_factory.mktemp("pipe")
    model, processor = tiny_model(), build_processor()
    clips = [
        str(make_video(root / "a.mp4", num_frames=12)),
        str(make_video(root / "b.mp4", num_frames=5, height=48, width=100)),
    ]
    pipe = pipeline("video-text-to-text", model=model, processor=processor)
    return {"model": model, "processor": processor, "clips": clips, "pipe": pipe, "root": root}


def _direct(parts, video, question, max_new_tokens=4):
    block = {"type": "video", "path": video} if isinstance(video, str) else {"type": "video", "video": video}
    messages = [{"role": "user", "content": [block, {"type": "text", "text": question}]}]
    inputs = parts["processor"].apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    with torch.no_grad():
        out = parts["model"].generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    return parts["processor"].decode(out[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def test_video_and_question(parts):
    pipe = parts["pipe"]
    assert type(pipe).__name__ == "VideoTextToTextPipeline"
    out = pipe(video=parts["clips"][0], text=QUESTION, max_new_tokens=4)
    expected = _direct(parts, parts["clips"][0], QUESTION)
    assert expected
    assert out == [{"input_text": QUESTION, "generated_text": expected}]
    assert pipe(parts["clips"][0], text=QUESTION, max_new_tokens=4) == out  # positional video
    assert pipe(videos=parts["clips"][0], text=QUESTION, generate_kwargs={"max_new_tokens": 4}) == out
    full = pipe(video=parts["clips"][0], text=QUESTION, max_new_tokens=4, return_full_text=True)
    assert full[0]["generated_text"][-1] == {"role": "assistant", "content": expected}


def test_frames_array_as_video(parts):
    frames = moving_square_frames(6, 40, 60)
    out = parts["pipe"](video=frames, text=QUESTION, max_new_tokens=4)
    assert out[0]["generated_text"] == _direct(parts, frames, QUESTION)


def test_frame_sampling_options_reach_the_video_processor(parts):
    out = parts["pipe"](video=parts["clips"][0], text=QUESTION, max_new_tokens=4, num_frames=4)
    messages = [
        {"role": "user", "content": [{"type": "video", "path": parts["clips"][0]}, {"type": "text", "text": QUESTION}]}
    ]
    inputs = parts["processor"].apply_chat_template(
        messages,
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        processor_kwargs={"num_frames": 4},
    )
    assert inputs["pixel_values_videos"].shape[1] == 4
    with torch.no_grad():
        sequences = parts["model"].generate(**inputs, max_new_tokens=4, do_sample=False)
    expected = parts["processor"].decode(sequences[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert out[0]["generated_text"] == expected.strip()


def test_chat_input_returns_the_continued_chat(parts):
    messages = [
        {"role": "user", "content": [{"type": "video", "path": parts["clips"][0]}, {"type": "text", "text": QUESTION}]}
    ]
    out = parts["pipe"](messages, max_new_tokens=4)
    expected = _direct(parts, parts["clips"][0], QUESTION)
    assert out[0]["input_text"] == messages
    assert out[0]["generated_text"] == [*messages, {"role": "assistant", "content": expected}]
    assert parts["pipe"](text=messages, max_new_tokens=4) == out  # the image-text-to-text convention
    assert parts["pipe"](messages, max_new_tokens=4, return_full_text=False)[0]["generated_text"] == expected


def test_batches_equal_single_requests(parts):
    clips, questions = parts["clips"], [QUESTION, "what colour is it ?"]
    singles = [parts["pipe"](video=c, text=q, max_new_tokens=4) for c, q in zip(clips, questions)]
    assert singles[0] != singles[1]
    batched = parts["pipe"](video=clips, text=questions, max_new_tokens=4, batch_size=2)  # one left-padded batch
    assert batched == singles
    as_dicts = parts["pipe"]([{"video": c, "text": q} for c, q in zip(clips, questions)], max_new_tokens=4)
    assert as_dicts == singles
    chats = [
        [{"role": "user", "content": [{"type": "video", "path": c}, {"type": "text", "text": q}]}]
        for c, q in zip(clips, questions)
    ]
    chat_out = parts["pipe"](chats, max_new_tokens=4, batch_size=2)
    assert [o[0]["generated_text"][-1]["content"] for o in chat_out] == [s[0]["generated_text"] for s in singles]


def test_streamer_receives_the_answer(parts):
    from transformers import TextIteratorStreamer

    streamer = TextIteratorStreamer(parts["processor"].tokenizer, skip_prompt=True, skip_special_tokens=True)
    out = parts["pipe"](video=parts["clips"][0], text=QUESTION, max_new_tokens=4, streamer=streamer)
    assert "".join(streamer).strip() == out[0]["generated_text"]


def test_bad_inputs(parts):
    pipe = parts["pipe"]
    with pytest.raises(ValueError, match="Nothing to answer"):
        pipe()
    with pytest.raises(ValueError, match="one question per video"):
        pipe(video=parts["clips"], text=QUESTION)
    with pytest.raises(ValueError, match="one video per question"):
        pipe(video=parts["clips"], text=[QUESTION])
    with pytest.raises(ValueError, match="Unknown argument 'temprature'"):
        pipe(video=parts["clips"][0], text=QUESTION, temprature=0.5)
    with pytest.raises(ValueError, match="Unsupported video input"):
        pipe(video=3.5, text=QUESTION)
    with pytest.raises(ValueError, match="either as `video=` or as `videos=`"):
        pipe(video=parts["clips"][0], videos=parts["clips"][0], text=QUESTION)


def test_local_registration_loads_without_remote_code(parts):
    """With the package installed and registered, a saved folder loads the local classes, no trust_remote_code."""
    folder = parts["root"] / "saved"
    model = tiny_model()
    model.save_pretrained(folder)
    parts["processor"].save_pretrained(folder)
    config = AutoConfig.from_pretrained(folder)
    assert type(config).__module__ == "videopanda.modeling.configuration_videopanda"
    for auto in (AutoModelForImageTextToText, AutoModelForMultimodalLM):
        loaded = auto.from_pretrained(folder)
        assert type(loaded).__module__ == "videopanda.modeling.modeling_videopanda"
        assert type(loaded).__name__ == "VideoPandaForConditionalGeneration"
    assert type(AutoModel.from_pretrained(folder)).__name__ == "VideoPandaModel"
    processor = AutoProcessor.from_pretrained(folder)
    assert type(processor).__module__ == "videopanda.processing.processing_videopanda"
    from transformers.models.auto.video_processing_auto import AutoVideoProcessor

    assert type(AutoVideoProcessor.from_pretrained(folder)).__name__ == "VideoPandaVideoProcessor"
    # The saved config names the pipeline file; with local classes the pipeline still needs trust_remote_code or
    # an explicit class, as transformers requires for any custom task declared in config.json.
    local = pipeline("video-text-to-text", model=str(folder), trust_remote_code=True)
    out = local(video=parts["clips"][0], text=QUESTION, max_new_tokens=4)
    assert (
        out[0]["generated_text"]
        == parts["pipe"](video=parts["clips"][0], text=QUESTION, max_new_tokens=4)[0]["generated_text"]
    )
