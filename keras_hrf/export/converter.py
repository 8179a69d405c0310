"""Keras model -> TFLite flatbuffer (full-integer int8 or float32), checked after conversion.

The model is rebuilt with batch size 1 (static shapes, via :func:`keras_hrf.graph.rewrite`),
traced once as a ``tf.function``, its variables frozen into constants, and converted from that
concrete function. Going through a frozen concrete function rather than
``TFLiteConverter.from_keras_model`` gives the same ops and weights (checked while writing this
module: identical op lists, sizes within 0.2 %) but takes ~4 s instead of ~20-30 s for a light
preset, because Keras' SavedModel export traces every layer separately.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import warnings

import keras
import numpy as np

from keras_hrf import graph, reparam
from keras_hrf.export import flatbuffer
from keras_hrf.export.flatbuffer import ConversionError

QUANTIZATIONS = ("int8", "float32")


def static_batch_one(model: keras.Model) -> keras.Model:
    """The same model (same weights) rebuilt with a static batch size of 1, as TFLM needs.

    Raises:
        ConversionError: the model is not a functional model with one fully known input shape.
    """
    if len(model.inputs) != 1:
        raise ConversionError(f"expected a model with one input, got {len(model.inputs)}")
    shape = tuple(model.inputs[0].shape[1:])
    if any(n is None for n in shape):
        raise ConversionError(
            f"the model input {tuple(model.inputs[0].shape)} has a free non-batch dimension; "
            "TFLM needs static shapes: build the model with a fixed input_shape"
        )
    try:
        return graph.rewrite(model, lambda layer: None, input_batch_size=1)
    except TypeError as e:
        raise ConversionError(str(e)) from e


def tflite_input_shape(model: keras.Model) -> tuple[int, ...]:
    """The input shape (without batch) that the flatbuffer of ``model`` gets.

    The model's own ``(frames, n_mels)``, except for a model whose input goes straight into a
    ``Reshape`` to ``(frames, n_mels, 1)`` (the Conv2D stems and ``ds_cnn``): it gets
    ``(frames, n_mels, 1)``. Same bytes in the same order, but TFLite Micro then needs no
    RESHAPE, which it runs as a copy: the input and its copy would both be in the arena
    (2 x 19,200 bytes for 3 s of 64-band log-Mel, a third of a 64 KiB budget).
    """
    shape = tuple(int(n) for n in model.inputs[0].shape[1:])
    consumers = [
        layer
        for layer in model.layers
        for node in getattr(layer, "_inbound_nodes", [])
        if any(t is model.inputs[0] for t in node.input_tensors)
    ]
    if (
        len(consumers) == 1
        and isinstance(consumers[0], keras.layers.Reshape)
        and tuple(consumers[0].target_shape) == shape + (1,)
    ):
        return shape + (1,)
    return shape


def _representative(data: np.ndarray, num_samples: int, seed: int, shape: tuple[int, ...]):
    # A seeded random subset, so that two conversions of one model give the same flatbuffer.
    rng = np.random.default_rng(seed)
    idx = rng.permutation(len(data))[: min(num_samples, len(data))]

    def gen():
        for i in idx:
            yield [np.asarray(data[i : i + 1], dtype=np.float32).reshape((1,) + shape)]

    return gen


def _check_data(data, shape: tuple[int, ...]) -> np.ndarray:
    if data is None:
        raise ConversionError("int8 conversion needs representative_data (training features)")
    arr = np.asarray(data)
    if arr.ndim != len(shape) + 1 or tuple(arr.shape[1:]) != shape or len(arr) == 0:
        raise ConversionError(
            f"representative_data must be float32 [N, {', '.join(map(str, shape))}] normalised "
            f"features, got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ConversionError("representative_data contains NaN/inf")
    return arr.astype(np.float32, copy=False)


@contextlib.contextmanager
def _quiet():
    # The converter prints progress to stdout/stderr from C++ and Python; a library call should
    # not. Errors still surface as exceptions (whose text we keep).
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        _silence_fd(1),
        _silence_fd(2),
    ):
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def _silence_fd(fd: int):
    saved = os.dup(fd)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _converter_error(e: Exception) -> ConversionError:
    text = str(e)
    # MLIR errors name the op as 'tfl.gelu' / "'tf.Erf' op"; keep the first meaningful line.
    ops = sorted(set(re.findall(r"'(tfl?\.[A-Za-z0-9_]+)'", text)))
    lines = [ln.strip() for ln in text.splitlines() if "error" in ln.lower()] or [text.strip()]
    hint = f" (ops: {', '.join(ops)})" if ops else ""
    return ConversionError(f"the TFLite converter failed{hint}: {lines[0][:500]}")


def make_converter(
    model: keras.Model,
    representative_data: np.ndarray | None = None,
    quantization: str = "int8",
    num_samples: int = 200,
    seed: int = 0,
    per_channel: bool = True,
):
    """The ``tf.lite.TFLiteConverter`` that :func:`convert` runs, configured but not yet run.

    Shared by :func:`convert` and tools that need the converter itself, e.g.
    ``tf.lite.experimental.QuantizationDebugger`` (:mod:`keras_hrf.export.quant_report`), so
    that both see exactly the same graph and settings: the model rebuilt with batch size 1
    (:func:`static_batch_one`) and frozen; for ``"int8"`` full-integer quantization (int8
    builtins only, int8 input and output, per-channel weights) calibrated on a seeded random
    subset of ``num_samples`` examples of ``representative_data``.

    The model is taken as it is (no HRF check or merge, see :func:`convert`). Run the
    converter inside ``_quiet()``: it prints progress from C++.

    Args:
        model: A functional Keras model with one fully known input shape.
        representative_data: float32 ``[N, frames, n_mels]`` (needed for ``"int8"`` only).
        quantization: ``"int8"`` or ``"float32"``.
        num_samples: Size of the representative dataset.
        seed: Seed of the random subset.
        per_channel: Per-output-channel weight scales (the default); ``False`` gives one scale
            per weight tensor (smaller flatbuffer, coarser weights: measured by
            ``benchmarks/per_tensor.py``).

    Returns:
        A configured ``tf.lite.TFLiteConverter``.

    Raises:
        ConversionError: A free input dimension, bad representative data, or a failure to
            trace and freeze the model.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    if quantization not in QUANTIZATIONS:
        raise ConversionError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if num_samples < 1:
        raise ConversionError(f"num_samples must be >= 1, got {num_samples}")
    m1 = static_batch_one(model)
    shape = tuple(int(n) for n in m1.inputs[0].shape[1:])
    data = _check_data(representative_data, shape) if quantization == "int8" else None

    # A (frames, n_mels, 1) flatbuffer input (see tflite_input_shape): the RESHAPE back to the
    # model's input and the model's own RESHAPE to (frames, n_mels, 1) cancel in the converter.
    flat_shape = tflite_input_shape(m1)
    spec = tf.TensorSpec((1,) + flat_shape, tf.float32, name=m1.inputs[0].name or "features")

    def call(x):
        return m1(tf.reshape(x, (1,) + shape) if flat_shape != shape else x, training=False)

    fn = tf.function(call, input_signature=[spec], autograph=False)
    try:
        with _quiet():
            frozen = convert_variables_to_constants_v2(fn.get_concrete_function())
            converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    except Exception as e:  # tracing / freezing failures, reported like the converter's
        raise _converter_error(e) from e
    if quantization == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(data, num_samples, seed, flat_shape)
        # INT8 builtins only: the converter then fails instead of silently keeping a float op
        # it cannot quantize.
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        # The converter's only switch for it (TF 2.x): per-tensor scales for every weight.
        converter._experimental_disable_per_channel = not per_channel
    return converter


