"""Knowledge distillation: a student learns from the softened outputs of teacher runs.

``loss = CE(y, z) + weight * T^2 * KL(p_teacher || softmax(z / T))`` with ``p_teacher`` the
softmax of the teachers' mean logits divided by ``T`` (an ensemble averages logits). The teachers'
logits are computed once per training example, before training, from each teacher run's own
merged model and normaliser, and saved with the student's run (``teacher_logits.npy``); they
travel through the input pipeline as extra target columns, so mixup mixes them with the same
``lam`` and partner as the inputs and the one-hot targets (the teacher target of a mixed example
is the mix of the two examples' teacher distributions). A teacher must have been trained on
exactly the student's training speakers (and validated and tested on the same ones): anything else
would leak test speakers into the student through the teacher, so it is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
from keras import ops


class TeacherError(ValueError):
    """A teacher run that cannot teach this student (other split, other labels, not a run)."""


def teacher_logits(
    teachers, features: np.ndarray, labels: list[str], split_speakers: dict
) -> np.ndarray:
    """The teachers' mean logits on raw (un-normalised) training features.

    Args:
        teachers: Run folders of the teachers.
        features: The student's raw training features ``[N, frames, n_mels]``.
        labels: The student's classes, in logit order.
        split_speakers: The student's split (``train_speakers``, ``val_speakers``,
            ``test_speakers``), as :func:`keras_hrf.training.runs.split_speakers` gives it.

    Returns:
        float32 ``[N, classes]``.

    Raises:
        TeacherError: a teacher that is not a run folder, has other labels, or was trained,
            validated or tested on other speakers (the message names the difference).
    """
    out = []
    for teacher in teachers:
        path = Path(teacher)
        cfg_file = path / "config.json"
        if not cfg_file.is_file() or not (path / "model_merged.keras").is_file():
            raise TeacherError(
                f"teacher {path} is not a finished run folder (no config.json or "
                "model_merged.keras); train the teacher first"
            )
        cfg = json.loads(cfg_file.read_text())
        if list(cfg["labels"]) != list(labels):
            raise TeacherError(f"teacher {path} has classes {cfg['labels']}, the student {labels}")
        theirs = cfg.get("split")
        if theirs is None:
            raise TeacherError(f"teacher {path} does not record its split; retrain it")
        for part in ("train_speakers", "val_speakers", "test_speakers"):
            if sorted(theirs[part]) != sorted(split_speakers[part]):
                extra = sorted(set(theirs[part]) - set(split_speakers[part]))
                missing = sorted(set(split_speakers[part]) - set(theirs[part]))
                raise TeacherError(
                    f"teacher {path} was trained on another split: its {part} differ from the "
                    f"student's (teacher only: {extra[:6]}, student only: {missing[:6]}); a "
                    "teacher must come from the same fold (and validation draw)"
                )
        from data_prep.features import Normalizer

        model = keras.models.load_model(path / "model_merged.keras", safe_mode=True)
        norm = Normalizer.from_dict(cfg["normalizer"])
        out.append(model.predict(norm.transform(features), verbose=0, batch_size=256))
    return np.mean(out, axis=0).astype(np.float32)


def soften(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / T)`` in float64 then float32 (the teacher targets)."""
    z = np.asarray(logits, np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(axis=-1, keepdims=True)).astype(np.float32)


@keras.saving.register_keras_serializable(package="keras_hrf")
class DistillationLoss(keras.losses.Loss):
    """Cross-entropy on the first ``num_classes`` target columns plus ``weight * T^2 * KL`` to
    the teacher distribution in the last ``num_classes`` columns.

    ``y_true``: ``[B, 2 * num_classes]`` (one-hot or mixed targets, then teacher probabilities at
    temperature ``T``); ``y_pred``: logits ``[B, num_classes]``.

    Args:
        num_classes: Classes.
        temperature: ``T`` of the softened distributions.
        weight: Weight of the distillation term.
        label_smoothing: Of the cross-entropy term.
    """

    def __init__(
        self,
        num_classes: int,
        temperature: float = 2.0,
        weight: float = 1.0,
        label_smoothing: float = 0.0,
        name: str = "distillation",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.temperature = float(temperature)
        self.weight = float(weight)
        self.label_smoothing = float(label_smoothing)
        self._ce = keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=label_smoothing, reduction=None
        )

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        hard, teacher = y_true[:, : self.num_classes], y_true[:, self.num_classes :]
        ce = self._ce(hard, y_pred)
        log_student = ops.log_softmax(y_pred / self.temperature, axis=-1)
        # Exact KL (not cross-entropy): zero when the student reproduces the teacher.
        safe = ops.where(teacher > 0, teacher, ops.ones_like(teacher))
        kl = ops.sum(teacher * (ops.log(safe) - log_student), axis=-1)
        return ce + self.weight * self.temperature**2 * kl

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "temperature": self.temperature,
            "weight": self.weight,
            "label_smoothing": self.label_smoothing,
        }
