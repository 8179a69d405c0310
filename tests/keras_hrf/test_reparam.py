"""deHRF: the merged model is the plain model, exactly."""

import keras
import numpy as np
import pytest

from keras_hrf import graph, models, reparam
from keras_hrf.layers import FoldedAway, HRFDense, SpaceToDepthConv2D

SHAPE = (200, 16)


@pytest.mark.parametrize("size", ["light", "large"])
@pytest.mark.parametrize("family", list(models.FAMILIES))
def test_merge_is_exact_and_costs_nothing(family, size):
    hrf = models.build(family, size, hrf=True, input_shape=SHAPE, num_classes=4, seed=0)
    # Perturb biases so a wrong bias merge would show.
    for layer in reparam.hrf_layers(hrf):
        if layer.bias is not None:  # ds_cnn's pointwise convolutions have none (BN follows)
            layer.bias.assign(np.random.default_rng(0).normal(size=layer.bias.shape))
    merged = reparam.merge(hrf)
    plain = models.build(family, size, hrf=None, input_shape=SHAPE, num_classes=4)
    x = np.random.default_rng(1).normal(size=(2,) + SHAPE).astype("float32")
    assert np.abs(hrf.predict(x, verbose=0) - merged.predict(x, verbose=0)).max() <= 1e-4
    assert not reparam.has_hrf(merged) and reparam.has_hrf(hrf)
    assert merged.count_params() == plain.count_params() < hrf.count_params()
    assert [type(la) for la in merged.layers] == [type(la) for la in plain.layers]
    assert [la.name for la in merged.layers] == [la.name for la in plain.layers]
    assert models.count_macs(merged) == models.count_macs(plain) < models.count_macs(hrf)


def test_merge_with_all_options_and_no_hrf_copy():
    cfg = {
        "sites": ["ffn_in", "ffn_out", "attention"],
        "depth": 3,
        "inner_bias": True,
        "factor_init": "identity",
    }
    hrf = models.build("conv_transformer", "light", hrf=cfg, input_shape=SHAPE, num_classes=4)
    for layer in reparam.hrf_layers(hrf):
        for b in layer.inner_biases:
            b.assign(np.random.default_rng(0).normal(size=b.shape) * 0.1)
    x = np.random.default_rng(1).normal(size=(2,) + SHAPE).astype("float32")
    merged = reparam.merge(hrf)
    np.testing.assert_allclose(merged(x), hrf(x), atol=1e-4)
    copy = reparam.merge(merged)
    assert copy is not merged
    np.testing.assert_array_equal(copy(x), merged(x))


def test_merge_users_own_functional_model():
    inp = keras.Input((10,))
    h = HRFDense(12, activation="relu", depth=3, name="mine")(inp)
    out = keras.layers.Dense(2)(h)
    model = keras.Model(inp, out)
    merged = reparam.merge(model)
    assert isinstance(merged.get_layer("mine"), keras.layers.Dense)
    x = np.random.default_rng(0).normal(size=(4, 10)).astype("float32")
    np.testing.assert_allclose(merged(x), model(x), atol=1e-5)


def test_merge_refuses_subclassed_model_with_advice():
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = HRFDense(3)

        def call(self, x):
            return self.d(x)

    m = Sub()
    m(np.zeros((1, 4), "float32"))
    with pytest.raises(TypeError, match="functional API"):
        reparam.merge(m)


def test_keras_round_trip_safe_mode(tmp_path):
    model = models.build(
        "conformer",
        "light",
        hrf={"depth": 3, "inner_bias": True},
        input_shape=SHAPE,
        num_classes=4,
        seed=0,
    )
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).normal(size=(2,) + SHAPE).astype("float32")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert reparam.has_hrf(loaded)


def test_rewrite_to_batch_one():
    model = models.build("speechformer", "light", input_shape=SHAPE, num_classes=4, seed=0)
    fixed = graph.rewrite(model, lambda layer: None, input_batch_size=1)
    assert fixed.inputs[0].shape == (1,) + SHAPE
    x = np.random.default_rng(1).normal(size=(1,) + SHAPE).astype("float32")
    np.testing.assert_allclose(fixed(x), model(x), atol=1e-6)


