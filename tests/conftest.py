"""Session-wide fixtures shared by the whole suite.

TensorFlow import and librosa's first feature call are slow, so expensive artefacts (the synthetic
corpus, its features, tiny trained models) are built once per session here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Exports in tests build no firmware unless a test asks for it (firmware=...): with the toolchain
# present, "auto" would build and run it for every export of every test (tens of seconds each).
# tests/keras_hrf/export/test_firmware_report.py tests the default itself.
os.environ.setdefault("KERAS_HRF_FIRMWARE", "off")

#: Test files that take longest (pytest --durations=0 on this 2-core machine, summed per file:
#: 279, 217, 105, 102, 104, 83, 72, 62 and 47 s of the suite's 1,268), handed to the xdist
#: workers first so that they finish together instead of one waiting for the other's last long
#: file; xdist's own order is by number of tests (``--no-loadscope-reorder`` in pyproject.toml
#: keeps this one). test_export.py after the others that use the ``light`` fixture's models: a
#: second worker asking for them first would wait while the first builds them.
SLOW_FILES_FIRST = (
    "keras_hrf/export/test_firmware_report.py",
    "keras_hrf/experiments/test_executors.py",
    "keras_hrf/cli/test_cli.py",
    "test_notebooks.py",
    "keras_hrf/export/test_export.py",
    "keras_hrf/test_reparam.py",
    "keras_hrf/training/test_training.py",
    "tflite/test_micro.py",
    "keras_hrf/experiments/test_reproduce.py",
)


def pytest_collection_modifyitems(config, items):
    """The files of :data:`SLOW_FILES_FIRST` first, in that order; the rest as collected."""
    tests = Path(__file__).parent
    rank = {name: i for i, name in enumerate(SLOW_FILES_FIRST)}

    def key(item):
        try:
            return rank.get(item.path.relative_to(tests).as_posix(), len(rank))
        except ValueError:  # a test outside tests/ (a path given on the command line)
            return len(rank)

    items.sort(key=key)  # stable: every file's tests stay together and in order


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker per core, plus one. Much of the suite waits on other processes
    (QEMU, the Ray nodes, notebook kernels, compilers, TFLM's interpreter in a subprocess);
    the extra worker runs while another waits."""
    return len(os.sched_getaffinity(0)) + 1


#: Environment variable that points at the RAVDESS copy (../shared/data/ravdess_speech_16k);
#: tests that need real data skip only when it is unset.
RAVDESS_ENV = "KERAS_HRF_RAVDESS"


@pytest.fixture(scope="session")
def ravdess_root() -> Path:
    """Root of the real RAVDESS speech corpus, or skip when the variable is unset."""
    value = os.environ.get(RAVDESS_ENV)
    if not value:
        pytest.skip(f"{RAVDESS_ENV} is not set (path of ravdess_speech_16k)")
    root = Path(value)
    if not root.is_dir():
        pytest.fail(f"{RAVDESS_ENV}={value} is set but is not a folder")
    return root


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small synthetic corpus (real 16 kHz WAV files) shared by the session."""
    from data_prep import synthetic

    out = tmp_path_factory.mktemp("synthetic")
    synthetic.generate(out, speakers=6, per_class=4, seed=0)
    return out


#: Emotions of the streaming tests: the three most distinct synthetic speaking styles (angry is
#: loud and tense, sad soft and breathy, fearful high and breathy). With the tiny model of
#: ``stream_model``, 95 % of held-out 3-s windows were right; angry and happy (both loud, high)
#: are confused too often for a timeline test.
STREAM_EMOTIONS = ("angry", "sad", "fearful")
#: Takes 0..STREAM_TRAIN_TAKES-1 of each emotion train the model; later takes are held out.
STREAM_TRAIN_TAKES = 20


def stream_utterance(emotion: str, take: int):
    """One synthetic utterance (float32, 16 kHz) of speaker 1, generated in memory."""
    import numpy as np

    from data_prep import synthetic

    speaker = synthetic.make_speaker(1, seed=0)
    emo_index = list(synthetic.EMOTION_STYLES).index(emotion)
    rng = np.random.default_rng([0, 2, 1, emo_index, take])
    return synthetic.synthesize_utterance(
        speaker, synthetic.EMOTION_STYLES[emotion], rng, 16000, (2.0, 3.0)
    )


@pytest.fixture(scope="session")
def stream_model(tmp_path_factory):
    """A tiny int8 model that tells :data:`STREAM_EMOTIONS` apart, exported with its tables.

    Trained on 1-s windows (every 0.4 s) of long single-emotion recordings - concatenated takes
    of one speaker - so that it sees what a sliding window over a stream sees. Returns a
    namespace: ``export_dir``, ``labels``, ``params``, ``normalizer``, ``model`` (Keras, float)
    and ``utterance(emotion, take)``.
    """
    import types

    import keras
    import numpy as np

    from data_prep.features import FeatureParams, Normalizer, log_mel
    from keras_hrf import models, tflite

    # 1-s windows (100 frames) instead of the default 3 s: a third of the training cost, and a
    # non-default input length that the stream, the tables and the front-end must follow.
    params = FeatureParams(frames=100)
    labels = list(STREAM_EMOTIONS)
    x, y = [], []
    for index, emotion in enumerate(labels):
        signal = np.concatenate([stream_utterance(emotion, t) for t in range(STREAM_TRAIN_TAKES)])
        feats = log_mel(signal, params)
        for start in range(0, feats.shape[0] - params.frames + 1, 40):
            x.append(feats[start : start + params.frames])
            y.append(index)
    x, y = np.stack(x), np.asarray(y)
    normalizer = Normalizer.fit(x, params)
    xn = normalizer.transform(x)

    keras.utils.set_random_seed(0)
    model = models.build(
        "conv_transformer",
        "light",
        input_shape=(params.frames, params.n_mels),
        num_classes=len(labels),
        seed=0,
        d_model=16,
        ffn_dim=32,
        num_heads=2,
        num_blocks=1,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(xn, y, batch_size=32, epochs=8, verbose=0, shuffle=True)
    out = tmp_path_factory.mktemp("stream_model") / "device"
    tflite.export(
        model,
        out,
        representative_data=xn,
        labels=labels,
        feature_params=params,
        normalizer=normalizer,
        samples=xn[::15],
        num_samples=64,
    )
    return types.SimpleNamespace(
        export_dir=out,
        labels=labels,
        params=params,
        normalizer=normalizer,
        model=model,
        utterance=stream_utterance,
    )
