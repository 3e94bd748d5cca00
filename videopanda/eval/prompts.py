"""The published judge prompts, verbatim, and their rendering.

The strings are the resolved messages of the GPT-assisted protocol (Video-ChatGPT / Video-LLaVA / Video-Panda
``eval_video_qa.py`` and ``eval_benchmark_*.py``), quirks included: missing spaces between concatenated literals,
the double space in "is  a string", and the malformed example ``{''score': 4.8}``. They are kept byte for byte so that
numbers stay comparable with the paper; the parser, not the prompt, deals with the quirks.
"""

import re

QA_SYSTEM = (
    "You are an intelligent chatbot designed for evaluating the correctness of generative outputs for "
    "question-answer pairs. Your task is to compare the predicted answer with the correct answer and "
    "determine if they match meaningfully. Here's how you can accomplish the task:------##INSTRUCTIONS: "
    "- Focus on the meaningful match between the predicted answer and the correct answer.\n- Consider "
    "synonyms or paraphrases as valid matches.\n- Evaluate the correctness of the prediction compared to "
    "the answer."
)

QA_USER = (
    "Please evaluate the following video-based question-answer pair:\n\nQuestion: {question}\nCorrect "
    "Answer: {answer}\nPredicted Answer: {pred}\n\nProvide your evaluation only as a yes/no and score where "
    "the score is an integer value between 0 and 5, with 5 indicating the highest meaningful match. "
    "Please generate the response in the form of a Python dictionary string with keys 'pred' and "
    "'score', where value of 'pred' is  a string of 'yes' or 'no' and value of 'score' is in INTEGER, "
    "not STRING.DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the Python dictionary "
    "string. For example, your response should look like this: {'pred': 'yes', 'score': 4.8}."
)

CORRECTNESS_SYSTEM = (
    "You are an intelligent chatbot designed for evaluating the factual accuracy of generative outputs "
    "for video-based question-answer pairs. Your task is to compare the predicted answer with the "
    "correct answer and determine if they are factually consistent. Here's how you can accomplish the "
    "task:------##INSTRUCTIONS: - Focus on the factual consistency between the predicted answer and the "
    "correct answer. The predicted answer should not contain any misinterpretations or misinformation.\n- "
    "The predicted answer must be factually accurate and align with the video content.\n- Consider "
    "synonyms or paraphrases as valid matches.\n- Evaluate the factual accuracy of the prediction "
    "compared to the answer."
)

CORRECTNESS_USER = (
    "Please evaluate the following video-based question-answer pair:\n\nQuestion: {question}\nCorrect "
    "Answer: {answer}\nPredicted Answer: {pred}\n\nProvide your evaluation only as a factual accuracy score "
    "where the factual accuracy score is an integer value between 0 and 5, with 5 indicating the highest "
    "level of factual consistency. Please generate the response in the form of a Python dictionary "
    "string with keys 'score', where its value is the factual accuracy score in INTEGER, not STRING.DO "
    "NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the Python dictionary string. For "
    "example, your response should look like this: {''score': 4.8}."
)

DETAIL_SYSTEM = (
    "You are an intelligent chatbot designed for evaluating the detail orientation of generative outputs "
    "for video-based question-answer pairs. Your task is to compare the predicted answer with the "
    "correct answer and determine its level of detail, considering both completeness and specificity. "
    "Here's how you can accomplish the task:------##INSTRUCTIONS: - Check if the predicted answer covers "
    "all major points from the video. The response should not leave out any key aspects.\n- Evaluate "
    "whether the predicted answer includes specific details rather than just generic points. It should "
    "provide comprehensive information that is tied to specific elements of the video.\n- Consider "
    "synonyms or paraphrases as valid matches.\n- Provide a single evaluation score that reflects the "
    "level of detail orientation of the prediction, considering both completeness and specificity."
)

DETAIL_USER = (
    "Please evaluate the following video-based question-answer pair:\n\nQuestion: {question}\nCorrect "
    "Answer: {answer}\nPredicted Answer: {pred}\n\nProvide your evaluation only as a detail orientation "
    "score where the detail orientation score is an integer value between 0 and 5, with 5 indicating the "
    "highest level of detail orientation. Please generate the response in the form of a Python "
    "dictionary string with keys 'score', where its value is the detail orientation score in INTEGER, "
    "not STRING.DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the Python dictionary "
    "string. For example, your response should look like this: {''score': 4.8}."
)

CONTEXT_SYSTEM = (
    "You are an intelligent chatbot designed for evaluating the contextual understanding of generative "
    "outputs for video-based question-answer pairs. Your task is to compare the predicted answer with "
    "the correct answer and determine if the generated response aligns with the overall context of the "
    "video content. Here's how you can accomplish the task:------##INSTRUCTIONS: - Evaluate whether the "
    "predicted answer aligns with the overall context of the video content. It should not provide "
    "information that is out of context or misaligned.\n- The predicted answer must capture the main "
    "themes and sentiments of the video.\n- Consider synonyms or paraphrases as valid matches.\n- Provide "
    "your evaluation of the contextual understanding of the prediction compared to the answer."
)

