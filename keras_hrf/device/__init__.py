"""What runs beside a deployed model: its metadata, the reference runtimes, the streaming twin.

- :mod:`~keras_hrf.device.meta`: ``model_meta.json`` (:class:`ModelMeta`, :func:`load_meta`),
  readable without TensorFlow or Keras;
- :mod:`~keras_hrf.device.runtimes`: LiteRT and the TFLite Micro host interpreter;
- :mod:`~keras_hrf.device.stream`: an emotion timeline of a long recording through the CMSIS-DSP
  front-end twin and TFLM (the twin of ``tflite/micro/audio_main.cc``).
"""

from keras_hrf.device.meta import (
    FILES,
    META_SCHEMA_VERSION,
    MetaError,
    ModelMeta,
    features_to_input,
    load_meta,
)

__all__ = [
    "FILES",
    "META_SCHEMA_VERSION",
    "MetaError",
    "ModelMeta",
    "features_to_input",
    "load_meta",
]
