"""Fake quantization against the real converter and LiteRT; the QAT rewrite's contracts."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_hrf import models, reparam, tflite
from keras_hrf.layers import HRFDense
from keras_hrf.quantization import qat
from keras_hrf.quantization.fake_quant import (
    activation_qparams,
    fake_quant_activation,
    fake_quant_per_channel,
)

SHAPE = (12, 16)


def _litert(flat: bytes):
    from ai_edge_litert import interpreter as litert

    it = litert.Interpreter(
        model_content=flat, num_threads=1, experimental_preserve_all_tensors=True
    )
    it.allocate_tensors()
    return it


def _float_io_int8(model, data):
    """Full-int8 flatbuffer that keeps a float input (so LiteRT's QUANTIZE op can be read)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([d[None]] for d in data)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter.convert()


@pytest.fixture(scope="module")
def dense_model():
    inputs = keras.Input(SHAPE, batch_size=1, name="features")
    out = keras.layers.Dense(5, name="fc")(inputs)
    model = keras.Model(inputs, out)
    rng = np.random.default_rng(3)
    kernel = rng.standard_normal((SHAPE[1], 5)).astype("float32")
    # Exact ties of w / scale at .5 (scale = max|w| / 127 = 1/127 for a column whose max is 1):
    # they pin the rounding mode (TFLite rounds half away from zero, not half to even).
    kernel[:, 0] = 0.0
    kernel[0, 0] = 1.0
    kernel[1:7, 0] = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5], "float32") / 127
    model.get_layer("fc").set_weights([kernel, rng.standard_normal(5).astype("float32")])
    return model


def test_weight_fake_quant_equals_converted_int8_weights(dense_model):
    data = np.random.default_rng(0).standard_normal((32,) + SHAPE).astype("float32")
    it = _litert(tflite.convert(dense_model, data, num_samples=32))
    weights = [
        t for t in it.get_tensor_details() if t["dtype"] == np.int8 and tuple(t["shape"]) == (5, 16)
    ]
    assert len(weights) == 1
    w = weights[0]
    q = w["quantization_parameters"]
    assert len(q["scales"]) == 5 and np.all(q["zero_points"] == 0)
    stored = it.get_tensor(w["index"]).astype(np.float64) * q["scales"][:, None]
    kernel = dense_model.get_layer("fc").get_weights()[0]
    ours = keras.ops.convert_to_numpy(fake_quant_per_channel(kernel, axis=-1)).T
    np.testing.assert_allclose(ours, stored, rtol=1e-6, atol=1e-9)
    # The ties themselves: +-0.5 -> +-1, +-1.5 -> +-2, +-2.5 -> +-3 (half away from zero).
    ints = it.get_tensor(w["index"])[0, :7]
    assert ints.tolist() == [127, 1, 2, 3, -1, -2, -3]


def test_per_tensor_weights_have_one_scale_and_a_smaller_flatbuffer():
    """convert(per_channel=False): one scale value for the whole (16, 5) kernel (the converter
    still writes it once per output channel for FULLY_CONNECTED), the largest absolute weight at
    127, no more bytes than per channel; a FULLY_CONNECTED with a 3-D output (which CMSIS-NN's
    per-tensor path aborts on) is refused by name."""
    from keras_hrf.export import ConversionError

    inputs = keras.Input(SHAPE, batch_size=1, name="features")
    pooled = keras.layers.GlobalAveragePooling1D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(5, name="fc")(pooled))
    data = np.random.default_rng(0).standard_normal((32,) + SHAPE).astype("float32")
    per_channel = tflite.convert(model, data, num_samples=32)
    per_tensor = tflite.convert(model, data, num_samples=32, per_channel=False)
    it = _litert(per_tensor)
    (w,) = [
        t for t in it.get_tensor_details() if t["dtype"] == np.int8 and tuple(t["shape"]) == (5, 16)
    ]
    scales = w["quantization_parameters"]["scales"]
    kernel = model.get_layer("fc").get_weights()[0]
    np.testing.assert_allclose(scales, np.abs(kernel).max() / 127, rtol=1e-6)
    assert np.abs(it.get_tensor(w["index"])).max() == 127
    assert len(per_tensor) <= len(per_channel)
    pc = _litert(per_channel)
    (w_pc,) = [
        t for t in pc.get_tensor_details() if t["dtype"] == np.int8 and tuple(t["shape"]) == (5, 16)
    ]
    assert len(set(w_pc["quantization_parameters"]["scales"].tolist())) == 5
    three_d = keras.Model(inputs, keras.layers.Dense(5)(inputs))  # [1, frames, 5]
    with pytest.raises(ConversionError, match="FULLY_CONNECTED .* 3-D output"):
        tflite.convert(three_d, data, num_samples=8, per_channel=False)


