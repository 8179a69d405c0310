"""HRFDense: exact merging, gradients, serialization, clear errors."""

import keras
import numpy as np
import pytest

from keras_hrf.layers import HRFDense


def _built(d=6, units=5, **kw):
    layer = HRFDense(units, **kw)
    layer.build((None, d))
    # Non-trivial inner biases so that their merge is actually exercised.
    for b in getattr(layer, "inner_biases", []):
        b.assign(np.random.default_rng(1).normal(size=b.shape).astype("float32"))
    if layer.bias is not None:
        layer.bias.assign(np.random.default_rng(2).normal(size=layer.bias.shape).astype("float32"))
    return layer


@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("inner_bias", [False, True])
def test_merged_kernel_is_product_of_factors(depth, inner_bias):
    layer = _built(depth=depth, inner_bias=inner_bias, expansion=2)
    factors = [np.asarray(f.numpy(), dtype=np.float64) for f in layer.factors]
    assert [f.shape for f in factors] == [(6, 12)] + [(12, 12)] * (depth - 2) + [(12, 5)]
    expected = factors[0]
    for f in factors[1:]:
        expected = expected @ f
    np.testing.assert_allclose(layer.merged_kernel("float64").numpy(), expected, rtol=1e-12)
    # Bias: push the inner biases through the remaining factors by hand.
    bias = np.zeros(12)
    for i, f in enumerate(factors[:-1]):
        bias = bias @ f if i else bias
        if inner_bias:
            bias = bias + layer.inner_biases[i].numpy()
    expected_b = bias @ factors[-1] + layer.bias.numpy()
    np.testing.assert_allclose(layer.merged_bias("float64").numpy(), expected_b, rtol=1e-10)
    # The layer's output equals the merged affine map.
    x = np.random.default_rng(0).normal(size=(3, 4, 6)).astype("float32")
    merged = x.astype(np.float64) @ expected + expected_b
    np.testing.assert_allclose(layer(x).numpy(), merged, atol=1e-5)


def test_merged_weights_load_into_plain_dense():
    layer = _built(units=7, activation="relu", depth=3, inner_bias=True)
    dense = keras.layers.Dense(7, activation="relu")
    dense.build((None, 6))
    dense.set_weights(layer.merged_weights())
    x = np.random.default_rng(3).normal(size=(16, 6)).astype("float32")
    np.testing.assert_allclose(dense(x).numpy(), layer(x).numpy(), atol=1e-5)


def test_rank_overrides_expansion_and_identity_init_preserves_function():
    layer = HRFDense(4, rank=9, factor_init="identity", use_bias=False)
    layer.build((None, 5))
    assert layer.factors[0].shape == (5, 9)
    a = layer.factors[0].numpy()
    np.testing.assert_array_equal(a, np.eye(5, 9))
    # Function-preserving start: merged kernel == first d rows of B.
    np.testing.assert_allclose(layer.kernel.numpy(), layer.factors[1].numpy()[:5], atol=1e-7)


def test_gradients_reach_every_factor_and_training_changes_them():
    keras.utils.set_random_seed(0)
    inp = keras.Input((6,))
    layer = HRFDense(3, depth=3, inner_bias=True)
    model = keras.Model(inp, layer(inp))
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    before = [w.numpy().copy() for w in layer.trainable_weights]
    assert len(before) == 3 + 2 + 1  # factors, inner biases, bias
    x = np.random.default_rng(0).normal(size=(32, 6)).astype("float32")
    y = np.random.default_rng(1).normal(size=(32, 3)).astype("float32")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    for w0, w in zip(before, layer.trainable_weights):
        assert not np.allclose(w0, w.numpy()), f"{w.path} did not change"


def test_config_round_trip():
    layer = HRFDense(
        5,
        expansion=3,
        depth=3,
        inner_bias=True,
        activation="silu",
        factor_init="identity",
        quantize_merged=True,
        factor_lr_scale=0.5,
        name="x",
    )
    clone = HRFDense.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(units=0), "units"),
        (dict(units=4, expansion=0.5), "expansion must be >= 1"),
        (dict(units=4, rank=0), "rank"),
        (dict(units=4, depth=1), "depth"),
        (dict(units=4, factor_init="orthogonal"), "factor_init"),
        (dict(units=4, factor_lr_scale=0), "factor_lr_scale"),
    ],
)
def test_bad_arguments_have_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HRFDense(**kwargs)


