"""Model families: presets, HRF placement, MACs and clear errors."""

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
    assert large.count_params() > 5 * light.count_params()
    assert models.count_macs(large) > 4 * models.count_macs(light)
    x = np.zeros((2, 300, 64), "float32")
    assert light(x).shape == (2, 8)


def test_default_hrf_expands_only_ffn_first_linear_at_width_2d():
    m = models.build("conv_transformer", "light", hrf=True, input_shape=SHAPE, num_classes=4)
    hrf = [layer for layer in m.layers if isinstance(layer, HRFDense)]
    assert [layer.name for layer in hrf] == ["block0_ffn_fc1", "block1_ffn_fc1"]
    assert all(layer.factors[0].shape == (64, 128) for layer in hrf)
    assert m.name == "conv_transformer_light_hrf"


def test_hrf_sites_options():
    cfg = {"sites": ["ffn_in", "ffn_out", "attention"], "expansion": 1.5}
    m = models.build("conformer", "light", hrf=cfg, input_shape=SHAPE, num_classes=4)
    names = {layer.name for layer in m.layers if isinstance(layer, HRFDense)}
    assert "block0_ffn1_fc2" in names and "block1_mhsa_query" in names
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
        (dict(family="conformer", size="tiny"), "unknown size"),
        (dict(family="conformer", hrf={"sites": ["merge"]}), "has no merge layer"),
        (dict(family="conformer", hrf={"sites": ["conv"]}), "unknown site"),
        (dict(family="conformer", hrf={"expansion": 0.5}), "expansion must be >= 1"),
        (dict(family="conformer", hrf={"width": 3}), "unknown option"),
        (dict(family="conformer", n_layers=3), "unknown hyper-parameter"),
        (dict(family="conv_transformer", activation="gelu"), "TFLite Micro"),
    ],
)
def test_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        models.build(input_shape=SHAPE, **kwargs)