def test_activation_fake_quant_equals_litert_quantize(dense_model):
    rng = np.random.default_rng(1)
    data = (rng.standard_normal((24,) + SHAPE) * 1.7 + 0.4).astype("float32")
    flat = _float_io_int8(dense_model, data)
    it = _litert(flat)
    details = {t["index"]: t for t in it.get_tensor_details()}
    quant_ops = [op for op in it._get_ops_details() if op["op_name"] == "QUANTIZE"]
    assert quant_ops, "expected a QUANTIZE op at the float input"
    q_index = quant_ops[0]["outputs"][0]
    scale, zp = details[q_index]["quantization"]
    # The converter calibrated on exactly this data: our parameters for its range are its own.
    ours_scale, ours_zp = (float(v) for v in activation_qparams(data.min(), data.max()))
    assert ours_scale == pytest.approx(scale, rel=1e-6)
    assert ours_zp == zp
    inp = it.get_input_details()[0]["index"]
    for x in data[:6]:
        it.set_tensor(inp, x[None])
        it.invoke()
        litert_values = (it.get_tensor(q_index).astype(np.float64) - zp) * scale
        ours = keras.ops.convert_to_numpy(fake_quant_activation(x[None], data.min(), data.max()))
        np.testing.assert_allclose(ours, litert_values, atol=1e-6)


def test_activation_qparams_contain_zero_and_clamp():
    scale, zp = (float(v) for v in activation_qparams(0.5, 2.0))  # widened to [0, 2]
    assert scale == pytest.approx(2.0 / 255) and zp == -128
    scale, zp = (float(v) for v in activation_qparams(-3.0, -1.0))  # widened to [-3, 0]
    assert scale == pytest.approx(3.0 / 255) and zp == 127
    y = keras.ops.convert_to_numpy(fake_quant_activation(np.array([5.0, -9.0]), -3.0, -1.0))
    np.testing.assert_allclose(y, [0.0, -3.0], atol=1e-6)


def test_rounding_is_half_away_from_zero_without_float32_artefacts():
    from data_prep.int8 import quantize

    # 0.49999997 is the largest float32 below 0.5: floor(x + 0.5) would give 1 in float32.
    steps = np.array([0.49999997, 0.5, 1.5, 2.5, -0.5, -1.5, -0.49999997], "float32")
    # A power-of-two scale (range [-8, 7.9375] -> 1/16, zero point 0) keeps x / scale exact.
    scale, zp = (float(v) for v in activation_qparams(-8.0, 7.9375))
    assert (scale, zp) == (0.0625, 0.0)
    ours = keras.ops.convert_to_numpy(fake_quant_activation(steps * 0.0625, -8.0, 7.9375))
    np.testing.assert_array_equal(ours / 0.0625, [0, 1, 2, 3, -1, -2, 0])
    # The exporter's QUANTIZE twin (checked against LiteRT in tests/keras_hrf/test_tflite.py).
    np.testing.assert_array_equal(quantize(steps * 0.0625, 0.0625, 0), [0, 1, 2, 3, -1, -2, 0])
    w = np.array([[127.0], [0.49999997], [0.5], [-0.5], [2.5]], "float32")
    q = keras.ops.convert_to_numpy(fake_quant_per_channel(w, axis=-1))[:, 0]
    np.testing.assert_array_equal(q, [127.0, 0.0, 1.0, -1.0, 3.0])


