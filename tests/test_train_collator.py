"""The training collator: assistant-only labels, teacher frames, in-batch decode failures and too-long samples."""

import pytest
from videopanda.train.collator import IGNORE_INDEX, VideoPandaDataCollator
from videopanda.train.data import DataReport

from videopanda.testing import make_video, tiny_processor


def _row(sample_id, video, answer="a red square moves right"):
    return {
        "id": sample_id,
        "video": str(video),
        "turns": [{"role": "user", "text": "what happens in the video ?"}, {"role": "assistant", "text": answer}],
    }


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    good = make_video(root / "good.mp4", num_frames=8, height=48, width=64)
    broken = root / "broken.mp4"
    broken.write_bytes(b"\x00" * 300)
    return good, broken


def test_labels_cover_the_assistant_answer_only(clips):
    processor = tiny_processor(56)
    batch = VideoPandaDataCollator(processor)([_row("a", clips[0]), _row("b", clips[0], "yes")])
    assert batch["teacher_pixel_values_videos"].shape[:3] == (2, 8, 4)
    assert batch["teacher_pixel_values_videos"].shape[-1] == 28
    tokenizer = processor.tokenizer
    for row, answer in zip(range(2), ["a red square moves right", "yes"]):
        labelled = batch["labels"][row][batch["labels"][row] != IGNORE_INDEX]
        assert tokenizer.decode(labelled, skip_special_tokens=True).strip() == answer
        assert labelled[-1].item() == tokenizer.eos_token_id
    assert (batch["labels"][batch["input_ids"] == 32000] == IGNORE_INDEX).all()  # no loss on visual tokens
    no_teacher = VideoPandaDataCollator(processor, teacher_inputs=False)([_row("a", clips[0])])
    assert "teacher_pixel_values_videos" not in no_teacher


def test_decode_failures_and_long_samples_are_dropped_and_reported(clips):
    report = DataReport()
    collator = VideoPandaDataCollator(tiny_processor(56), report=report)
    batch = collator([_row("good", clips[0]), _row("bad", clips[1])])
    assert batch["input_ids"].shape[0] == 1 and dict(report.rejected) == {"decode_failed": 1}
    assert report.examples["decode_failed"][0]["id"] == "bad"
    with pytest.raises(ValueError, match="no sample of this batch is usable"):
        collator([_row("bad", clips[1])])
    short = VideoPandaDataCollator(tiny_processor(56), max_length=20, report=report)
    with pytest.raises(ValueError, match="no sample"):
        short([_row("long", clips[0])])
    assert report.rejected["too_long"] == 1
