"""Model families: presets, HRF placement, MACs and clear errors."""

import keras
import numpy as np
import pytest

from keras_hrf import models
from keras_hrf.layers import HRFDense

SHAPE = (200, 16)  # tiny input keeps the suite fast; presets are the real ones


@pytest.mark.parametrize("family", list(models.FAMILIES))
def test_light_presets_fit_a_microcontroller_and_large_are_bigger(family):
    light = models.build(family, "light")  # the real (300, 64) input
    large = models.build(family, "large")
    assert light.count_params() < 100_000
    # "large" is 2.5-4x light (sized for 3 seeds x 6 folds on 2 cores; the presets' comments).
    assert large.count_params() > 2.4 * light.count_params()
    assert models.count_macs(large) > 2.5 * models.count_macs(light)
    x = np.zeros((2, 300, 64), "float32")
    assert light(x).shape == (2, 8)


def test_default_hrf_expands_only_ffn_first_linear_at_width_2d():
    m = models.build("conv_transformer", "light", hrf=True, input_shape=SHAPE, num_classes=4)
    hrf = [layer for layer in m.layers if isinstance(layer, HRFDense)]
    assert [layer.name for layer in hrf] == ["block0_ffn_fc1", "block1_ffn_fc1"]
    d = models.preset_params("conv_transformer", "light")["d_model"]
    assert all(layer.factors[0].shape == (d, 2 * d) for layer in hrf)
    assert m.name == "conv_transformer_light_hrf"


def test_hrf_sites_options():
    cfg = {"sites": ["ffn_in", "ffn_out", "attention"], "expansion": 1.5}
    m = models.build("conformer", "light", hrf=cfg, input_shape=SHAPE, num_classes=4)
    names = {layer.name for layer in m.layers if isinstance(layer, HRFDense)}
    assert "block0_ffn1_fc2" in names and "block0_mhsa_query" in names
    assert not any("pw1" in n for n in names)  # convolution module is not an HRF site
    sf = models.build(
        "speechformer", "light", hrf={"sites": ["merge"]}, input_shape=SHAPE, num_classes=4
    )
    assert {layer.name for layer in sf.layers if isinstance(layer, HRFDense)} == {
        "merge0_proj",
        "merge1_proj",
        "merge2_proj",
    }


def test_factor_options_reach_the_layers():
    cfg = {"factor_lr_scale": 0.5, "factor_weight_decay": 1e-3}
    m = models.build("conv_transformer", "light", hrf=cfg, input_shape=SHAPE, num_classes=4)
    hrf = [layer for layer in m.layers if isinstance(layer, HRFDense)]
    assert hrf and all(layer.factor_lr_scale == 0.5 for layer in hrf)
    # The L2 penalty on the factors is part of the loss (and absent by default).
    factors = [f for layer in hrf for f in layer.factors]
    expected = 1e-3 * sum(float(np.sum(np.square(f.numpy()))) for f in factors)
    assert float(np.sum([loss.numpy() for loss in m.losses])) == pytest.approx(expected, rel=1e-4)
    plain_hrf = models.build("conv_transformer", "light", hrf=True, input_shape=SHAPE)
    assert not plain_hrf.losses


def test_count_macs_of_a_known_model():
    m = models.build(
        "conv_transformer",
        "light",
        input_shape=(8, 4),
        num_classes=3,
        num_blocks=1,
        d_model=8,
        num_heads=2,
        ffn_dim=16,
        stem="conv1d",
    )
    # conv0: 4 frames x 3 x 4 x 8, conv1: 2 x 3 x 8 x 8, q/k/v/out: 4 x (2 x 8 x 8),
    # attention: 2 x 2 x 2 x 8, ffn: 2 x 8 x 16 x 2, logits: 8 x 3
    expected = 4 * 3 * 4 * 8 + 2 * 3 * 8 * 8 + 4 * 2 * 64 + 2 * 2 * 2 * 8 + 2 * 2 * 128 + 24
    assert models.count_macs(m) == expected


def test_seed_makes_weights_reproducible():
    a = models.build("speechformer", "light", hrf=True, input_shape=SHAPE, seed=3)
    b = models.build("speechformer", "light", hrf=True, input_shape=SHAPE, seed=3)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(family="transformerx"), "unknown model family"),
        (dict(family="conformer", size="medium"), "unknown size"),
        (dict(family="conformer", hrf={"sites": ["merge"]}), "has no merge layer"),
        (dict(family="conformer", hrf={"sites": ["conv"]}), "unknown site"),
        (dict(family="conformer", hrf={"expansion": 0.5}), "expansion must be >= 1"),
        (dict(family="conformer", hrf={"width": 3}), "unknown option"),
        (dict(family="conformer", n_layers=3), "unknown hyper-parameter"),
        (dict(family="conv_transformer", activation="gelu"), "TFLite Micro"),
        (dict(family="conformer", activation="gelu"), "'silu' or 'relu'"),
    ],
)
def test_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.build(input_shape=SHAPE, **kwargs)