def test_fake_quant_gradients_are_straight_through_inside_the_range():
    import tensorflow as tf

    x = tf.constant([-2.0, -0.3, 0.2, 0.9, 3.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fake_quant_activation(x, -1.0, 1.0)
    np.testing.assert_allclose(tape.gradient(y, x).numpy(), [0, 1, 1, 1, 0])


@pytest.fixture(scope="module")
def tiny_families():
    """Tiny builds of every family (short input) and data to calibrate them."""
    x = np.random.default_rng(0).standard_normal((16, 40, 16)).astype("float32")
    built = {
        f: reparam.merge(
            models.build(f, "light", hrf=True, input_shape=(40, 16), num_classes=3, seed=0)
        )
        for f in models.FAMILIES
    }
    return built, x


@pytest.mark.parametrize("family", list(models.FAMILIES))
def test_prepare_then_strip_is_the_identity(tiny_families, family):
    built, x = tiny_families
    model = built[family]
    q = qat.prepare(model, calibration_data=x)
    assert qat.is_qat(q) and not qat.is_qat(model)
    # Every Dense, LayerNorm, attention core and residual Add has a twin (ds_cnn: the
    # convolutions and their BatchNorms).
    twins = {type(layer) for layer in q.layers}
    if family == "ds_cnn":
        assert {qat.QATConv2D, qat.QATDepthwiseConv2D, qat.QATBatchNormalization} <= twins
    else:
        assert {qat.QATDense, qat.QATLayerNorm, qat.QATMultiHeadAttentionCore, qat.QATAdd} <= twins
    # The fake-quantized forward pass is close to, but not the same as, the float one.
    # Eager calls: tracing predict() for every family would cost more than the test itself.
    float_logits = keras.ops.convert_to_numpy(model(x, training=False))
    diff = np.abs(keras.ops.convert_to_numpy(q(x, training=False)) - float_logits).max()
    assert 0 < diff < np.abs(float_logits).max()
    back = qat.strip(q)
    assert [type(a) for a in back.layers] == [type(b) for b in model.layers]
    for a, b in zip(back.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_qat_model_converts_to_the_plain_op_list(tiny_families):
    built, x = tiny_families
    # The conformer: it has every twin (BatchNorm folded into the depthwise conv, GLU, SiLU).
    model = keras.models.clone_model(built["conformer"])
    # No unit gains / zero offsets left, which the converter would fold away (fewer ops).
    rng = np.random.default_rng(1)
    model.set_weights(
        [w + 0.01 * rng.standard_normal(w.shape) for w in built["conformer"].get_weights()]
    )
    q = qat.prepare(model, calibration_data=x)
    # One training step moves weights (and ranges) so the check is not of a copy.
    q.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss="sparse_categorical_crossentropy",
        run_eagerly=True,  # two steps: tracing the train step would cost more than running it
    )
    q.fit(x, np.arange(len(x)) % 3, epochs=1, batch_size=8, verbose=0)
    tuned = qat.strip(q)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(tuned.get_weights(), model.get_weights(), strict=True)
    )
    ops_tuned = tflite.parse(tflite.convert(tuned, x, num_samples=16)).op_names
    ops_plain = tflite.parse(tflite.convert(model, x, num_samples=16)).op_names
    assert ops_tuned == ops_plain


def test_prepare_refuses_hrf_and_double_prepare(tiny_families):
    built, x = tiny_families
    with pytest.raises(ValueError, match="reparam.merge"):
        qat.prepare(models.build("conv_transformer", "light", hrf=True, input_shape=(40, 16)))
    q = qat.prepare(built["conv_transformer"])
    with pytest.raises(ValueError, match="already quantization-aware"):
        qat.prepare(q)


def test_calibrated_ranges_are_the_converters(tiny_families):
    """Ranges from qat.calibrate on some data = the ranges the converter picks on that data."""
    built, x = tiny_families
    model = built["conv_transformer"]
    q = qat.prepare(model)
    norm = next(layer for layer in q.layers if isinstance(layer, qat.QATLayerNorm))
    assert norm.activation_ranges()["var"] == (0.0, 0.0)  # not calibrated yet
    qat.calibrate(q, x)
    lo, hi = norm.activation_ranges()["var"]
    assert lo == 0.0 and hi > 0  # a variance is never negative
    out_lo, out_hi = q.get_layer("logits").activation_ranges()["out"]
    from ai_edge_litert import interpreter as litert

    it = litert.Interpreter(model_content=tflite.convert(model, x, num_samples=len(x)))
    scale, zp = it.get_output_details()[0]["quantization"]
    ours_scale, ours_zp = (float(v) for v in activation_qparams(out_lo, out_hi))
    assert ours_scale == pytest.approx(scale, rel=1e-5) and ours_zp == zp


def test_quantization_aware_hrf_merges_exactly():
    """quantize_merged: the merged Dense holds the fake-quantized product the forward pass used."""
    x = np.random.default_rng(2).standard_normal((8, 40, 16)).astype("float32")
    model = models.build(
        "conv_transformer",
        "light",
        hrf={"quantize_merged": True},
        input_shape=(40, 16),
        num_classes=3,
        seed=0,
    )
    merged = reparam.merge(model)
    np.testing.assert_allclose(
        merged.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-4, rtol=0
    )
    layer = next(lyr for lyr in model.layers if isinstance(lyr, HRFDense))
    kernel = merged.get_layer(layer.name).get_weights()[0]
    scale = np.abs(kernel).max(axis=0) / 127
    np.testing.assert_allclose(kernel / scale, np.round(kernel / scale), atol=1e-3)
    # Same layer types and op list as the plain build: the deHRF contract is unchanged.
    plain = models.build("conv_transformer", "light", input_shape=(40, 16), num_classes=3)
    assert [type(a) for a in merged.layers] == [type(b) for b in plain.layers]


def test_qat_twin_follows_the_layer_norm_lowering(tiny_families):
    """The LayerNorm twin fake-quantizes the tensors of the graph its lowering converts to (the
    default rsqrt lowering: test_prepare_then_strip_is_the_identity)."""
    lowering = "l2"
    built, x = tiny_families
    model = reparam.set_layer_norm_lowering(built["conformer"], lowering)
    q = qat.prepare(model, calibration_data=x)
    norm = next(layer for layer in q.layers if isinstance(layer, qat.QATLayerNorm))
    assert norm.lowering == lowering
    # L2_NORMALIZATION's output scale is fixed (1/128): no range of its own, and no variance.
    assert set(norm.activation_ranges()) == {"mean", "centred", "scaled", "out"}
    assert all(hi > lo for lo, hi in norm.activation_ranges().values())  # calibrated
    float_logits = keras.ops.convert_to_numpy(model(x, training=False))
    diff = np.abs(keras.ops.convert_to_numpy(q(x, training=False)) - float_logits).max()
    assert 0 < diff < np.abs(float_logits).max()
    lowerings = {layer.lowering for layer in qat.strip(q).layers if hasattr(layer, "lowering")}
    assert lowerings == {lowering}
