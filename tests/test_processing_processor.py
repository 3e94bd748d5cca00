"""VideoPandaProcessor: chat template, token parity with the original prompt, batching, masks, save/load, model run."""

import numpy as np
import pytest
import torch
from videopanda.processing.processing_videopanda import VideoPandaProcessor
from videopanda.processing.video_processing_videopanda import VideoPandaVideoProcessor

from videopanda.testing import make_video, moving_square_frames

SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, "
    "and polite answers to the human's questions."
)
QUESTIONS = [
    "What is the rabbit doing?",
    "Describe the video in detail.",
    " leading space, trailing space ",
    "Two\nlines, ünïcode and 数字 42?",
    "Is it day or night? Answer with one word.",
]


def user(question, *videos):
    return {"role": "user", "content": [*videos, {"type": "text", "text": question}]}


def assistant(answer):
    return {"role": "assistant", "content": [{"type": "text", "text": answer}]}


def original_input_ids(tokenizer, prompt: str, marker_runs: list[list[int]]) -> list[int]:
    """The original `tokenizer_image_token`: split at "<image>", tokenise every chunk alone, keep BOS once, one marker
    per "<image>" (here replaced by that frame's run of placeholder ids)."""
    chunks = [tokenizer(chunk).input_ids for chunk in prompt.split("<image>")]
    ids = [tokenizer.bos_token_id]
    for i, chunk in enumerate(chunks):
        if i:
            ids.extend(marker_runs[i - 1])
        ids.extend(chunk[1:] if chunk and chunk[0] == tokenizer.bos_token_id else chunk)
    return ids


@pytest.fixture
def clip(tmp_path):
    return str(make_video(tmp_path / "clip.mp4", num_frames=24, height=40, width=70))


def test_template_renders_videopanda_v1(tiny_processor, clip):
    video = {"type": "video", "path": clip}
    text = tiny_processor.apply_chat_template([user("What moves?", video)], add_generation_prompt=True)
    assert text == f"{SYSTEM} USER: <video>\nWhat moves? ASSISTANT:"
    conversation = [user("What moves?", video), assistant("A square."), user("Where to?")]
    text = tiny_processor.apply_chat_template(conversation, add_generation_prompt=True)
    assert text == f"{SYSTEM} USER: <video>\nWhat moves? ASSISTANT: A square.</s>USER: Where to? ASSISTANT:"
    # The video block is moved in front of the text, as the original does; a system message replaces the default.
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Compare."}, video, {"type": "image"}]},
    ]
    text = tiny_processor.apply_chat_template(conversation, add_generation_prompt=True)
    assert text == "Be brief. USER: <video>\n<video>\nCompare. ASSISTANT:"
    assert tiny_processor.apply_chat_template([{"role": "user", "content": "Hi"}]) == f"{SYSTEM} USER: Hi "
    with pytest.raises(Exception, match="only have user and assistant turns"):
        tiny_processor.apply_chat_template([{"role": "tool", "content": "x"}])


@pytest.mark.parametrize("question", QUESTIONS)
def test_input_ids_equal_the_original_prompt(tiny_processor, clip, question):
    out = tiny_processor.apply_chat_template(
        [user(question, {"type": "video", "path": clip})],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
    )
    grid = out["video_grids"][0].tolist()
    run = [tiny_processor.video_token_id] * (1 + grid[1] * (grid[2] + 1))
    prompt = f"{SYSTEM} USER: " + "<image>" * 8 + "\n" + question + " ASSISTANT:"
    expected = original_input_ids(tiny_processor.tokenizer, prompt, [run] * 8)
    assert out["input_ids"][0].tolist() == expected
    assert out["attention_mask"].all()


def test_short_video_counts_the_zero_frames_with_the_crop_rule(tiny_processor, tmp_path):
    path = str(make_video(tmp_path / "short.mp4", num_frames=3, height=40, width=70))
    out = tiny_processor(text="<video>\nWhat?", videos=path, return_tensors="pt")
    # 3 real frames of 112 px landscape (grid 3x4 -> 16 tokens), then 5 all-zero frames: top-left 16x16 patches
    # clipped to the 8x8 grid -> 4x4 LSD grid -> 21 tokens each.
    assert out["video_grids"].tolist() == [[8, 3, 4]]
    assert int((out["input_ids"] == tiny_processor.video_token_id).sum()) == 3 * 16 + 5 * 21


def test_full_size_token_count_matches_the_reference(llama_tokenizer):
    processor = VideoPandaProcessor(video_processor=VideoPandaVideoProcessor(), tokenizer=llama_tokenizer)
    frames = np.zeros((3, 720, 1280, 3), dtype=np.uint8)
    out = processor(text="<video>\nHi", videos=[frames], return_tensors="pt")
    assert (
        int((out["input_ids"] == processor.video_token_id).sum()) == 3 * 154 + 5 * 73
    )  # 1280x720: 9x16 grid -> 154 tokens; zero frames 73


