"""SpaceToDepthConv2D computes the Conv2D it replaces, for the geometries a model's stem has."""

import keras
import numpy as np
import pytest

from keras_hrf.layers import SpaceToDepthConv2D

GEOMETRIES = [
    # (input H, W, C), kernel, strides, padding
    ((300, 64, 1), (10, 4), (4, 2), "same"),  # the ds_cnn light stem
    ((37, 23, 1), (3, 3), (2, 2), "same"),  # odd sizes: uneven "same" padding
    ((37, 23, 2), (3, 3), (2, 2), "valid"),  # valid: the last rows are cropped, not padded
    ((20, 9, 3), (2, 5), (3, 1), "same"),  # kernel shorter than the stride on one axis
    ((16, 16, 1), (4, 4), (4, 4), "valid"),  # kernel == stride: one tap per block
]


@pytest.mark.parametrize("shape,kernel,strides,padding", GEOMETRIES)
def test_same_function_as_conv2d(shape, kernel, strides, padding):
    keras.utils.set_random_seed(0)
    conv = keras.layers.Conv2D(5, kernel, strides=strides, padding=padding, activation="relu")
    x = np.random.default_rng(0).standard_normal((2, *shape)).astype("float32")
    conv.build((None, *shape))
    conv.bias.assign(np.random.default_rng(1).standard_normal(5).astype("float32"))
    expected = keras.ops.convert_to_numpy(conv(x))
    s2d = SpaceToDepthConv2D.from_conv2d(conv)
    s2d.build((None, *shape))
    s2d.set_weights(conv.get_weights())
    got = keras.ops.convert_to_numpy(s2d(x))
    assert got.shape == expected.shape == s2d.compute_output_shape((2, *shape))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # The block kernel holds every original tap once and zeros elsewhere.
    blocks = keras.ops.convert_to_numpy(s2d.block_kernel())
    assert blocks.shape[2] == strides[0] * strides[1] * shape[2]
    np.testing.assert_allclose(np.sort(blocks[blocks != 0]), np.sort(conv.get_weights()[0].ravel()))


def test_config_round_trip_and_refusals():
    layer = SpaceToDepthConv2D(4, (3, 3), (2, 2), padding="valid", use_bias=False, name="stem")
    again = SpaceToDepthConv2D.from_config(layer.get_config())
    assert again.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="padding"):
        SpaceToDepthConv2D(4, (3, 3), (2, 2), padding="causal")
    with pytest.raises(ValueError, match="static"):
        layer.build((None, None, 8, 1))
    dilated = keras.layers.Conv2D(4, 3, strides=2, dilation_rate=1)
    dilated.dilation_rate = (2, 2)
    with pytest.raises(ValueError, match="undilated"):
        SpaceToDepthConv2D.from_conv2d(dilated)