def test_expand_is_the_function_preserving_inverse_of_merge():
    plain = models.build("conv_transformer", "light", input_shape=SHAPE, num_classes=4, seed=2)
    x = np.random.default_rng(3).normal(size=(2,) + SHAPE).astype("float32")
    expanded = reparam.expand(plain, {"expansion": 2.0, "depth": 3}, seed=0)
    hrf = reparam.hrf_layers(expanded)
    dense = [la for la in plain.layers if type(la) is keras.layers.Dense]
    assert [la.name for la in hrf] == [la.name for la in dense[:-1]]  # all but the classifier
    assert all(la.depth == 3 for la in hrf)
    np.testing.assert_allclose(expanded(x), plain(x), atol=1e-5)
    back = reparam.merge(expanded)
    assert [type(la) for la in back.layers] == [type(la) for la in plain.layers]
    np.testing.assert_allclose(back(x), plain(x), atol=1e-5)
    only = reparam.expand(plain, select=lambda layer: layer.name.endswith("_fc1"))
    assert {la.name for la in reparam.hrf_layers(only)} == {"block0_ffn_fc1", "block1_ffn_fc1"}


def test_one_channel_convs_become_depthwise_with_the_same_weights_and_function():
    model = models.build("conformer", "light", input_shape=SHAPE, num_classes=4, seed=0)
    rewritten = reparam.one_channel_convs_to_depthwise(model)
    changed = [
        la.name
        for la, lb in zip(model.layers, rewritten.layers, strict=True)
        if type(la) is not type(lb)
    ]
    # The first stem convolution reads the one-channel log-Mel; the second reads its 4 maps.
    assert len(changed) == 1
    old, new = model.get_layer(changed[0]), rewritten.get_layer(changed[0])
    assert old.input.shape[-1] == 1 and type(new) is keras.layers.DepthwiseConv2D
    assert new.depth_multiplier == old.filters and new.strides == old.strides
    np.testing.assert_array_equal(new.kernel.numpy(), old.kernel.numpy())
    np.testing.assert_array_equal(new.bias.numpy(), old.bias.numpy())
    x = np.random.default_rng(1).normal(size=(2,) + SHAPE).astype("float32")
    np.testing.assert_allclose(rewritten.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-4)  # fmt: skip
    assert models.count_macs(rewritten) == models.count_macs(model)
    assert reparam.one_channel_convs_to_depthwise(rewritten) is rewritten  # nothing left
    # Only where CMSIS-NN's multiplier-of-4 path would run it: 6 filters or a dilation stay.
    odd = keras.Input((16, 8, 1))
    kept = keras.Model(
        odd, [keras.layers.Conv2D(6, 3)(odd), keras.layers.Conv2D(4, 3, dilation_rate=2)(odd)]
    )
    assert reparam.one_channel_convs_to_depthwise(kept) is kept
    # A Conv2D shared by two inputs keeps its form (the rewrite replaces one layer per node).
    conv = keras.layers.Conv2D(4, 3, name="shared")
    a, b = keras.Input((16, 8, 1)), keras.Input((20, 8, 1))
    two = keras.Model([a, b], [conv(a), conv(b)])
    assert reparam.one_channel_convs_to_depthwise(two) is two


def test_space_to_depth_rewrites_only_strided_few_channel_convs():
    model = models.build("ds_cnn", "light", input_shape=SHAPE, num_classes=4, seed=0)
    stem = model.get_layer("conv0")
    stem.kernel.assign(np.random.default_rng(2).normal(size=stem.kernel.shape))
    rewritten = reparam.space_to_depth_convs(model)
    changed = [
        la.name
        for la, lb in zip(model.layers, rewritten.layers, strict=True)
        if type(la) is not type(lb)
    ]
    # The stem (one input channel, stride (4, 2)); the 1x1 convolutions have stride 1.
    assert changed == ["conv0"]
    assert isinstance(rewritten.get_layer("conv0"), SpaceToDepthConv2D)
    np.testing.assert_array_equal(rewritten.get_layer("conv0").kernel.numpy(), stem.kernel.numpy())
    x = np.random.default_rng(1).normal(size=(2,) + SHAPE).astype("float32")
    np.testing.assert_allclose(rewritten.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-4)  # fmt: skip
    assert models.count_macs(rewritten) == models.count_macs(model)
    # With at most 0 input channels allowed nothing qualifies: the model itself comes back.
    assert reparam.space_to_depth_convs(model, max_channels=0) is model
    # A Conv2D shared by two inputs of different sizes keeps its plain form (one geometry each).
    conv = keras.layers.Conv2D(4, (8, 4), strides=(4, 2), name="shared")
    a, b = keras.Input((32, 16, 1)), keras.Input((40, 16, 1))
    two = keras.Model([a, b], [conv(a), conv(b)])
    assert reparam.space_to_depth_convs(two) is two