def test_several_videos_per_prompt_and_batches(tiny_processor, clip):
    array = moving_square_frames(12, 90, 40)
    conversations = [
        [user("Compare.", {"type": "video", "path": clip}, {"type": "video", "video": array})],
        [user("Just text, a much longer question than the other one?")],
        [user("And this?", {"type": "video", "video": torch.from_numpy(array).permute(0, 3, 1, 2)})],
    ]
    kwargs = {"add_generation_prompt": True, "tokenize": True, "return_dict": True, "return_tensors": "pt"}
    left = tiny_processor.apply_chat_template(
        conversations, processor_kwargs={"padding": True, "padding_side": "left"}, **kwargs
    )
    right = tiny_processor.apply_chat_template(
        conversations, processor_kwargs={"padding": True, "padding_side": "right"}, **kwargs
    )
    assert left["pixel_values_videos"].shape == (3, 8, 4, 112, 112)
    assert left["video_grids"].tolist() == [[8, 3, 4], [8, 4, 2], [8, 4, 2]]
    assert torch.equal(left["pixel_values_videos"][1], left["pixel_values_videos"][2])
    pad = tiny_processor.tokenizer.pad_token_id
    assert pad == tiny_processor.tokenizer.unk_token_id == 0
    for row in range(3):
        single = tiny_processor.apply_chat_template(conversations[row], **kwargs)["input_ids"][0]
        n = len(single)
        assert torch.equal(left["input_ids"][row, -n:], single) and (left["input_ids"][row, :-n] == pad).all()
        assert torch.equal(right["input_ids"][row, :n], single) and (right["input_ids"][row, n:] == pad).all()
        assert int(left["attention_mask"][row].sum()) == n
    counts = (left["input_ids"] == tiny_processor.video_token_id).sum(dim=1).tolist()
    assert counts == [8 * 16 + 8 * 13, 0, 8 * 13]


def test_assistant_tokens_mask_covers_only_answers(tiny_processor, clip):
    conversation = [
        user("What moves?", {"type": "video", "path": clip}),
        assistant("A red square."),
        user("Where?"),
        assistant("To the right."),
    ]
    out = tiny_processor.apply_chat_template(
        conversation, tokenize=True, return_dict=True, return_tensors="pt", return_assistant_tokens_mask=True
    )
    ids, mask = out["input_ids"][0], out["assistant_masks"][0].bool()
    assert mask.shape == ids.shape
    tokenizer = tiny_processor.tokenizer
    pieces = tokenizer.decode(ids[mask]).split("</s>")
    assert [p.strip() for p in pieces] == ["A red square.", "To the right.", ""]
    assert not mask[ids == tiny_processor.video_token_id].any()


def test_text_only_and_placeholder_count_errors(tiny_processor, clip):
    out = tiny_processor(text="Hello there", return_tensors="pt")
    assert out["input_ids"][0].tolist() == [1, 15043, 727]
    assert "pixel_values_videos" not in out
    with pytest.raises(ValueError, match="1 <video> placeholder\\(s\\) but 2 video"):
        tiny_processor(text="<video>\nHi", videos=[clip, clip])
    with pytest.raises(ValueError, match="2 <video> placeholder\\(s\\) but 0 video"):
        tiny_processor(text=["<video>", "<video>"])
    with pytest.raises(ValueError, match="images and videos together"):
        tiny_processor(text="<video><video>", videos=[clip], images=[np.zeros((8, 8, 3), np.uint8)])


def test_images_through_the_processor(tiny_processor):
    image = np.random.default_rng(0).integers(0, 256, size=(30, 60, 3), dtype=np.uint8)
    out = tiny_processor(text="<video>\nWhat is this?", images=image, return_tensors="pt")
    assert out["video_grids"].tolist() == [[1, 2, 4]]
    assert int((out["input_ids"] == tiny_processor.video_token_id).sum()) == 1 + 2 * 5


def test_decode_and_post_process(tiny_processor):
    ids = tiny_processor.tokenizer("A red square moves.", add_special_tokens=False).input_ids
    batch = torch.tensor([ids + [2], ids + [2]])
    assert tiny_processor.batch_decode(batch, skip_special_tokens=True) == ["A red square moves."] * 2
    assert tiny_processor.post_process_image_text_to_text(batch) == ["A red square moves."] * 2


def test_any_llama_family_tokenizer_gets_the_placeholder():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, "what": 3, "moves": 4, "?": 5}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    processor = VideoPandaProcessor(
        video_processor=VideoPandaVideoProcessor(size={"height": 56, "width": 56}), tokenizer=tokenizer
    )
    assert processor.video_token == "<video>" and processor.video_token_id == 6
    assert processor.chat_template is not None
    out = processor(text="<video> what moves ?", videos=np.zeros((1, 28, 28, 3), np.uint8), return_tensors="pt")
    assert out["input_ids"][0].tolist() == [6] * (1 + 2 * 3) + [3, 4, 5]
    # An existing token is reused, not added twice.
    again = VideoPandaProcessor(video_processor=processor.video_processor, tokenizer=tokenizer)
    assert again.video_token_id == 6 and len(tokenizer) == 7


