"""deHRF and its inverse: HRF layers <-> plain layers on any functional model (graph rewrites).

Contract of :func:`merge` (in the style of tensorflow/model-optimization's graph transforms):
same inputs, same outputs (up to float rounding), every HRF layer replaced by its plain layer of
the same name (``HRFDense`` -> ``Dense``, ``HRFPointwiseConv2D`` -> 1x1 ``Conv2D``, see
:meth:`~keras_hrf.layers.HRFDense.deploy_layer`) holding ``merged_kernel()`` / ``merged_bias()``
(multiplied out in float64), every other layer and weight copied unchanged. For a model from
:func:`keras_hrf.models.build` the result has exactly the layer types, parameter count and MACs of
the same preset built with ``hrf=None``. :func:`expand` goes the other way, function-preserving.
All of them are :func:`keras_hrf.graph.rewrite`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import numpy as np

from keras_hrf.graph import rewrite
from keras_hrf.layers import FoldedAway, HRFDense, LayerToBatchNorm
from keras_hrf.models.hrf_config import HRFConfig


def has_hrf(model: keras.Model) -> bool:
    """Whether any HRF layer is left anywhere in ``model`` (nested models included)."""
    return any(isinstance(layer, HRFDense) for layer in _walk(model))


def hrf_layers(model: keras.Model) -> list[HRFDense]:
    """All HRF layers of ``model`` (nested models included), in graph order."""
    return [layer for layer in _walk(model) if isinstance(layer, HRFDense)]


def _walk(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk(layer)


def merge(model: keras.Model) -> keras.Model:
    """Replace every HRF layer of a trained model by its plain layer with merged weights.

    Args:
        model: A functional (or Sequential) model, e.g. from :func:`keras_hrf.models.build` with
            ``hrf`` set, or a user's own functional model containing ``HRFDense`` layers.

    Returns:
        A new model; the input model is left untouched. A model without HRF layers gives an
        equivalent copy.

    Raises:
        TypeError: for a subclassed model (the message says what to do instead).
    """

    def to_plain(layer):
        return layer.deploy_layer() if isinstance(layer, HRFDense) else None

    return rewrite(model, to_plain, weights_for=lambda layer: layer.merged_weights())


def expand(
    model: keras.Model,
    hrf: HRFConfig | dict | bool = True,
    select: Callable[[keras.layers.Layer], bool] | None = None,
    seed: int | None = None,
) -> keras.Model:
    """The inverse of :func:`merge`: ``Dense`` layers -> ``HRFDense``, the function unchanged.

    Every selected ``Dense`` becomes an ``HRFDense`` of the same name whose factor chain
    multiplies out to the Dense kernel exactly: the first factor is ``[I | 0]`` (square factors
    ``I``) and the last holds the kernel in its first ``d`` rows and a Glorot draw below them, which
    the chain ignores until training moves the first factor. So ``merge(expand(m))`` predicts what
    ``m`` does, and fine-tuning the expanded model trains it with HRF from a trained start.

    Args:
        model: A functional (or Sequential) model.
        hrf: Factor options (:class:`~keras_hrf.models.HRFConfig` fields; ``sites`` and
            ``quantize_merged`` do not apply here).
        select: ``fn(layer) -> bool``: which ``Dense`` layers to expand (default: all but the
            last, the classifier).
        seed: Seed of the Glorot draw of the unused rows.

    Returns:
        A new model; ``model`` is left untouched.
    """
    cfg = HRFConfig.from_any(hrf) or HRFConfig()
    dense = [
        layer for layer in model.layers if type(layer) is keras.layers.Dense
    ]  # exact class: a QAT twin is not a plain Dense
    if select is None:
        last = dense[-1].name if dense else None
        chosen = {layer.name for layer in dense if layer.name != last}
    else:
        chosen = {layer.name for layer in dense if select(layer)}
    rng = np.random.default_rng(seed)
    kwargs = {k: v for k, v in cfg.layer_kwargs().items() if k != "quantize_merged"}
    kwargs["factor_init"] = "identity"

    def to_hrf(layer):
        if layer.name not in chosen:
            return None
        return HRFDense(
            layer.units,
            activation=layer.activation,
            use_bias=layer.use_bias,
            name=layer.name,
            dtype=layer.dtype_policy,
            **kwargs,
        )

    def weights(layer):
        d, units = layer.kernel.shape
        new = to_hrf(layer)
        new.build((None, d))
        k = new.inner_width(int(d))
        limit = np.sqrt(6.0 / (k + units))
        last = rng.uniform(-limit, limit, size=(k, units)).astype("float32")
        last[:d] = np.asarray(layer.kernel)
        out = {f"factor_{i}": np.asarray(f) for i, f in enumerate(new.factors[:-1])}
        out[f"factor_{len(new.factors) - 1}"] = last
        if layer.use_bias:
            out["bias"] = np.asarray(layer.bias)
        return out

    return rewrite(model, to_hrf, weights_for=weights)


def set_layer_norm_lowering(model: keras.Model, lowering: str) -> keras.Model:
    """The model with every :class:`~keras_hrf.layers.LayerNorm` set to ``lowering``.

    The float function is unchanged (see :mod:`keras_hrf.layers.layer_norm`): this only picks
    which TFLite ops the normalisations convert to, e.g. ``"l2"`` for a trained model whose
    ``"rsqrt"`` int8 graph loses accuracy on quiet frames.

    Args:
        model: A functional (or Sequential) model.
        lowering: One of :data:`keras_hrf.layers.layer_norm.LOWERINGS`.

    Returns:
        A new model (weights copied); the input model is left untouched.
    """
    from keras_hrf.layers.layer_norm import LOWERINGS, LayerNorm

    if lowering not in LOWERINGS:
        raise ValueError(f"LayerNorm lowering must be one of {LOWERINGS}, got {lowering!r}")

    def relower(layer):
        if type(layer) is not LayerNorm:  # a QAT twin mirrors one lowering: strip it first
            return None
        return LayerNorm.from_config({**layer.get_config(), "lowering": lowering})

    return rewrite(model, relower)


#: Input channels up to which :func:`space_to_depth_convs` rewrites a strided convolution.
SPACE_TO_DEPTH_MAX_CHANNELS = 4
#: Largest (block kernel taps) / (kernel taps) it accepts: the zero taps are MACs too.
SPACE_TO_DEPTH_MAX_TAP_RATIO = 1.25


def space_to_depth_convs(
    model: keras.Model, max_channels: int = SPACE_TO_DEPTH_MAX_CHANNELS
) -> keras.Model:
    """The model with every strided ``Conv2D`` over few channels computed over blocks.

    Each ``Conv2D`` with a stride > 1, at most ``max_channels`` input channels, a kernel that
    fills its blocks (at most :data:`SPACE_TO_DEPTH_MAX_TAP_RATIO` times its taps once rounded up
    to whole strides), no dilation or groups and a static input becomes a
    :class:`~keras_hrf.layers.SpaceToDepthConv2D` of the same name and weights: the same function
    (up to float summation order), a TFLite graph that CMSIS-NN runs faster. Measured on
    Cortex-M4 (``benchmarks/device_cost.py``): the light ds_cnn's 10 x 4 stem at stride (4, 2)
    (ratio 1.2) takes 2.4 M fewer instructions per inference (-9 %) for 1.1 KB more arena; the
    Transformers' 3 x 3 stems at stride 2 (ratio 1.78, not rewritten) took 0.6 M more and
    their arenas grew by 23 KB (the padded and rearranged copies of the input). The converter
    calls it by default.

    Args:
        model: A functional (or Sequential) model.
        max_channels: Rewrite only convolutions over at most this many input channels (the
            first convolution of a spectrogram model has one; with many channels the im2col of
            the plain convolution is already efficient).

    Returns:
        A new model (weights copied); the input model is left untouched. A model with nothing
        to rewrite is returned as it is.
    """
    from keras_hrf.layers import SpaceToDepthConv2D

    def candidate(layer) -> bool:
        if type(layer) is not keras.layers.Conv2D or tuple(layer.strides) == (1, 1):
            return False
        if tuple(layer.dilation_rate) != (1, 1) or layer.groups != 1:
            return False
        if layer.data_format != "channels_last":
            return False
        if len(layer._inbound_nodes) != 1:  # a shared layer: the geometry is per input shape
            return False
        shape = tuple(layer.input.shape)
        if None in shape[1:] or shape[-1] > max_channels:
            return False
        (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
        padded = math.ceil(kh / sh) * sh * math.ceil(kw / sw) * sw
        return padded <= SPACE_TO_DEPTH_MAX_TAP_RATIO * kh * kw

    if not any(candidate(layer) for layer in _walk(model)):
        return model
    return rewrite(
        model, lambda layer: SpaceToDepthConv2D.from_conv2d(layer) if candidate(layer) else None
    )


def one_channel_convs_to_depthwise(model: keras.Model) -> keras.Model:
    """The model with every ``Conv2D`` over a single input channel into a multiple of 4 as a
    ``DepthwiseConv2D``.

    A convolution of one channel into ``F`` is a depthwise convolution with ``depth_multiplier
    = F``: the kernel ``(kh, kw, 1, F)`` is laid out the same, so the weights carry over as they
    are and every output is the same sum of the same products, quantized per output channel
    either way (the int8 model is calibrated anew, so an activation range may round
    differently: measured on the 18 trained light Conformer runs, int8 UA +0.04 points, argmax
    agreement 99.98 %, ``benchmarks/device_graph_ua.py``). What changes is the CMSIS-NN kernel:
    ``arm_convolve_s8`` builds a 9-value im2col column per output pixel for a 3 x 3 kernel over
    one channel, while the depthwise kernel's channel-multiplier path
    (``depthwise_conv_s8_mult_4``: a multiplier divisible by 4, no dilation; other multipliers
    get a generic loop, not rewritten) computes four outputs per pass. Measured on Cortex-M4
    (``benchmarks/device_cost.py``): the light Conformer's first stem convolution (3 x 3,
    stride 2, 1 -> 4 channels) takes 2.2 M instead of 3.7 M instructions; on Cortex-M55
    CMSIS-NN turns such a depthwise convolution back into a convolution (no change). The
    converter calls it by default, after :func:`space_to_depth_convs` (which takes the strided
    stems it suits first: faster still for ds_cnn's).

    Args:
        model: A functional (or Sequential) model.

    Returns:
        A new model (weights copied); the input model is left untouched. A model with nothing
        to rewrite is returned as it is.
    """

    def candidate(layer) -> bool:
        if type(layer) is not keras.layers.Conv2D or layer.groups != 1:
            return False
        if layer.data_format != "channels_last" or len(layer._inbound_nodes) != 1:
            return False
        if layer.filters % 4 or tuple(layer.dilation_rate) != (1, 1):
            return False
        return layer.input.shape[-1] == 1

    def to_depthwise(layer):
        if not candidate(layer):
            return None
        return keras.layers.DepthwiseConv2D(
            kernel_size=layer.kernel_size,
            strides=layer.strides,
            padding=layer.padding,
            depth_multiplier=layer.filters,
            dilation_rate=layer.dilation_rate,
            activation=layer.get_config()["activation"],
            use_bias=layer.use_bias,
            name=layer.name,
            dtype=layer.dtype_policy,
        )

    if not any(candidate(layer) for layer in _walk(model)):
        return model
    # Conv2D's kernel (kh, kw, 1, F) is DepthwiseConv2D's (kh, kw, 1, multiplier), both named
    # "kernel" (and "bias"): rewrite's default copy by name carries them over.
    return rewrite(model, to_depthwise)


#: Layers a per-channel affine map passes through unchanged on its way to a ``Dense`` at
#: inference: ``mean_t(s * x + t) = s * mean_t(x) + t``, and Dropout is the identity.
_AFFINE_TRANSPARENT = (keras.layers.Dropout, keras.layers.GlobalAveragePooling1D)


def _consumers(layer) -> list:
    return [node.operation for node in layer._outbound_nodes]


def _transparent(layer) -> bool:
    if isinstance(layer, keras.layers.GlobalAveragePooling1D):
        return layer.data_format == "channels_last"  # else it averages the channels
    return isinstance(layer, _AFFINE_TRANSPARENT)


def _foldable_dense(bn, outputs: set[int]) -> list[keras.layers.Dense] | None:
    """The ``Dense`` layers that every path out of ``bn`` ends in (through
    :data:`_AFFINE_TRANSPARENT` layers), or ``None`` where some path ends elsewhere or passes
    a layer whose output is a model output (``outputs``: ids of those layers)."""
    found, frontier = [], _consumers(bn)
    if not frontier or id(bn) in outputs:
        return None
    while frontier:
        layer = frontier.pop()
        if len(layer._inbound_nodes) != 1:  # shared: its other input is not normalised
            return None
        if type(layer) is keras.layers.Dense:
            found.append(layer)
        elif _transparent(layer) and id(layer) not in outputs and _consumers(layer):
            frontier.extend(_consumers(layer))
        else:
            return None
    return found


def fold_batch_norms_forward(model: keras.Model) -> keras.Model:
    """The model with every last-axis ``BatchNormalization`` that only feeds ``Dense`` layers
    folded into those layers' kernels and biases.

    At inference a BatchNormalization is a per-channel affine map ``s * x + t`` (``s = gamma /
    sqrt(var + eps)``, ``t = beta - mean * s``); a Dense after it computes ``(s * x + t) W + b =
    x (diag(s) W) + (t W + b)``. The TFLite converter folds a BatchNormalization into the
    convolution *before* it, but not into a Dense *after* it, which is where a pre-norm block's
    normalisation sits (``x + f(BN(x))``, ``norm="batch"`` of the Conformer): converted as it
    is, each would cost a MUL and an ADD per element. Here the BatchNormalization becomes a
    :class:`~keras_hrf.layers.FoldedAway` of the same name (no TFLite op) and each Dense it
    reaches, directly or through Dropout / GlobalAveragePooling1D (which commute with a
    per-channel affine map), gets the folded weights, multiplied out in float64. A
    BatchNormalization with any other consumer, one on a path that is also a model output,
    one called with a mask and those inside nested models are left alone. Part of
    :func:`fold_normalizations`, which the converter and QAT fine-tuning call.

    Args:
        model: A functional (or Sequential) model, HRF layers merged.

    Returns:
        A new model computing the same function (up to float rounding); the input model is left
        untouched. A model with nothing to fold is returned as it is.
    """
    # Keyed by the layer objects' ids: rewrite also visits the layers of nested models, one of
    # which may share a name with a top-level layer (only top-level ones are folded).
    folds: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id(Dense) -> (s, t) of its input
    batch_norms: set[int] = set()
    outputs = {id(t._keras_history.operation) for t in model.outputs}
    for layer in model.layers:
        if type(layer) is not keras.layers.BatchNormalization or len(layer._inbound_nodes) != 1:
            continue
        node = layer._inbound_nodes[0]
        if len(node.input_tensors) != 1 or node.arguments.kwargs.get("mask") is not None:
            continue  # called with a mask: leave it to the converter as it is
        rank = len(node.input_tensors[0].shape)
        if layer.axis not in (-1, rank - 1):
            continue
        dense = _foldable_dense(layer, outputs)
        if not dense or any(id(d) in folds for d in dense):
            continue
        var = np.asarray(layer.moving_variance, "float64")
        mean = np.asarray(layer.moving_mean, "float64")
        gamma = np.asarray(layer.gamma, "float64") if layer.scale else np.ones_like(var)
        beta = np.asarray(layer.beta, "float64") if layer.center else np.zeros_like(var)
        s = gamma / np.sqrt(var + layer.epsilon)
        for d in dense:
            folds[id(d)] = (s, beta - mean * s)
        batch_norms.add(id(layer))
    if not folds:
        return model

    def replace(layer):
        if id(layer) in batch_norms:
            return FoldedAway(name=layer.name, dtype=layer.dtype_policy.name)
        if id(layer) in folds:
            return keras.layers.Dense.from_config({**layer.get_config(), "use_bias": True})
        return None

    def weights(layer):
        if id(layer) in batch_norms:
            return {}
        s, t = folds[id(layer)]
        kernel = np.asarray(layer.kernel, "float64")
        bias = np.asarray(layer.bias, "float64") if layer.use_bias else 0.0
        return {
            "kernel": (s[:, None] * kernel).astype("float32"),
            "bias": (t @ kernel + bias).astype("float32"),
        }

    return rewrite(model, replace, weights_for=weights)


def finish_layer_to_batch_norms(model: keras.Model) -> keras.Model:
    """The model with every :class:`~keras_hrf.layers.LayerToBatchNorm` whose annealing is over
    (``mix == 0``) as the BatchNormalization it has become (same name and function).

    One still mixing in its LayerNorm is left as it is (it converts as both normalisations).
    :func:`fold_normalizations` calls it before :func:`fold_batch_norms_forward` folds the
    BatchNormalizations away.

    Returns:
        A new model; the input model is left untouched. A model with nothing to replace is
        returned as it is.
    """

    def finished(layer) -> bool:
        return isinstance(layer, LayerToBatchNorm) and layer.annealed

    if not any(finished(layer) for layer in _walk(model)):
        return model
    return rewrite(
        model,
        lambda layer: layer.to_batch_norm() if finished(layer) else None,
        weights_for=lambda layer: layer.batch_norm_weights(),
    )


def fold_normalizations(model: keras.Model) -> keras.Model:
    """:func:`finish_layer_to_batch_norms`, then :func:`fold_batch_norms_forward`: the model's
    normalisations as the device runs them (none, where they all feed Dense layers). The
    converter calls it by default (:func:`keras_hrf.export.converter.device_graph`), and so
    does QAT fine-tuning (:func:`keras_hrf.training.fine_tune`), which must tune the folded
    kernels.

    Returns:
        ``model`` itself when nothing is rewritten, else a new model.
    """
    return fold_batch_norms_forward(finish_layer_to_batch_norms(model))
