"""Alias of :mod:`keras_hrf.export` (``from keras_hrf import tflite; tflite.convert(...)``)."""

from keras_hrf.export import *  # noqa: F403
from keras_hrf.export import __all__  # noqa: F401
