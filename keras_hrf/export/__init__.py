"""Deployment export: int8 TFLite conversion, runtime checks and device artefacts.

The public API is :mod:`keras_hrf.tflite` (``convert``, ``check``, ``export``, ``load_meta``);
this package holds its parts:

- :mod:`~keras_hrf.export.flatbuffer`: reading a ``.tflite`` back and the TFLM rules;
- :mod:`~keras_hrf.export.convert`: Keras model -> flatbuffer;
- :mod:`~keras_hrf.export.check`: LiteRT and TFLite Micro runs, arena search, ``CheckReport``;
- :mod:`~keras_hrf.export.quant`: TFLite's affine quantization, bit-exact;
- :mod:`~keras_hrf.export.frontend_tables`: the CMSIS-DSP front-end's tables as C sources;
- :mod:`~keras_hrf.export.artifacts`: the export folder (C sources, metadata, report).
"""
