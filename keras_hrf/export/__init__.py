"""Deployment export: int8 TFLite conversion, runtime checks and device artefacts.

The public API of the deployment step (``keras_hrf.tflite`` is an alias of this package)::

    from keras_hrf import reparam, tflite

    deployed = reparam.merge(trained)                        # deHRF
    flat = tflite.convert(deployed, train_features)          # int8, checked op by op
    report = tflite.check(flat, test_features, keras_model=deployed)
    print(report.to_markdown())
    layers = tflite.quant_report(deployed, test_features,     # int8 error per layer
                                 representative_data=train_features)
    print(layers.to_markdown())
    tflite.export(deployed, "exports/ser", representative_data=train_features,
                  labels=labels, feature_params=params, normalizer=normalizer)
    meta = tflite.load_meta("exports/ser")                   # device front-end / Android
    x_int8 = meta.features_to_input(log_mel_window)

Every failure to produce a model that runs as int8 under TFLite Micro raises
:class:`ConversionError` (a ``ValueError``) whose one-line message names the op.

Its modules:

- :mod:`~keras_hrf.export.flatbuffer`: reading a ``.tflite`` back and the TFLM rules;
- :mod:`~keras_hrf.export.converter`: Keras model -> flatbuffer;
- :mod:`~keras_hrf.export.runtime_check`: LiteRT and TFLite Micro runs, arena search,
  ``CheckReport``;
- :mod:`~keras_hrf.export.quant_report`: the int8 error of every layer;
- :mod:`~keras_hrf.export.csource` / :mod:`~keras_hrf.export.frontend_tables`: C sources;
- :mod:`~keras_hrf.export.artifacts`: the export folder (``model_meta.json`` is
  :class:`keras_hrf.device.ModelMeta`);
- :mod:`~keras_hrf.export.runs`: the device artefacts of a training run folder.
"""

from data_prep.int8 import dequantize, quantize
from keras_hrf.device.meta import (
    FILES,
    META_SCHEMA_VERSION,
    MetaError,
    ModelMeta,
    features_to_input,
    load_meta,
)
from keras_hrf.export.artifacts import ExportResult, export
from keras_hrf.export.converter import convert
from keras_hrf.export.flatbuffer import (
    TFLM_OP_RESOLVER_METHODS,
    ConversionError,
    FlatbufferInfo,
    parse,
    problems,
)
from keras_hrf.export.quant_report import QuantReport, quant_report
from keras_hrf.export.runtime_check import (
    CheckReport,
    check,
    min_tflm_arena,
    predict,
    recommended_arena,
)

#: Alias of :func:`predict` (float logits of an int8 flatbuffer, via LiteRT).
predict_int8 = predict

__all__ = [
    "FILES",
    "META_SCHEMA_VERSION",
    "TFLM_OP_RESOLVER_METHODS",
    "CheckReport",
    "ConversionError",
    "ExportResult",
    "FlatbufferInfo",
    "MetaError",
    "ModelMeta",
    "QuantReport",
    "check",
    "convert",
    "dequantize",
    "export",
    "features_to_input",
    "load_meta",
    "min_tflm_arena",
    "parse",
    "predict",
    "predict_int8",
    "problems",
    "quant_report",
    "quantize",
    "recommended_arena",
]
