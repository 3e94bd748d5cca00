"""Packaging for videopanda.

The repository keeps the design-card layout (``modeling_videopanda/``, ``processing/``, ``train/``, ``model_cards/``)
but everything installs under one distinctive import root, so nothing generic such as ``train`` or ``processing``
lands in site-packages:

    modeling_videopanda/  ->  videopanda.modeling
    processing/           ->  videopanda.processing
    train/                ->  videopanda.train
    model_cards/          ->  videopanda.model_cards
    videopanda/           ->  videopanda (CLI, converter, quickstart, evaluation, Hub helpers)
"""

from setuptools import find_packages, setup

PACKAGE_DIRS = {
    "videopanda": "videopanda",
    "videopanda.modeling": "modeling_videopanda",
    "videopanda.processing": "processing",
    "videopanda.train": "train",
    "videopanda.model_cards": "model_cards",
}
SUBPACKAGES = {
    f"{root}.{sub}": f"{path}/{sub.replace('.', '/')}"
    for root, path in PACKAGE_DIRS.items()
    for sub in find_packages(path)
}

setup(
    name="videopanda",
    version="0.1.0",
    description="Video-Panda (CVPR 2025), the encoder-free video-language model, native to Hugging Face transformers",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=[*PACKAGE_DIRS, *SUBPACKAGES],
    package_dir={**PACKAGE_DIRS, **SUBPACKAGES},
    package_data={"": ["*.jinja", "*.json", "*.yaml", "*.md", "*.txt", "*.safetensors"]},
    include_package_data=True,
    install_requires=[
        "transformers>=5.23,<5.24",  # 5.24 renamed output fields (`cache`); not yet supported
        "torch>=2.6",
        "torchvision>=0.21",
        "accelerate>=1.10",
        "datasets>=4.0",
        "trl>=1.16",
        "peft>=0.17",
        "safetensors>=0.5",
        "huggingface-hub>=1.0",
        "av>=14",
        "tokenizers>=0.22",
        "numpy>=1.26",
        "pillow>=10",
        "tqdm>=4.66",
        "matplotlib>=3.8",
        "tensorboard>=2.15",
    ],
    extras_require={
        # lmms-eval itself is installed with --no-deps from requirements/lmms-eval.txt (it pins av<16).
        "eval": ["openai>=1.50"],
        "demo": ["gradio>=5"],
        "test": ["pytest>=8", "playwright>=1.50", "openai>=1.50", "gradio>=5", "gguf>=0.10"],
    },
    entry_points={
        "console_scripts": ["videopanda=videopanda.cli:main"],
        "lmms_eval.models": ["videopanda = videopanda.eval.lmms_manifest:manifest"],
    },
)