def device_graph(
    model: keras.Model, *, space_to_depth: bool = True, one_channel_depthwise: bool = True
) -> keras.Model:
    """The graph rewrites the int8 conversion applies before converting (each keeps the float
    function and the weights; see :func:`convert`):
    :func:`keras_hrf.reparam.fold_normalizations` (always: it only removes ops), then
    :func:`keras_hrf.reparam.space_to_depth_convs` and
    :func:`keras_hrf.reparam.one_channel_convs_to_depthwise`. Whatever rebuilds the int8
    model (the quantization debugger of :mod:`keras_hrf.export.quant_report`) applies them too.

    Returns:
        ``model`` itself when nothing is rewritten, else a new model.
    """
    model = reparam.fold_normalizations(model)
    if space_to_depth:
        model = reparam.space_to_depth_convs(model)
    if one_channel_depthwise:
        model = reparam.one_channel_convs_to_depthwise(model)
    return model


def convert(
    model: keras.Model,
    representative_data: np.ndarray | None = None,
    quantization: str = "int8",
    merge: bool = False,
    num_samples: int = 200,
    seed: int = 0,
    *,
    strict: bool = True,
    layer_norm: str | None = None,
    per_channel: bool = True,
    space_to_depth: bool = True,
    one_channel_depthwise: bool = True,
) -> bytes:
    """Convert a (merged) Keras model to a TFLite flatbuffer that runs under TFLite Micro.

    Args:
        model: A functional model, e.g. from :func:`keras_hrf.models.build`, with HRF layers
            merged (:func:`keras_hrf.reparam.merge`).
        representative_data: float32 ``[N, frames, n_mels]`` normalised training features; int8
            calibration draws ``num_samples`` of them at random (needed for ``"int8"`` only).
        quantization: ``"int8"``: full-integer, int8 input and output, per-channel int8 weights,
            int32 biases. ``"float32"``: no quantization (the float reference, LiteRT on phones).
        merge: Merge HRF layers first instead of refusing a model that still has them.
        num_samples: Size of the representative dataset (all of ``representative_data`` if it
            has fewer examples).
        seed: Seed of the random subset.
        strict: Refuse a flatbuffer with problems (the default). ``False`` returns it anyway, to
            inspect it (:func:`keras_hrf.export.flatbuffer.problems`, :func:`check`) or to
            measure an unmerged HRF model (converted as trained); never deploy such a model.
        layer_norm: Convert every LayerNorm with this lowering (``"rsqrt"``, ``"l2"``,
            ``"pool"``, see
            :mod:`keras_hrf.layers.layer_norm`; the float function is unchanged); ``None``
            keeps the model's own.
        per_channel: Per-output-channel int8 weight scales (default); ``False``: one scale per
            weight tensor (see :func:`make_converter`).
        space_to_depth: Convert strided convolutions over few channels (a spectrogram model's
            first) as a space-to-depth rearrangement and a stride-1 convolution
            (:func:`keras_hrf.reparam.space_to_depth_convs`): the same function, fewer
            instructions on Cortex-M. ``False`` converts them as they are.
        one_channel_depthwise: Convert convolutions from one input channel into a multiple of
            4 (the first convolutions space-to-depth leaves) as depthwise convolutions
            (:func:`keras_hrf.reparam.one_channel_convs_to_depthwise`): the same function and
            weights, fewer Cortex-M4 instructions. ``False`` converts them as they are.

    Returns:
        The flatbuffer, after :func:`keras_hrf.export.flatbuffer.validate` found no problem.

    Raises:
        ConversionError: HRF layers left (without ``merge``), bad representative data, a
            converter failure, or a flatbuffer that would not run as intended under TFLM (float
            ops in an int8 model, GELU, a free batch dimension, ops TFLM has no kernel for); the
            message names the op.
    """
    if quantization not in QUANTIZATIONS:
        raise ConversionError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if not isinstance(model, keras.Model):
        raise ConversionError(f"expected a keras.Model, got {type(model).__name__}")
    if reparam.has_hrf(model):
        if merge:
            model = reparam.merge(model)
        elif strict:
            names = ", ".join(layer.name for layer in reparam.hrf_layers(model)[:3])
            raise ConversionError(
                f"model {model.name!r} still has HRF layers ({names}, ...): call "
                "keras_hrf.reparam.merge(model) first (or pass merge=True); deploying the "
                "factorized form would cost extra MACs and quantize each factor separately"
            )
        # else (strict=False): converted as trained, to measure what merging saves.
    if num_samples < 1:
        raise ConversionError(f"num_samples must be >= 1, got {num_samples}")
    if layer_norm is not None:
        try:
            model = reparam.set_layer_norm_lowering(model, layer_norm)
        except ValueError as e:
            raise ConversionError(str(e)) from e
    model = device_graph(
        model, space_to_depth=space_to_depth, one_channel_depthwise=one_channel_depthwise
    )
    converter = make_converter(
        model, representative_data, quantization, num_samples, seed, per_channel=per_channel
    )
    try:
        with _quiet():
            tflite_bytes = converter.convert()
    except Exception as e:  # the converter raises many types (ConverterError, RuntimeError, ...)
        raise _converter_error(e) from e
    if strict:
        flatbuffer.validate(flatbuffer.parse(tflite_bytes), quantization)
        if quantization == "int8" and not per_channel:
            _refuse_per_tensor_3d_fully_connected(flatbuffer.parse(tflite_bytes))
    return bytes(tflite_bytes)


def _refuse_per_tensor_3d_fully_connected(info) -> None:
    """CMSIS-NN runs a per-tensor FULLY_CONNECTED with a 3-D output through a path whose
    ``TFLITE_DCHECK_GE(buffer_conv_1x1_idx, 4)`` aborts (tflite/micro/README.md; measured: the
    per-tensor Conformer's harness exits 1 on the Cortex-M4 while the per-channel one and a
    per-tensor ds_cnn run): such a model is refused rather than exported to crash on a board."""
    for op in info.ops:
        out = info.tensors[op.outputs[0]]
        if op.name == "FULLY_CONNECTED" and len(out.shape) >= 3:
            raise ConversionError(
                f"per-tensor weights: FULLY_CONNECTED {out.name or op.index} has a "
                f"{len(out.shape)}-D output {list(out.shape)}, which CMSIS-NN's per-tensor kernel "
                "aborts on (Cortex-M): keep per-channel weights for this model (per-tensor suits "
                "models whose only FULLY_CONNECTED is the 2-D classifier, e.g. ds_cnn)"
            )
