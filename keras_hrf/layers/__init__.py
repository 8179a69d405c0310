"""Keras layers of keras-hrf: the HRF layer and the TFLite-Micro-friendly building blocks."""

from keras_hrf.layers.attention import MultiHeadAttentionCore
from keras_hrf.layers.folded import FoldedAway
from keras_hrf.layers.glu import GLU
from keras_hrf.layers.hrf_dense import FACTOR_INITS, HRFDense, HRFPointwiseConv2D
from keras_hrf.layers.layer_norm import LayerNorm
from keras_hrf.layers.layer_to_batch_norm import LayerToBatchNorm
from keras_hrf.layers.space_to_depth_conv import SpaceToDepthConv2D

__all__ = [
    "FACTOR_INITS",
    "FoldedAway",
    "GLU",
    "HRFDense",
    "HRFPointwiseConv2D",
    "LayerNorm",
    "LayerToBatchNorm",
    "MultiHeadAttentionCore",
    "SpaceToDepthConv2D",
]
