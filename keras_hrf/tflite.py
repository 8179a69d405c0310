"""int8 TFLite export for TensorFlow Lite Micro and LiteRT: convert, check, export.

The public API of the deployment step (the parts live in :mod:`keras_hrf.export`)::

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
"""

from keras_hrf.export.artifacts import (
    FILES,
    META_SCHEMA_VERSION,
    ExportResult,
    MetaError,
    ModelMeta,
    export,
    features_to_input,
    load_meta,
)
from keras_hrf.export.check import (
    CheckReport,
    check,
    min_tflm_arena,
    predict,
    recommended_arena,
)
from keras_hrf.export.convert import convert
from keras_hrf.export.flatbuffer import (
    TFLM_OP_RESOLVER_METHODS,
    ConversionError,
    FlatbufferInfo,
    parse,
    problems,
)
from keras_hrf.export.quant import dequantize, quantize
from keras_hrf.export.quant_report import QuantReport, quant_report

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
