"""Processor output straight into the model: a left-padded batch of different clips (landscape, portrait, a clip
shorter than the frame budget, so with all-zero padding frames, and a single image) generates exactly what each
conversation generates alone."""

import numpy as np
import torch

from videopanda.testing import moving_square_frames, tiny_model

NEW_TOKENS = 5


def conversation(question, visual):
    return [{"role": "user", "content": [visual, {"type": "text", "text": question}]}]


def test_left_padded_processor_batch_equals_single_conversations(tiny_processor):
    model = tiny_model(seed=4)
    model.generation_config.pad_token_id = tiny_processor.tokenizer.pad_token_id or 0
    model.generation_config.eos_token_id = None
    image = np.asarray(moving_square_frames(1, 60, 90, seed=3)[0])
    conversations = [
        conversation("What moves?", {"type": "video", "video": moving_square_frames(12, 40, 90, seed=1)}),
        conversation("Where does it go?", {"type": "video", "video": moving_square_frames(12, 90, 40, seed=2)}),
        conversation("How many frames?", {"type": "video", "video": moving_square_frames(3, 56, 56, seed=4)}),
        conversation("What colour is it?", {"type": "video", "video": image[None]}),  # an image: a 1-frame video
    ]
    kwargs = {"add_generation_prompt": True, "tokenize": True, "return_dict": True, "return_tensors": "pt"}
    batch = tiny_processor.apply_chat_template(
        conversations, processor_kwargs={"padding": True, "padding_side": "left"}, **kwargs
    )
    assert batch["input_ids"].shape[0] == 4
    with torch.no_grad():
        outputs = model(**batch)
        generated = model.generate(**batch, max_new_tokens=NEW_TOKENS, do_sample=False)
    # The model's token layout agrees with the processor's placeholder runs, frame by frame.
    assert int(outputs.tokens_per_frame.sum()) == int((batch["input_ids"] == model.config.video_token_id).sum())
    prompt_length = batch["input_ids"].shape[1]
    for row, single_conversation in enumerate(conversations):
        single = tiny_processor.apply_chat_template([single_conversation], **kwargs)
        with torch.no_grad():
            alone = model.generate(**single, max_new_tokens=NEW_TOKENS, do_sample=False)
        assert torch.equal(generated[row, prompt_length:], alone[0, single["input_ids"].shape[1] :]), row
