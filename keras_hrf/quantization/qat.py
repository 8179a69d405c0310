"""Quantization-aware twins (QAT) of a deployed model's layers, in Keras 3, without tfmot.

Full-int8 post-training quantization rounds every weight and every intermediate tensor of the
graph; a model trained in float has never seen that noise. QAT fine-tunes the *merged* (deHRF)
model for a few epochs with the rounding in the forward pass, so the weights move to where int8
costs little. The mechanism is the same graph rewrite as :func:`keras_hrf.reparam.merge`:

    qat_model = qat.prepare(merged, calibration_data=x_train)  # fake-quant twins, same names
    ... qat_model.fit(...)                                      # keras_hrf.training.fine_tune
    deployed = qat.strip(qat_model)                             # plain layers, tuned weights
    flat = tflite.convert(deployed, x_train)                    # the converter calibrates

What the twins fake-quantize, mirroring the tensors of the int8 TFLite graph:

- ``Dense`` / ``Conv1D`` / ``Conv2D`` / depthwise kernels per output channel, symmetric (the
  converter folds a following ``BatchNormalization`` into the depthwise kernel; per-channel
  symmetric quantization commutes with that per-channel scaling, so quantizing the unfolded
  kernel is exact);
- layer outputs per tensor, asymmetric (``Dense``, ``Conv1D``, ``BatchNormalization``, ``Add``,
  the global average pool, and the pre-activation of a Dense whose activation TFLite does not
  fuse, e.g. SiLU);
- inside :class:`~keras_hrf.layers.LayerNorm` every step the int8 graph has (MEAN, SUB, MUL,
  MEAN, ADD, RSQRT, MUL, MUL, ADD);
- inside :class:`~keras_hrf.layers.MultiHeadAttentionCore` the query-key logits and the context
  of each head, and the softmax output at TFLite's fixed int8 scale (1/256, zero point -128);
- SiLU and :class:`~keras_hrf.layers.GLU` as TFLite runs them: the sigmoid at LOGISTIC's fixed
  int8 scale (1/256, zero point -128), then the product, fake-quantized.

Activation ranges are *calibrated*, not learned: :func:`calibrate` runs the float forward pass
over representative data and records each tensor's global min / max, which is the rule the
TFLite converter applies to the same data at the end. ``training.fine_tune`` recalibrates at the
start of every epoch, so the ranges track the weights as they move, and the ranges the model is
tuned under are the ones the converter will choose (with tfmot the converter reads the ranges from
the fake-quant nodes; here it recalibrates, so the two must agree by construction). The ranges
are dropped by :func:`strip`.

Not mirrored (left in float during QAT): the model input's quantization and average pooling,
whose int8 kernel keeps its input's scale; the runtimes' own requantization rounding.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_hrf.graph import rewrite, variable_name
from keras_hrf.layers import GLU, LayerNorm, MultiHeadAttentionCore
from keras_hrf.quantization.fake_quant import (
    fake_quant_activation,
    fake_quant_fixed,
    fake_quant_per_channel,
)

#: TFLite's fixed int8 quantization of a softmax (and a LOGISTIC) output: [0, 1) in 1/256 steps.
SOFTMAX_SCALE, SOFTMAX_ZERO_POINT = 1.0 / 256.0, -128

#: Activations that TFLite fuses into the op before them (no separate int8 tensor).
_FUSED = {"linear", "relu", "relu6"}


class _RangeTracked:
    """Mixin: per-tensor activation ranges as non-trainable weights, and fake quantization.

    A twin lists its tensors in :meth:`_range_tags`; the mixin's ``build`` builds the base layer
    first (so that its weights come first in ``get_weights()``) and then adds a ``(min, max)``
    pair per tag. ``call`` fake-quantizes with :meth:`_fq`.
    """

    _calibrating = False  # True only inside calibrate()

    def _range_tags(self, input_shape) -> list[str]:
        """The int8 tensors this twin fake-quantizes (default: its output)."""
        del input_shape
        return ["out"]

    def build(self, input_shape):
        super().build(input_shape)
        self._ranges = {}
        for tag in self._range_tags(input_shape):
            lo = self.add_weight(name=f"{tag}_min", shape=(), initializer="zeros", trainable=False)
            hi = self.add_weight(name=f"{tag}_max", shape=(), initializer="zeros", trainable=False)
            self._ranges[tag] = (lo, hi)
        # 0 until calibrated: an uncalibrated twin passes its tensors through unquantized.
        self._ranges_set = self.add_weight(
            name="ranges_set", shape=(), initializer="zeros", trainable=False
        )

    def _fq(self, tag: str, x, training):
        del training  # the same quantization in training and inference; ranges are calibrated
        lo, hi = self._ranges[tag]
        if self._calibrating:
            # Eager calibration pass (see calibrate()): widen the range to this batch's values
            # and pass x through unquantized, as the converter's float calibration run does.
            lo.assign(ops.minimum(lo, ops.cast(ops.min(x), "float32")))
            hi.assign(ops.maximum(hi, ops.cast(ops.max(x), "float32")))
            return x
        quantized = fake_quant_activation(x, lo, hi)
        return ops.where(self._ranges_set > 0, quantized, x)

    def activation_ranges(self) -> dict[str, tuple[float, float]]:
        """The calibrated ``{tag: (min, max)}`` of this layer (for reports and tests)."""
        return {
            tag: (float(ops.convert_to_numpy(lo)), float(ops.convert_to_numpy(hi)))
            for tag, (lo, hi) in self._ranges.items()
        }


def _act_name(activation) -> str:
    return getattr(activation, "__name__", str(activation))


def _int8_sigmoid(x):
    # TFLite's int8 LOGISTIC has a fixed output quantization: scale 1/256, zero point -128.
    return fake_quant_fixed(ops.sigmoid(x), SOFTMAX_SCALE, SOFTMAX_ZERO_POINT)


def _is_silu(activation) -> bool:
    return _act_name(activation) in ("silu", "swish")


class _QuantizedKernel(_RangeTracked):
    """Mixin for layers whose ``kernel`` property feeds their call (Dense, Conv): the kernel is
    fake-quantized per output channel (last axis), except while calibrating, because the
    converter calibrates activations with the float weights."""

    @property
    def kernel(self):
        kernel = super().kernel
        return kernel if self._calibrating else fake_quant_per_channel(kernel, axis=-1)


@keras.saving.register_keras_serializable(package="keras_hrf")
class QATDense(_QuantizedKernel, keras.layers.Dense):
    """``Dense`` with a per-channel fake-quantized kernel and a fake-quantized output.

    Same constructor and config as ``keras.layers.Dense``; shapes ``(..., d) -> (..., units)``.
    """

    def _range_tags(self, input_shape):
        return ["out"] if _act_name(self.activation) in _FUSED else ["pre", "out"]

    def call(self, inputs, training=None):
        y = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            y = ops.add(y, self.bias)
        if "pre" in self._ranges:
            y = self._fq("pre", y, training)
        if _is_silu(self.activation) and not self._calibrating:
            y = y * _int8_sigmoid(y)  # TFLite: LOGISTIC (fixed int8 scale), then MUL
        elif self.activation is not None:
            y = self.activation(y)
        return self._fq("out", y, training)


@keras.saving.register_keras_serializable(package="keras_hrf")
class QATConv1D(_QuantizedKernel, keras.layers.Conv1D):
    """``Conv1D`` (TFLite CONV_2D) with per-channel fake-quantized kernel and output."""

    def call(self, inputs, training=None):
        return self._fq("out", super().call(inputs), training)


class _QuantizedDepthwise(_RangeTracked):
    """Mixin for depthwise convolutions (1-D and 2-D): the kernel ``(*k, c, m)`` fake-quantized
    per output channel (``c x m`` of them); no output quantization, because in our blocks a
    ``BatchNormalization`` follows, which the converter folds into this op, so the int8 tensor
    is the normalisation's output."""

    def _range_tags(self, input_shape):
        return []

    def call(self, inputs, training=None):
        kernel = self.kernel
        if not self._calibrating:
            shape = tuple(kernel.shape)
            flat = ops.reshape(kernel, shape[:-2] + (shape[-2] * shape[-1],))
            kernel = ops.reshape(fake_quant_per_channel(flat), shape)
        out = ops.depthwise_conv(
            inputs,
            kernel,
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        if self.use_bias:
            out = ops.add(out, ops.reshape(self.bias, (1,) * (len(out.shape) - 1) + (-1,)))
        if self.activation is not None:
            out = self.activation(out)
        return out


@keras.saving.register_keras_serializable(package="keras_hrf")
class QATDepthwiseConv1D(_QuantizedDepthwise, keras.layers.DepthwiseConv1D):
    """``DepthwiseConv1D`` with its kernel fake-quantized per output channel (in x multiplier)."""


@keras.saving.register_keras_serializable(package="keras_hrf")
class QATConv2D(_QuantizedKernel, keras.layers.Conv2D):
    """``Conv2D`` with a per-channel fake-quantized kernel.

    Its output is an int8 tensor of the TFLite graph only when the convolution has a bias: the
    bias-free convolutions of these models (``ds_cnn``) are followed by a
    ``BatchNormalization`` that the converter folds into them, so their int8 tensor is the
    normalisation's output (fake-quantized by :class:`QATBatchNormalization`).
    """

    def _range_tags(self, input_shape):
        return ["out"] if self.use_bias else []

    def call(self, inputs, training=None):
        out = super().call(inputs)
        return self._fq("out", out, training) if self.use_bias else out


@keras.saving.register_keras_serializable(package="keras_hrf")
class QATDepthwiseConv2D(_QuantizedDepthwise, keras.layers.DepthwiseConv2D):
    """``DepthwiseConv2D`` with its kernel fake-quantized per output channel."""


@keras.saving.register_keras_serializable(package="keras_hrf")
class QATBatchNormalization(_RangeTracked, keras.layers.BatchNormalization):
    """``BatchNormalization`` with frozen statistics and a fake-quantized output.

    The converter folds the normalisation into the convolution before it, with the moving
    statistics; QAT therefore keeps them frozen (inference-mode normalisation, as tfmot does
    for folded batch norms), and only the ranges track the training batches.
    """

    def call(self, inputs, training=None, mask=None):
        return self._fq("out", super().call(inputs, training=False, mask=mask), training)


@keras.saving.register_keras_serializable(package="keras_hrf")
class QATAdd(_RangeTracked, keras.layers.Add):
    """``Add`` (a residual connection) with a fake-quantized sum."""

    def call(self, inputs, training=None):
        return self._fq("out", super().call(inputs), training)


@keras.saving.register_keras_serializable(package="keras_hrf")
class QATGlobalAveragePooling1D(_RangeTracked, keras.layers.GlobalAveragePooling1D):
    """Global average pooling (TFLite MEAN) with a fake-quantized output."""

    def call(self, inputs, mask=None, training=None):
        return self._fq("out", super().call(inputs, mask=mask), training)


@keras.saving.register_keras_serializable(package="keras_hrf")
class QATLayerNorm(_RangeTracked, LayerNorm):
    """:class:`LayerNorm` with every int8 tensor of its TFLite graph fake-quantized.

    The ``"pool"`` lowering becomes ``"rsqrt"`` here (the same float function): TFLite gives an
    AVERAGE_POOL_2D its input's scale, which a fake-quantized mean with its own range would not
    simulate, so a QAT model is tuned, and exported, with MEAN.
    """

    def __init__(self, *args, **kwargs):
        if kwargs.get("lowering") == "pool":
            kwargs["lowering"] = "rsqrt"
        super().__init__(*args, **kwargs)

    def _range_tags(self, input_shape):
        if self.lowering == "l2":
            # L2_NORMALIZATION's output has a fixed scale; "scaled" is the MUL by sqrt(d)*gamma.
            tags = ["mean", "centred", "scaled"]
        else:
            tags = ["mean", "centred", "square", "var", "var_eps", "rsqrt", "normed"]
            tags += ["scaled"] if self.scale else []
        return tags + (["out"] if self.center else [])

    def call(self, x, training=None):
        fq = self._fq
        mean = fq("mean", self._mean(x), training)
        centred = fq("centred", x - mean, training)
        if self.lowering == "l2":
            normed = fake_quant_fixed(self._l2_normalize(centred), 1 / 128, 0)
            y = fq("scaled", normed * self._unit_gain(x.shape[-1]), training)
        else:
            square = fq("square", centred * centred, training)
            var = fq("var", ops.mean(square, axis=-1, keepdims=True), training)
            var_eps = fq("var_eps", var + self.epsilon, training)
            # An int8 variance can round to 0, where TFLite's RSQRT saturates at its output
            # range; the floor keeps the float twin finite (rsqrt(0) = inf would make NaN
            # gradients).
            rsqrt = fq("rsqrt", ops.rsqrt(ops.maximum(var_eps, self.epsilon)), training)
            y = fq("normed", centred * rsqrt, training)
            if self.gamma is not None:
                y = fq("scaled", y * self.gamma, training)
        if self.beta is not None:
            y = fq("out", y + self.beta, training)
        return y


@keras.saving.register_keras_serializable(package="keras_hrf")
class QATMultiHeadAttentionCore(_RangeTracked, MultiHeadAttentionCore):
    """:class:`MultiHeadAttentionCore` with int8 logits, softmax and per-head context."""

    _training = None  # the training flag of the current call, for _attend

    def _range_tags(self, input_shape):
        heads = self.num_heads if self.per_head else 1
        return [f"{kind}{h}" for h in range(heads) for kind in ("logits", "context")] + ["out"]

    def call(self, inputs, training=None):
        # _attend is called from the base class's call, which has no training argument.
        self._training = training
        out = super().call(inputs)
        return self._fq("out", out, training)

    def _attend(self, q, k, v, swap, head: int = 0):
        training = self._training
        logits = ops.matmul(q, ops.transpose(k, swap))
        if self.mask is not None:
            logits = logits + ops.convert_to_tensor(self.mask, dtype=logits.dtype)
        logits = self._fq(f"logits{head}", logits, training)
        probs = ops.softmax(logits, axis=-1)
        if not self._calibrating:
            probs = fake_quant_fixed(probs, SOFTMAX_SCALE, SOFTMAX_ZERO_POINT)
        return self._fq(f"context{head}", ops.matmul(probs, v), training)


@keras.saving.register_keras_serializable(package="keras_hrf")
class QATActivation(_RangeTracked, keras.layers.Activation):
    """``Activation``; SiLU as TFLite runs it (int8 LOGISTIC, then MUL), output fq."""

    def call(self, inputs, training=None):
        if _is_silu(self.activation) and not self._calibrating:
            y = inputs * _int8_sigmoid(inputs)
        else:
            y = self.activation(inputs)
        return self._fq("out", y, training)


@keras.saving.register_keras_serializable(package="keras_hrf")
class QATGLU(_RangeTracked, GLU):
    """:class:`GLU` as TFLite runs it: int8 LOGISTIC of the gate, MUL, output fq."""

    def call(self, x, training=None):
        if self._calibrating:
            return self._fq("out", super().call(x), training)
        half = x.shape[-1] // 2
        return self._fq("out", x[..., :half] * _int8_sigmoid(x[..., half:]), training)


#: Plain layer class -> its quantization-aware twin (exact classes: subclasses are not twins).
TWINS: dict[type, type] = {
    keras.layers.Dense: QATDense,
    keras.layers.Conv1D: QATConv1D,
    keras.layers.DepthwiseConv1D: QATDepthwiseConv1D,
    keras.layers.Conv2D: QATConv2D,
    keras.layers.DepthwiseConv2D: QATDepthwiseConv2D,
    keras.layers.BatchNormalization: QATBatchNormalization,
    keras.layers.Add: QATAdd,
    keras.layers.GlobalAveragePooling1D: QATGlobalAveragePooling1D,
    keras.layers.Activation: QATActivation,
    GLU: QATGLU,
    LayerNorm: QATLayerNorm,
    MultiHeadAttentionCore: QATMultiHeadAttentionCore,
}
_PLAIN = {twin: plain for plain, twin in TWINS.items()}


def is_qat(model: keras.Model) -> bool:
    """Whether ``model`` has any quantization-aware twin layer."""
    return any(type(layer) in _PLAIN for layer in model.layers)


def calibrate(model: keras.Model, data: np.ndarray, batch_size: int = 50) -> None:
    """Set every twin's activation ranges to the global min / max over ``data`` (float pass).

    The converter calibrates the same way on its representative dataset, so calibrating on that
    data gives the ranges the int8 model will have (for the current weights).

    Args:
        model: A model from :func:`prepare`.
        data: Normalised features ``[N, frames, n_mels]`` (e.g. the run's representative set).
        batch_size: Batch size of the eager forward passes.
    """
    twins = [layer for layer in model.layers if isinstance(layer, _RangeTracked)]
    if not twins:
        raise ValueError("calibrate() needs a quantization-aware model (from qat.prepare)")
    data = np.asarray(data, "float32")
    if len(data) == 0:
        raise ValueError("calibrate() needs at least one example")
    for layer in twins:
        for lo, hi in layer._ranges.values():
            # The converter widens every range to contain 0, so starting at 0 is the same rule.
            lo.assign(0.0)
            hi.assign(0.0)
        layer._calibrating = True
    try:
        for start in range(0, len(data), batch_size):
            model(data[start : start + batch_size], training=False)
    finally:
        for layer in twins:
            layer._calibrating = False
            layer._ranges_set.assign(1.0)


def prepare(model: keras.Model, calibration_data: np.ndarray | None = None) -> keras.Model:
    """Replace every supported layer of a deployed model by its quantization-aware twin.

    Args:
        model: A functional model without HRF layers (merge first: QAT tunes what is deployed).
        calibration_data: Normalised features ``[N, frames, n_mels]`` to :func:`calibrate` the
            activation ranges on (without it the twins pass activations through unquantized
            until calibrated).

    Returns:
        A new model with the same layer names and weights, plus range trackers.

    Raises:
        ValueError: if ``model`` still has HRF layers or is already quantization-aware.
    """
    from keras_hrf import reparam

    if reparam.has_hrf(model):
        raise ValueError(
            "QAT tunes the deployed model, but this one still has HRF layers; call "
            "keras_hrf.reparam.merge(model) first"
        )
    if is_qat(model):
        raise ValueError("the model is already quantization-aware (call qat.strip first)")
    # Weights move by name; the twin's range trackers keep their initial 0 (uncalibrated).
    qat_model = _swap_classes(model, TWINS)
    if calibration_data is not None:
        calibrate(qat_model, calibration_data)
    return qat_model


def strip(model: keras.Model) -> keras.Model:
    """The plain model with a QAT model's weights: every twin back to its plain class.

    The result has exactly the layers (and hence the TFLite op list) of the model that
    :func:`prepare` was given.
    """
    # Weights move by name; the range trackers, which the plain layers lack, are dropped.
    return _swap_classes(model, _PLAIN)


def _swap_classes(model: keras.Model, classes: dict[type, type]) -> keras.Model:
    """:func:`keras_hrf.graph.rewrite` replacing each layer whose exact class is in ``classes``
    by ``classes[type(layer)].from_config(layer.get_config())``; every variable the two share is
    copied by name, the others keep the new layer's initial values or are dropped."""
    new_layers: dict[str, keras.layers.Layer] = {}

    def replace(layer):
        cls = classes.get(type(layer))
        if cls is None:
            return None
        new_layers[layer.name] = cls.from_config(layer.get_config())
        return new_layers[layer.name]

    def shared(old):
        names = {variable_name(v) for v in new_layers[old.name].weights}
        return {variable_name(v): v.numpy() for v in old.weights if variable_name(v) in names}

    return rewrite(model, replace, shared)