def test_ds_cnn_default_hrf_expands_its_pointwise_convolutions():
    from keras_hrf.layers import HRFPointwiseConv2D

    m = models.build("ds_cnn", "light", hrf=True, num_classes=4)
    hrf = [layer for layer in m.layers if isinstance(layer, HRFDense)]
    assert hrf and all(isinstance(layer, HRFPointwiseConv2D) for layer in hrf)
    assert [layer.name for layer in hrf] == [f"block{i}_pw" for i in range(len(hrf))]
    plain = models.build("ds_cnn", "light", num_classes=4)
    pointwise = [la for la in plain.layers if la.name.endswith("_pw")]
    assert all(isinstance(la, keras.layers.Conv2D) and la.kernel_size == (1, 1) for la in pointwise)
    # The Conformer's convolution module is a pointwise site too (per-frame linears there).
    conf = models.build("conformer", "light", hrf={"sites": ["pointwise"]}, input_shape=SHAPE)
    assert {la.name for la in conf.layers if isinstance(la, HRFDense)} == {
        "block0_conv_pw1",
        "block0_conv_pw2",
    }
    with pytest.raises(ValueError, match="no ffn_in layer"):
        models.build("ds_cnn", "light", hrf={"sites": ["ffn_in"]})


def test_conv2d_stem_and_ds_cnn_macs():
    m = models.build(
        "conv_transformer",
        "light",
        input_shape=(8, 4),
        num_classes=3,
        num_blocks=0,
        d_model=8,
        stem="conv2d",
        stem_channels=(2, 3),
        stem_strides=((2, 2), (2, 1)),
    )
    # conv0: (4 x 2 out) x 9 x 1 x 2, conv1: (2 x 2) x 9 x 2 x 3, proj: 2 x 6 x 8, logits: 8 x 3
    assert models.count_macs(m) == 8 * 9 * 2 + 4 * 9 * 2 * 3 + 2 * 6 * 8 + 8 * 3
    d = models.build(
        "ds_cnn",
        "light",
        input_shape=(8, 4),
        num_classes=3,
        first_filters=2,
        first_kernel=(3, 3),
        first_strides=(2, 2),
        filters=(4,),
        strides=((2, 2),),
    )
    # conv0: (4 x 2) x 9 x 2, dw: (2 x 1) x 9 x 2, pw: 2 x 2 x 4, logits: 4 x 3
    assert models.count_macs(d) == 8 * 9 * 2 + 2 * 9 * 2 + 2 * 2 * 4 + 4 * 3


def test_batch_norm_statistics_follow_a_small_corpus_within_one_epoch():
    """~30 steps (one RAVDESS epoch) move the moving mean most of the way to the data's mean.

    With Keras' default momentum (0.99) 74 % of the initial 0 would remain (mean ~1.3 here), so
    validation early in training would normalise with statistics of no data at all.
    """
    from keras_hrf.models.blocks import batch_norm

    keras.utils.set_random_seed(0)
    inp = keras.Input((4,))
    bn = batch_norm("bn")
    model = keras.Model(inp, bn(inp))
    model.compile(optimizer="sgd", loss="mse")
    x = 5.0 + np.random.default_rng(0).normal(size=(30 * 32, 4)).astype("float32")
    model.fit(x, x, batch_size=32, epochs=1, verbose=0, shuffle=False)
    assert np.all(np.abs(bn.moving_mean.numpy() - 5.0) < 0.5)
    assert np.all(np.abs(bn.moving_variance.numpy() - 1.0) < 0.5)
    for family in ("conformer", "ds_cnn"):
        m = models.build(family, "light", input_shape=SHAPE)
        bns = [la for la in m.layers if isinstance(la, keras.layers.BatchNormalization)]
        assert bns and all(la.momentum == bn.momentum for la in bns)


def test_conformer_relu_keeps_only_the_glu_sigmoid():
    """``activation="relu"``: the FFNs and the convolution module lose their SiLU (a LOGISTIC
    and a MUL per element on a microcontroller); the GLU's sigmoid stays. Same parameters."""
    silu = models.build("conformer", "light", input_shape=SHAPE)
    relu = models.build("conformer", "light", input_shape=SHAPE, activation="relu")

    def sigmoids(model):
        acts = [ly for ly in model.layers if isinstance(ly, keras.layers.Activation)]
        dense = [ly for ly in model.layers if isinstance(ly, keras.layers.Dense)]
        names = [keras.activations.serialize(ly.activation) for ly in acts + dense]
        return sum("silu" in str(n) for n in names)

    assert sigmoids(silu) >= 3 and sigmoids(relu) == 0
    assert relu.count_params() == silu.count_params()
