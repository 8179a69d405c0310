"""Log-Mel features: the parameters (a device contract), the computation, a cache and a normaliser.

One module per concept:

- :mod:`~data_prep.features.params`: :class:`FeatureParams`, every number the device must
  reproduce; JSON round-trip and a stable :meth:`~FeatureParams.fingerprint`.
- :mod:`~data_prep.features.dsp`: :func:`window`, :func:`mel_filters` (reused by the device
  front-end), :func:`log_mel`, :func:`fix_length`, :func:`features_of`: one signal ->
  ``[frames, n_mels]``.
- :mod:`~data_prep.features.cache`: the on-disk cache (one atomic ``.npy`` per file).
- :mod:`~data_prep.features.pool`: the caller plus spawned helper processes.
- :mod:`~data_prep.features.extract`: :func:`extract`, a manifest -> ``[N, frames, n_mels]``
  with the cache and per-file error reports.
- :mod:`~data_prep.features.normalizer`: :class:`Normalizer`, per-mel mean/std fitted on a
  training split.
"""

from data_prep.features.cache import cache_folder, cache_key
from data_prep.features.dsp import features_of, fix_length, log_mel, mel_filters, window
from data_prep.features.extract import extract
from data_prep.features.normalizer import DEFAULT_EXCLUDE_FLOOR, Normalizer
from data_prep.features.params import (
    CROP_MODES,
    FEATURE_ALGORITHM_VERSION,
    MEL_SCALES,
    FeatureParams,
)
from data_prep.features.pool import available_cpus

__all__ = [
    "CROP_MODES",
    "DEFAULT_EXCLUDE_FLOOR",
    "FEATURE_ALGORITHM_VERSION",
    "MEL_SCALES",
    "FeatureParams",
    "Normalizer",
    "available_cpus",
    "cache_folder",
    "cache_key",
    "extract",
    "features_of",
    "fix_length",
    "log_mel",
    "mel_filters",
    "window",
]