def _random_batch_norm_statistics(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            d = layer.gamma.shape
            layer.gamma.assign(rng.uniform(0.5, 2.0, d))
            layer.beta.assign(rng.normal(size=d))
            layer.moving_mean.assign(rng.normal(size=d))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, d))


def test_batch_norms_that_feed_only_dense_layers_fold_into_them():
    x = keras.Input((12, 6))
    bn = keras.layers.BatchNormalization(name="bn")(x)
    q = keras.layers.Dense(5, use_bias=False, name="q")(bn)  # gains the bias the fold needs
    v = keras.layers.Dense(5, name="v")(keras.layers.Dropout(0.5, name="drop")(bn))
    pooled = keras.layers.GlobalAveragePooling1D(name="pool")(
        keras.layers.BatchNormalization(name="bn_head")(x)
    )
    head = keras.layers.Dense(3, name="head")(pooled)
    # Feeds an Add too: a fold into the Dense would leave the Add's input unnormalised.
    kept = keras.layers.BatchNormalization(name="bn_kept")(x)
    res = keras.layers.Add(name="add")([kept, keras.layers.Dense(6, name="w")(kept)])
    model = keras.Model(x, [q, v, head, res])
    _random_batch_norm_statistics(model)
    folded = reparam.fold_batch_norms_forward(model)
    types = {la.name: type(la) for la in folded.layers}
    assert types["bn"] is types["bn_head"] is FoldedAway
    assert types["bn_kept"] is keras.layers.BatchNormalization
    assert folded.get_layer("q").use_bias and not model.get_layer("q").use_bias
    data = np.random.default_rng(1).normal(size=(4, 12, 6)).astype("float32")
    for want, got in zip(model.predict(data, verbose=0), folded.predict(data, verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert reparam.fold_batch_norms_forward(folded) is folded  # nothing left to fold
    # Left alone: a BatchNorm that is also a model output, and one before a pool over channels.
    out_bn = keras.layers.BatchNormalization(name="out_bn")(x)
    first = keras.layers.GlobalAveragePooling1D(data_format="channels_first")(
        keras.layers.BatchNormalization(name="bn_cf")(x)
    )
    two = keras.Model(x, [out_bn, keras.layers.Dense(2)(out_bn), keras.layers.Dense(2)(first)])
    assert reparam.fold_batch_norms_forward(two) is two
    # A nested model's layers are not folded, even where one shares a folded layer's name.
    inner_in = keras.Input((12, 6))
    inner_bn = keras.layers.BatchNormalization(name="bn")(inner_in)
    inner = keras.Model(inner_in, keras.layers.Add()([inner_bn, inner_in]), name="inner")
    outer_bn = keras.layers.BatchNormalization(name="bn")(x)
    nested = keras.Model(x, [keras.layers.Dense(3, name="q")(outer_bn), inner(x)])
    _random_batch_norm_statistics(nested)
    _random_batch_norm_statistics(inner, seed=4)
    folded = reparam.fold_batch_norms_forward(nested)
    assert type(folded.get_layer("bn")) is FoldedAway
    assert type(folded.get_layer("inner").get_layer("bn")) is keras.layers.BatchNormalization
    for want, got in zip(nested.predict(data, verbose=0), folded.predict(data, verbose=0)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "family, layer_norm_ops",
    # The default LayerNorms (5 in the Conformer's block, 4 post-norms in the ConvTransformer's
    # two blocks, 6 in the SpeechFormer's three) lower to 2 MEAN, SUB, RSQRT, 2 MUL, ADD each.
    [("conformer", 5 * 7), ("conv_transformer", 4 * 7), ("speechformer", 6 * 7)],
)
def test_batch_norm_transformers_convert_without_a_normalisation_op(family, layer_norm_ops):
    from keras_hrf.export import converter, flatbuffer

    model = models.build(family, "light", norm="batch", input_shape=SHAPE, num_classes=4)
    _random_batch_norm_statistics(model)
    data = np.random.default_rng(1).normal(size=(2,) + SHAPE).astype("float32")
    folded = converter.device_graph(model)
    np.testing.assert_allclose(folded.predict(data, verbose=0), model.predict(data, verbose=0),
                               rtol=1e-4, atol=1e-4)  # fmt: skip
    ops = flatbuffer.parse(converter.convert(model, data)).op_names
    plain = models.build(family, "light", input_shape=SHAPE, num_classes=4)
    plain_ops = flatbuffer.parse(converter.convert(plain, data)).op_names
    # The one MEAN left is the classifier's pooling over time; the Conformer's convolution
    # module BatchNorm folds backwards into its depthwise convolution, as before.
    assert "RSQRT" in plain_ops and "SUB" in plain_ops
    assert ops.count("MEAN") == 1 and not {"RSQRT", "SUB"} & set(ops)
    assert len(ops) == len(plain_ops) - layer_norm_ops
    with pytest.raises(ValueError, match="norm must be one of"):
        models.build(family, "light", norm="group", input_shape=SHAPE, num_classes=4)


def test_layer_to_batch_norm_is_a_layer_norm_then_the_batch_norm_it_deploys_as(tmp_path):
    from keras_hrf.export import converter, flatbuffer
    from keras_hrf.layers import LayerNorm, LayerToBatchNorm
    from keras_hrf.training.pipeline import NormAnnealing

    model = models.build("conformer", "light", norm="layer_to_batch", input_shape=SHAPE,
                         num_classes=4, seed=0)  # fmt: skip
    progressive = [la for la in model.layers if isinstance(la, LayerToBatchNorm)]
    assert len(progressive) == 5
    data = np.random.default_rng(1).normal(size=(4,) + SHAPE).astype("float32")
    layer = progressive[0]
    x = np.random.default_rng(2).normal(size=(3, 7, 48)).astype("float32")
    ln = LayerNorm(epsilon=layer.epsilon)
    np.testing.assert_allclose(layer(x), ln(x), rtol=1e-5, atol=1e-5)  # mix = 1 when built
    # Still mixing: left as it is by the converter's rewrite, refused by to_batch_norm.
    assert reparam.finish_layer_to_batch_norms(model) is model
    with pytest.raises(ValueError, match="still mixes in 1 of its LayerNorm"):
        layer.to_batch_norm()
    # The annealing: 1 at the first step, 0 from step `steps` on and at the end of training.
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda b, logs: seen.append(float(layer.mix.numpy()))
    )
    model.compile(optimizer="adam", loss="mse")
    targets = np.zeros((4, 4), "float32")
    model.fit(data, targets, batch_size=1, epochs=2, verbose=0,
              callbacks=[NormAnnealing(progressive, 4), record])  # fmt: skip
    assert seen == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0, 0.0, 0.0]
    assert all(float(la.mix.numpy()) == 0.0 for la in progressive)
    _random_batch_norm_statistics_of(progressive)
    finished = reparam.finish_layer_to_batch_norms(model)
    assert all(type(finished.get_layer(la.name)) is keras.layers.BatchNormalization
               for la in progressive)  # fmt: skip
    np.testing.assert_allclose(finished.predict(data, verbose=0), model.predict(data, verbose=0),
                               rtol=1e-4, atol=1e-4)  # fmt: skip
    np.testing.assert_allclose(converter.device_graph(model).predict(data, verbose=0),
                               model.predict(data, verbose=0), rtol=1e-4, atol=1e-4)  # fmt: skip
    ops = flatbuffer.parse(converter.convert(model, data)).op_names
    assert ops.count("MEAN") == 1 and "RSQRT" not in ops
    # Saved and loaded with its annealing state.
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert float(loaded.get_layer(layer.name).mix.numpy()) == 0.0
    np.testing.assert_allclose(loaded.predict(data, verbose=0), model.predict(data, verbose=0),
                               rtol=1e-5, atol=1e-5)  # fmt: skip


def _random_batch_norm_statistics_of(progressive, seed=3):
    rng = np.random.default_rng(seed)
    for layer in progressive:
        bn = layer.batch_norm
        d = bn.gamma.shape
        bn.moving_mean.assign(rng.normal(size=d))
        bn.moving_variance.assign(rng.uniform(0.2, 3.0, d))
