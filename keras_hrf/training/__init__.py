"""Training: configuration, input pipeline, ``fit``, metrics, run folders, QAT fine-tuning.

- :mod:`~keras_hrf.training.config`: :class:`TrainConfig`;
- :mod:`~keras_hrf.training.pipeline`: class balance, SpecAugment, ``tf.data``, the validation
  callback;
- :mod:`~keras_hrf.training.optimizer`: AdamW over the warm-up + cosine schedule, the EMA;
- :mod:`~keras_hrf.training.trainer`: :func:`fit` -> :class:`RunResult`;
- :mod:`~keras_hrf.training.metrics`: WA / UA / macro-F1;
- :mod:`~keras_hrf.training.results`: :class:`RunMetrics` (``metrics.json``), :class:`RunResult`;
- :mod:`~keras_hrf.training.runs`: run folders (:func:`save_run`, :func:`load_run`);
- :mod:`~keras_hrf.training.qat_finetune`: quantization-aware fine-tuning of a merged model.
"""

from keras_hrf.training.config import TrainConfig
from keras_hrf.training.metrics import classification_metrics, unweighted_accuracy
from keras_hrf.training.pipeline import Augmentation
from keras_hrf.training.qat_finetune import QATConfig, fine_tune
from keras_hrf.training.results import RunMetrics, RunResult, SplitMetrics
from keras_hrf.training.runs import LoadedRun, load_run, read_metrics, save_run
from keras_hrf.training.trainer import fit

__all__ = [
    "Augmentation",
    "LoadedRun",
    "QATConfig",
    "RunMetrics",
    "RunResult",
    "SplitMetrics",
    "TrainConfig",
    "classification_metrics",
    "fine_tune",
    "fit",
    "load_run",
    "read_metrics",
    "save_run",
    "unweighted_accuracy",
]
