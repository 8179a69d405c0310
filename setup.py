"""Distribution `keras-hrf`: HRF-trained lightweight Transformers for on-device speech emotion
recognition, merged (deHRF) and exported as int8 TFLite for TFLite Micro and LiteRT."""

from setuptools import find_packages, setup

setup(
    name="keras-hrf",
    version="0.1.0",
    description=(
        "Speech emotion recognition with High-Rank-Factorized lightweight Transformers, "
        "merged for deployment and exported to int8 TFLite (TFLite Micro, LiteRT)."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["keras_hrf", "keras_hrf.*", "data_prep", "data_prep.*"]),
    install_requires=[
        # Keras 3 on TensorFlow 2.21; tf_keras / tensorflow-model-optimization are deliberately
        # absent (see DESIGN.md: tfmot 0.8.1 rejects Keras 3 models).
        "tensorflow>=2.21,<2.22",
        "numpy>=1.26,<3",
        "pandas>=2.1,<4",
        "librosa>=0.11,<0.12",
        "soundfile>=0.12",
        "soxr>=0.3",
        "scipy>=1.11",
        "scikit-learn>=1.3",
        "threadpoolctl>=3",  # one BLAS thread per feature process (benchmarks/features.py)
        "matplotlib>=3.8",
        "tqdm>=4.66",
        "ai-edge-litert>=2.3,<2.4",
        # The TFLite Micro host interpreter is only published as nightlies; this one is tested.
        "tflite-micro==0.dev20261023182759",
        "cmsisdsp>=1.10,<1.11",
        "statsmodels>=0.14",  # Holm's adjustment of the experiments' paired tests
    ],
    extras_require={
        "test": [
            "pytest>=8",
            # One worker per core, a test file per worker (pyproject's addopts).
            "pytest-xdist>=3.5,<4",
            # Session fixtures built once for all the workers (tests/support/shared.py).
            "filelock>=3.12",
            "ruff>=0.6",
            "nbclient>=0.10",
            "nbformat>=5.10",
            "ipykernel>=6",
            "import-linter>=2.1",  # the import contract of pyproject.toml
        ],
        # The cluster executor of `reproduce` / `prepare` (keras_hrf.experiments.executors,
        # data_prep.cluster); never imported without --executor ray.
        "ray": ["ray>=2.9,<3"],
    },
    entry_points={"console_scripts": ["keras-hrf=keras_hrf.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