def test_constructor_errors(llama_tokenizer):
    with pytest.raises(ValueError, match="needs both"):
        VideoPandaProcessor(video_processor=VideoPandaVideoProcessor())
    with pytest.raises(TypeError, match="Unexpected"):
        VideoPandaProcessor(video_processor=VideoPandaVideoProcessor(), tokenizer=llama_tokenizer, patch=3)


def test_save_and_load_keep_every_setting(tiny_processor, clip, tmp_path):
    video_processor = VideoPandaVideoProcessor(
        size={"height": 112, "width": 112},
        num_frames=4,
        frame_sampling="uniform",
        short_video_padding="repeat",
        return_teacher_inputs=True,
    )
    processor = VideoPandaProcessor(video_processor=video_processor, tokenizer=tiny_processor.tokenizer)
    processor.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "chat_template.jinja").is_file()
    loaded = VideoPandaProcessor.from_pretrained(tmp_path / "saved")
    assert loaded.video_processor.to_dict() == processor.video_processor.to_dict()
    assert loaded.chat_template == processor.chat_template
    assert (loaded.video_token, loaded.video_token_id) == ("<video>", 32000)
    assert loaded.tokenizer.pad_token == "<unk>"
    conversation = [user(" What moves?", {"type": "video", "path": clip})]
    kwargs = {"add_generation_prompt": True, "tokenize": True, "return_dict": True, "return_tensors": "pt"}
    before, after = (
        processor.apply_chat_template(conversation, **kwargs),
        loaded.apply_chat_template(conversation, **kwargs),
    )
    assert before.keys() == after.keys() and "teacher_pixel_values_videos" in after
    for key in before:
        assert torch.equal(before[key], after[key]), key
    assert after["pixel_values_videos"].shape[1] == 4


def test_processor_output_runs_the_model(tiny_processor, clip):
    """apply_chat_template with a path and with an array, straight into VideoPandaForConditionalGeneration."""
    from videopanda.modeling.modeling_videopanda import VideoPandaForConditionalGeneration

    from videopanda.testing import tiny_config

    torch.manual_seed(0)
    model = VideoPandaForConditionalGeneration(tiny_config()).eval()
    for video in ({"type": "video", "path": clip}, {"type": "video", "video": moving_square_frames(5, 50, 30)}):
        inputs = tiny_processor.apply_chat_template(
            [user("What moves?", video)],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
        )
        with torch.no_grad():
            logits = model(**inputs).logits
        assert logits.shape == (1, inputs["input_ids"].shape[1], model.config.text_config.vocab_size)
        assert torch.isfinite(logits).all()
        generated = model.generate(**inputs, max_new_tokens=2, do_sample=False)
        assert generated.shape == (1, inputs["input_ids"].shape[1] + 2)


def test_processor_kwargs_reach_the_video_processor(tiny_processor, clip, tmp_path):
    out = tiny_processor.apply_chat_template(
        [user("Hi", {"type": "video", "path": clip})],
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        processor_kwargs={
            "num_frames": 4,
            "frame_sampling": "uniform",
            "videos_kwargs": {"return_teacher_inputs": True},
        },
    )
    assert out["pixel_values_videos"].shape == (1, 4, 4, 112, 112)
    assert out["teacher_pixel_values_videos"].shape == (1, 4, 4, 56, 56)
    assert int((out["input_ids"] == tiny_processor.video_token_id).sum()) == 4 * 16
    # An image block (path) is a one-frame video behind the same placeholder.
    from PIL import Image

    Image.fromarray(np.zeros((30, 50, 3), np.uint8)).save(tmp_path / "image.png")
    conversation = [user("What is this?", {"type": "image", "path": str(tmp_path / "image.png")})]
    out = tiny_processor.apply_chat_template(
        conversation, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert out["video_grids"].tolist() == [[1, 3, 4]]


def test_token_counts_without_pixels_match_the_processor(tiny_processor):
    sizes = [(8, 40, 70), (3, 90, 40), (1, 30, 60), (8, 64, 64)]
    counts = tiny_processor._get_num_multimodal_tokens(video_sizes=sizes)["num_video_tokens"]
    for (frames, height, width), count in zip(sizes, counts):
        video = np.zeros((frames, height, width, 3), np.uint8)
        out = tiny_processor(text="<video>", videos=[video], return_tensors="pt")
        assert int((out["input_ids"] == tiny_processor.video_token_id).sum()) == count


def test_a_custom_video_token_is_used_by_the_template(llama_tokenizer, tmp_path):
    processor = VideoPandaProcessor(
        video_processor=VideoPandaVideoProcessor(size={"height": 56, "width": 56}),
        tokenizer=llama_tokenizer,
        video_token="<vid>",
    )
    conversation = [user("Hi", {"type": "video", "video": np.zeros((1, 28, 28, 3), np.uint8)})]
    assert processor.apply_chat_template(conversation, add_generation_prompt=True).endswith(
        "USER: <vid>\nHi ASSISTANT:"
    )
    out = processor.apply_chat_template(
        conversation, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    assert int((out["input_ids"] == processor.video_token_id).sum()) == 1 + 2 * 3
    processor.save_pretrained(tmp_path)
    assert VideoPandaProcessor.from_pretrained(tmp_path).video_token == "<vid>"
