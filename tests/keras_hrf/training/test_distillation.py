"""Knowledge distillation: the loss, the teacher's split check, the cached teacher logits."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from data_prep import splits
from keras_hrf.training import TrainConfig, fit, save_run
from keras_hrf.training.distillation import DistillationLoss, TeacherError, soften


def test_a_teacher_equal_to_the_student_adds_zero_kl():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4)).astype("float32")
    y = np.eye(4, dtype="float32")[[0, 1, 2, 3, 1]]
    for t in (1.0, 2.0, 4.0):
        loss = DistillationLoss(4, temperature=t, weight=3.0, reduction=None)
        got = np.asarray(loss(np.concatenate([y, soften(z, t)], 1), z))
        ce = keras.losses.CategoricalCrossentropy(from_logits=True, reduction=None)(y, z)
        np.testing.assert_allclose(got, np.asarray(ce), atol=1e-5)
        # Another teacher distribution adds a positive term.
        other = soften(z[::-1], t)
        assert np.all(np.asarray(loss(np.concatenate([y, other], 1), z)) >= np.asarray(ce) - 1e-6)
    assert DistillationLoss.from_config(loss.get_config()).temperature == 4.0


@pytest.fixture(scope="module")
def teacher_run(synthetic_features, tiny, tmp_path_factory):
    feats, manifest, params = synthetic_features
    folds = splits.speaker_kfold(manifest, n_folds=3, seed=0)
    cfg = TrainConfig(epochs=1, model_overrides=tiny, seed=0)
    result = fit(cfg, feats, manifest, folds[0], feature_params=params, progress=False)
    return save_run(result, tmp_path_factory.mktemp("teacher") / "run"), folds


def test_the_student_learns_from_cached_teacher_logits(synthetic_features, tiny, teacher_run):
    feats, manifest, params = synthetic_features
    teacher, folds = teacher_run
    cfg = TrainConfig(epochs=1, model_overrides=tiny, seed=1, teacher=(str(teacher),), mixup=0.4)
    student = fit(cfg, feats, manifest, folds[0], feature_params=params, progress=False)
    assert student.teacher_logits.shape == (len(folds[0].train), len(student.labels))
    assert cfg.variant == "light+kd"
    out = save_run(student, teacher.parent / "student")
    assert np.load(out / "teacher_logits.npy").shape == student.teacher_logits.shape


def test_a_teacher_from_another_split_is_refused(synthetic_features, tiny, teacher_run):
    feats, manifest, params = synthetic_features
    teacher, folds = teacher_run
    cfg = TrainConfig(epochs=1, model_overrides=tiny, teacher=(str(teacher),))
    with pytest.raises(TeacherError, match="another split: its train_speakers differ"):
        fit(cfg, feats, manifest, folds[1], feature_params=params, progress=False)
    with pytest.raises(TeacherError, match="not a finished run folder"):
        bad = dataclasses.replace(cfg, teacher=(str(teacher.parent / "nope"),))
        fit(bad, feats, manifest, folds[0], feature_params=params, progress=False)