def test_rank_smaller_than_input_is_refused():
    layer = HRFDense(4, rank=3)
    with pytest.raises(ValueError, match="k >= d"):
        layer.build((None, 8))


def test_quantize_merged_uses_int8_grid_kernel():
    layer = _built(units=4, quantize_merged=True, use_bias=False)
    x = np.eye(6, dtype="float32")  # rows of the identity read out the effective kernel
    effective = layer(x).numpy()
    k = layer.merged_kernel().numpy()
    scale = np.abs(k).max(axis=0) / 127
    steps = effective / scale
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    assert not np.allclose(effective, k)


def test_factor_lr_scale_keeps_the_function_and_scales_the_extra_factors_steps():
    """An Adam step moves the extra factors by ``s`` times as much; ``B`` and the start agree."""

    def one_adam_step(scale):
        keras.utils.set_random_seed(3)
        layer = HRFDense(4, depth=3, inner_bias=True, factor_lr_scale=scale)
        inp = keras.Input((6,))
        model = keras.Model(inp, layer(inp))
        # A tiny epsilon: Adam's default 1e-7 is not negligible next to the scaled gradients.
        model.compile(optimizer=keras.optimizers.Adam(1e-2, epsilon=1e-12), loss="mse")
        x = np.random.default_rng(0).normal(size=(16, 6)).astype("float32")
        y = np.random.default_rng(1).normal(size=(16, 4)).astype("float32")
        start = [layer.factor(i).numpy() for i in range(3)], model.predict(x, verbose=0)
        model.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
        steps = [layer.factor(i).numpy() - f0 for i, f0 in enumerate(start[0])]
        return start, steps, layer

    (f1, out1), steps1, _ = one_adam_step(1.0)
    (f4, out4), steps4, layer = one_adam_step(0.25)
    for a, b in zip(f1, f4):  # same effective factors, hence the same function, at the start
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(out1, out4, rtol=1e-5, atol=1e-6)
    for i in (0, 1):  # the extra factors: a quarter of the step
        np.testing.assert_allclose(steps4[i], 0.25 * steps1[i], rtol=1e-3, atol=1e-7)
    np.testing.assert_allclose(steps4[2], steps1[2], rtol=1e-3, atol=1e-7)  # B as usual
    # The stored variable is A / s, and the merge uses the effective factors.
    np.testing.assert_allclose(layer.factors[0].numpy() * 0.25, layer.factor(0).numpy())
    expected = layer.factor(0).numpy() @ layer.factor(1).numpy() @ layer.factor(2).numpy()
    np.testing.assert_allclose(layer.merged_kernel().numpy(), expected, rtol=1e-5, atol=1e-7)


def test_pointwise_conv_hrf_merges_into_a_1x1_conv2d():
    from keras_hrf.layers import HRFPointwiseConv2D

    layer = HRFPointwiseConv2D(5, depth=3, inner_bias=True, activation="relu", name="pw")
    x = np.random.default_rng(4).normal(size=(2, 6, 7, 3)).astype("float32")
    y = layer(x).numpy()
    for b in layer.inner_biases:
        b.assign(np.random.default_rng(5).normal(size=b.shape).astype("float32"))
    y = layer(x).numpy()
    conv = layer.deploy_layer()
    assert isinstance(conv, keras.layers.Conv2D) and conv.kernel_size == (1, 1)
    assert conv.name == "pw"
    conv.build(x.shape)
    conv.set_weights(layer.merged_weights())
    assert conv.kernel.shape == (1, 1, 3, 5)
    np.testing.assert_allclose(conv(x).numpy(), y, atol=1e-5)
    clone = HRFPointwiseConv2D.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="4-D input"):
        HRFPointwiseConv2D(4)(np.zeros((2, 5, 3), "float32"))