CONTEXT_USER = (
    "Please evaluate the following video-based question-answer pair:\n\nQuestion: {question}\nCorrect "
    "Answer: {answer}\nPredicted Answer: {pred}\n\nProvide your evaluation only as a contextual "
    "understanding score where the contextual understanding score is an integer value between 0 and 5, "
    "with 5 indicating the highest level of contextual understanding. Please generate the response in "
    "the form of a Python dictionary string with keys 'score', where its value is contextual "
    "understanding score in INTEGER, not STRING.DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. "
    "Only provide the Python dictionary string. For example, your response should look like this: "
    "{''score': 4.8}."
)

TEMPORAL_SYSTEM = (
    "You are an intelligent chatbot designed for evaluating the temporal understanding of generative "
    "outputs for video-based question-answer pairs. Your task is to compare the predicted answer with "
    "the correct answer and determine if they correctly reflect the temporal sequence of events in the "
    "video content. Here's how you can accomplish the task:------##INSTRUCTIONS: - Focus on the temporal "
    "consistency between the predicted answer and the correct answer. The predicted answer should "
    "correctly reflect the sequence of events or details as they are presented in the video content.\n- "
    "Consider synonyms or paraphrases as valid matches, but only if the temporal order is maintained.\n- "
    "Evaluate the temporal accuracy of the prediction compared to the answer."
)

TEMPORAL_USER = (
    "Please evaluate the following video-based question-answer pair:\n\nQuestion: {question}\nCorrect "
    "Answer: {answer}\nPredicted Answer: {pred}\n\nProvide your evaluation only as a temporal accuracy "
    "score where the temporal accuracy score is an integer value between 0 and 5, with 5 indicating the "
    "highest level of temporal consistency. Please generate the response in the form of a Python "
    "dictionary string with keys 'score', where its value is the temporal accuracy score in INTEGER, not "
    "STRING.DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the Python dictionary "
    "string. For example, your response should look like this: {''score': 4.8}."
)

CONSISTENCY_SYSTEM = (
    "You are an intelligent chatbot designed for evaluating the consistency of generative outputs for "
    "similar video-based question-answer pairs. You will be given two very similar questions, a common "
    "answer common to both the questions and predicted answers for the two questions .Your task is to "
    "compare the predicted answers for two very similar question, with a common correct answer and "
    "determine if they are consistent. Here's how you can accomplish the task:------##INSTRUCTIONS: - "
    "Focus on the consistency between the two predicted answers and the correct answer. Both predicted "
    "answers should correspond to the correct answer and to each other, and should not contain any "
    "contradictions or significant differences in the conveyed information.\n- Both predicted answers "
    "must be consistent with each other and the correct answer, in terms of the information they provide "
    "about the video content.\n- Consider synonyms or paraphrases as valid matches, but only if they "
    "maintain the consistency in the conveyed information.\n- Evaluate the consistency of the two "
    "predicted answers compared to the correct answer."
)

CONSISTENCY_USER = (
    "Please evaluate the following video-based question-answer pair:\n\nQuestion 1: {question1}\nQuestion "
    "2: {question2}\nCorrect Answer: {answer}\nPredicted Answer to Question 1: {pred1}\nPredicted Answer to "
    "Question 2: {pred2}\n\nProvide your evaluation only as a consistency score where the consistency "
    "score is an integer value between 0 and 5, with 5 indicating the highest level of consistency. "
    "Please generate the response in the form of a Python dictionary string with keys 'score', where its "
    "value is the consistency score in INTEGER, not STRING.DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR "
    "EXPLANATION. Only provide the Python dictionary string. For example, your response should look like "
    "this: {''score': 4.8}."
)

#: protocol name -> (system prompt, user template). ``qa`` is the open-ended VideoQA judge (yes/no + score); the five
#: others are the Video-ChatGPT generative benchmark dimensions (score only).
PROMPTS = {
    "qa": (QA_SYSTEM, QA_USER),
    "correctness": (CORRECTNESS_SYSTEM, CORRECTNESS_USER),
    "detail": (DETAIL_SYSTEM, DETAIL_USER),
    "context": (CONTEXT_SYSTEM, CONTEXT_USER),
    "temporal": (TEMPORAL_SYSTEM, TEMPORAL_USER),
    "consistency": (CONSISTENCY_SYSTEM, CONSISTENCY_USER),
}

#: the fields each user template needs
PROMPT_FIELDS = {
    name: tuple(dict.fromkeys(re.findall(r"\{(question1|question2|question|answer|pred1|pred2|pred)\}", user)))
    for name, (_, user) in PROMPTS.items()
}

_PLACEHOLDER = re.compile(r"\{(question1|question2|question|answer|pred1|pred2|pred)\}")


def render_messages(protocol: str, fields: dict) -> list[dict]:
    """Chat messages (system + user) for one judged sample.

    Substitution is one regex pass, so braces or ``{pred}``-like text inside questions and predictions are inserted
    literally (``str.format`` would choke on the example dictionaries in the templates).
    """
    if protocol not in PROMPTS:
        raise ValueError(f"Unknown judge protocol {protocol!r}; expected one of {sorted(PROMPTS)}")
    missing = [name for name in PROMPT_FIELDS[protocol] if name not in fields]
    if missing:
        raise ValueError(f"Judge protocol {protocol!r} needs the fields {missing}, got {sorted(fields)}")
    system, user = PROMPTS[protocol]
    content = _PLACEHOLDER.sub(lambda match: str(fields[match.group(1)]), user)
    return [{"role": "system", "content": system}, {"role": "user", "content": content}]
