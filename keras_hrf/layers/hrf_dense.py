"""HRFDense: a Dense layer whose kernel is trained as a product of factors (High-Rank
Factorization).

At training time the layer computes ``activation(x·A_1·A_2·…·B + b)`` where the factor chain
``A_1 (d x k), A_i (k x k), B (k x units)`` has inner width ``k >= d``. Nothing non-linear sits
between the factors, so the function class is exactly that of a plain ``Dense(units)``; the extra
factors only change the parameterisation (and with it the optimisation landscape). At deployment
:meth:`HRFDense.merged_kernel` / :meth:`HRFDense.merged_bias` collapse the chain into one kernel and
bias, which :func:`keras_hrf.reparam.merge` loads into a plain ``keras.layers.Dense``.

Modelled on ``keras.layers.Dense`` with LoRA (the factors live inside the layer, ``kernel``
returns the merged kernel) and on RepVGG's ``get_equivalent_kernel_bias`` (one differentiable
function is the single source of the deploy-time weights).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

#: Factor initialisations understood by :class:`HRFDense`.
FACTOR_INITS = ("glorot", "identity")


@keras.saving.register_keras_serializable(package="keras_hrf")
class HRFDense(keras.layers.Layer):
    """Dense layer trained as a chain of linear factors that merges exactly into one kernel.

    Input shape: ``(..., d)``; output shape: ``(..., units)``. The factor chain has ``depth``
    matrices: ``A_1: (d, k)``, ``depth - 2`` square ``A_i: (k, k)`` and ``B: (k, units)``.

    Args:
        units: Output width.
        expansion: Inner width as a multiple of the input width, ``k = round(expansion * d)``.
            Ignored when ``rank`` is given. Must give ``k >= d`` (a narrower ``k`` would be a
            low-rank bottleneck, not HRF).
        rank: Explicit inner width ``k`` (overrides ``expansion``).
        depth: Number of factors in the chain (>= 2). ``depth=2`` is the paper's HRF: one extra
            linear map before the layer's own kernel.
        inner_bias: Whether every factor except the last adds a bias. Inner biases merge exactly
            into the output bias (``b' = ((a_1·A_2 + a_2)…)·B + b``).
        activation: Activation applied after the merged affine map (e.g. ``"relu"``).
        use_bias: Whether the layer adds the output bias ``b`` (as ``Dense``).
        factor_init: ``"glorot"`` (default): every factor gets an independent Glorot-uniform
            start, like a stack of ordinary Dense layers; for ``k = 2d`` the variance of the
            product's entries is within a few percent of a Glorot-initialised plain kernel, so the
            layer starts at the same scale as the plain model while the factors train as ordinary
            layers. ``"identity"``: function-preserving start, ``A_1 = [I | 0]`` (and ``A_i = I``)
            with ``B`` drawn by ``kernel_initializer``, so the merged kernel starts exactly as a
            plain ``Dense`` would.
        kernel_initializer: Initialiser of ``B`` when ``factor_init="identity"``.
        bias_initializer: Initialiser of the output bias.
        kernel_regularizer: Regulariser applied to the *merged* kernel (what is deployed).
        factor_regularizer: Regulariser applied to every factor (e.g. a separate weight decay).
        factor_lr_scale: Learning-rate multiplier of the extra factors (all but the last, ``B``).
            Implemented as a reparameterisation that works with any optimiser, Adam included
            (which ignores a mere gradient scale): each extra factor is stored as ``A / s`` and
            used as ``s * (A / s)``, so the function and the initial weights are unchanged while
            an optimiser step of size ``lr`` on the stored variable moves ``A`` by ``s * lr``.
        quantize_merged: If True the forward pass uses the merged kernel fake-quantized per output
            channel to int8 (symmetric, as TFLite does), so that the factors learn a product that
            survives int8 conversion (quantization-aware HRF). Gradients pass straight through the
            rounding.
        **kwargs: Base ``Layer`` arguments (``name``, ``dtype``, ...).
    """

    def __init__(
        self,
        units: int,
        expansion: float = 2.0,
        rank: int | None = None,
        depth: int = 2,
        inner_bias: bool = False,
        activation=None,
        use_bias: bool = True,
        factor_init: str = "glorot",
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        factor_regularizer=None,
        quantize_merged: bool = False,
        factor_lr_scale: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(units, int | np.integer) or units < 1:
            raise ValueError(f"HRFDense: units must be a positive integer, got {units!r}")
        if rank is None:
            if not isinstance(expansion, int | float) or not math.isfinite(expansion):
                raise ValueError(f"HRFDense: expansion must be a number, got {expansion!r}")
            if expansion < 1:
                raise ValueError(
                    f"HRFDense: expansion must be >= 1 (the inner width k = expansion * d must "
                    f"be at least the input width; got {expansion}). For a low-rank bottleneck "
                    f"use two Dense layers instead."
                )
        elif not isinstance(rank, int | np.integer) or rank < 1:
            raise ValueError(f"HRFDense: rank must be a positive integer, got {rank!r}")
        if not isinstance(depth, int | np.integer) or depth < 2:
            raise ValueError(f"HRFDense: depth must be an integer >= 2, got {depth!r}")
        if factor_init not in FACTOR_INITS:
            raise ValueError(
                f"HRFDense: factor_init must be one of {FACTOR_INITS}, got {factor_init!r}"
            )
        if not isinstance(factor_lr_scale, int | float) or not factor_lr_scale > 0:
            raise ValueError(
                f"HRFDense: factor_lr_scale must be a positive number, got {factor_lr_scale!r}"
            )
        self.units = int(units)
        self.expansion = float(expansion)
        self.rank = None if rank is None else int(rank)
        self.depth = int(depth)
        self.inner_bias = bool(inner_bias)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.factor_init = factor_init
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.factor_regularizer = keras.regularizers.get(factor_regularizer)
        self.quantize_merged = bool(quantize_merged)
        self.factor_lr_scale = float(factor_lr_scale)
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = True

    # ----------------------------------------------------------------------------------- build
    def inner_width(self, input_dim: int) -> int:
        """The inner width ``k`` for a given input width ``d``."""
        k = self.rank if self.rank is not None else int(round(self.expansion * input_dim))
        if k < input_dim:
            raise ValueError(
                f"HRFDense {self.name!r}: inner width k={k} is smaller than the input width "
                f"d={input_dim}; HRF needs k >= d (raise rank/expansion)."
            )
        return k

    def build(self, input_shape):
        d = input_shape[-1]
        if d is None:
            raise ValueError(f"HRFDense {self.name!r}: the last input dimension must be known")
        k = self.inner_width(int(d))
        shapes = [(d, k)] + [(k, k)] * (self.depth - 2) + [(k, self.units)]
        self.factors = []
        self.inner_biases = []
        for i, shape in enumerate(shapes):
            last = i == len(shapes) - 1
            self.factors.append(
                self.add_weight(
                    name=f"factor_{i}",
                    shape=shape,
                    initializer=_Scaled(
                        self._factor_initializer(i, last), 1.0 if last else 1 / self.factor_lr_scale
                    ),
                    regularizer=self.factor_regularizer,
                )
            )
            if self.inner_bias and not last:
                self.inner_biases.append(
                    self.add_weight(name=f"inner_bias_{i}", shape=(k,), initializer="zeros")
                )
        self.bias = (
            self.add_weight(name="bias", shape=(self.units,), initializer=self.bias_initializer)
            if self.use_bias
            else None
        )
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: d})

    def _factor_initializer(self, index: int, last: bool):
        if self.factor_init == "glorot":
            # No fixed seed: like any Dense, keras.utils.set_random_seed governs reproducibility.
            return keras.initializers.GlorotUniform()
        if last:
            return self.kernel_initializer
        # [I | 0] for the first factor (d x k), I for the square ones: the chain starts as the
        # identity on the first d coordinates, so the merged kernel equals B's first d rows.
        return _ZeroPaddedIdentity()

    def factor(self, index: int, dtype=None):
        """The ``index``-th factor of the chain as used in the forward pass (lr scale applied)."""
        f = self._cast(self.factors[index], dtype)
        last = index == len(self.factors) - 1
        return f if last or self.factor_lr_scale == 1.0 else f * self.factor_lr_scale

    # --------------------------------------------------------------------------------- merging
    def merged_kernel(self, dtype=None):
        """The deploy-time kernel ``A_1·…·B`` of shape ``(d, units)``; differentiable.

        Args:
            dtype: Compute dtype of the product, e.g. ``"float64"`` for exact merging
                (default: the layer's variable dtype).
        """
        kernel = self.factor(0, dtype)
        for i in range(1, len(self.factors)):
            kernel = ops.matmul(kernel, self.factor(i, dtype))
        return kernel

    def merged_bias(self, dtype=None):
        """The deploy-time bias of shape ``(units,)``, or ``None`` if the layer has none."""
        if not self.inner_bias and not self.use_bias:
            return None
        bias = None
        for i in range(len(self.factors)):
            f = self.factor(i, dtype)
            if bias is not None:
                bias = ops.matmul(bias[None, :], f)[0]
            if i < len(self.inner_biases):
                inner = self._cast(self.inner_biases[i], dtype)
                bias = inner if bias is None else bias + inner
        if self.use_bias:
            out = self._cast(self.bias, dtype)
            bias = out if bias is None else bias + out
        if bias is None:  # inner biases only exist before the last factor, so this is unreachable
            raise AssertionError("merged bias missing")
        return bias

    def deploy_layer(self) -> keras.layers.Layer:
        """A fresh, unbuilt plain layer of the same name that :meth:`merged_weights` loads into.

        ``keras.layers.Dense`` here; :class:`HRFPointwiseConv2D` returns a 1x1 ``Conv2D``. This is
        what :func:`keras_hrf.reparam.merge` puts in the layer's place.
        """
        return keras.layers.Dense(
            self.units,
            activation=self.activation,
            use_bias=self.has_merged_bias,
            name=self.name,
            dtype=self.dtype_policy,
        )

    @property
    def kernel(self):
        """The merged kernel (as ``Dense.kernel`` with LoRA returns the effective kernel)."""
        return self.merged_kernel()

    @property
    def has_merged_bias(self) -> bool:
        """Whether the merged Dense needs a bias (output bias or any inner bias)."""
        return self.use_bias or self.inner_bias

    def merged_weights(self) -> list[np.ndarray]:
        """``[kernel, bias]`` (or ``[kernel]``) merged in float64, cast to the variable dtype.

        This is what :func:`keras_hrf.reparam.merge` loads into the plain ``Dense``. With
        ``quantize_merged`` the kernel is the fake-quantized product the forward pass used, so
        the merged model computes what was trained, and the converter's own per-channel int8
        quantization of it is lossless (it lands on the same grid).
        """
        out_dtype = self.factors[0].dtype
        kernel = self.merged_kernel("float64")
        if self.quantize_merged:
            from keras_hrf.quantization.fake_quant import fake_quant_per_channel

            kernel = fake_quant_per_channel(kernel, axis=-1)
        weights = [np.asarray(keras.ops.convert_to_numpy(kernel))]
        if self.has_merged_bias:
            weights.append(np.asarray(keras.ops.convert_to_numpy(self.merged_bias("float64"))))
        return [w.astype(out_dtype) for w in weights]

    def _cast(self, value, dtype):
        return value if dtype is None else ops.cast(value, dtype)

    # -------------------------------------------------------------------------------- forward
    def call(self, inputs):
        if self.quantize_merged:
            from keras_hrf.quantization.fake_quant import fake_quant_per_channel

            kernel = fake_quant_per_channel(self.merged_kernel(), axis=-1)
            y = ops.matmul(inputs, kernel)
            bias = self.merged_bias()
            if bias is not None:
                y = y + bias
        else:
            # Train-time form: apply the factors one after another (the paper's extra linear).
            y = inputs
            for i in range(len(self.factors)):
                y = ops.matmul(y, self.factor(i))
                if i < len(self.inner_biases):
                    y = y + self.inner_biases[i]
            if self.bias is not None:
                y = y + self.bias
        if self.kernel_regularizer is not None:
            self.add_loss(self.kernel_regularizer(self.merged_kernel()))
        return self.activation(y) if self.activation is not None else y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "expansion": self.expansion,
                "rank": self.rank,
                "depth": self.depth,
                "inner_bias": self.inner_bias,
                "activation": keras.activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "factor_init": self.factor_init,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
                "factor_regularizer": keras.regularizers.serialize(self.factor_regularizer),
                "quantize_merged": self.quantize_merged,
                "factor_lr_scale": self.factor_lr_scale,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_hrf")
class _Scaled(keras.initializers.Initializer):
    """Another initialiser's draw times a constant (the stored ``A / s`` of ``factor_lr_scale``)."""

    def __init__(self, initializer, scale: float = 1.0):
        self.initializer = keras.initializers.get(initializer)
        self.scale = float(scale)

    def __call__(self, shape, dtype=None):
        value = self.initializer(shape, dtype=dtype)
        return value if self.scale == 1.0 else value * self.scale

    def get_config(self):
        return {
            "initializer": keras.initializers.serialize(self.initializer),
            "scale": self.scale,
        }


@keras.saving.register_keras_serializable(package="keras_hrf")
class _ZeroPaddedIdentity(keras.initializers.Initializer):
    """``[I | 0]`` for a (rows, cols) matrix with rows <= cols (identity on the first rows)."""

    def __call__(self, shape, dtype=None):
        rows, cols = shape
        return ops.eye(rows, cols, dtype=dtype or "float32")

    def get_config(self):
        return {}


@keras.saving.register_keras_serializable(package="keras_hrf")
class HRFPointwiseConv2D(HRFDense):
    """A pointwise (1x1) ``Conv2D`` trained as a chain of linear factors (HRF for CNNs).

    Input shape ``(B, H, W, d)``, output ``(B, H, W, units)``. A 1x1 convolution is a linear map of
    the channel vector at every position, so the layer computes exactly what :class:`HRFDense`
    computes on the last axis, and merges into ``keras.layers.Conv2D(units, 1)`` with the merged
    kernel reshaped to ``(1, 1, d, units)``: the deployed model keeps the CONV_2D op a CNN's
    kernels (CMSIS-NN's 1x1 fast path) expect. Arguments as :class:`HRFDense`.
    """

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"HRFPointwiseConv2D {self.name!r}: expected a 4-D input (B, H, W, C), got shape "
                f"{tuple(input_shape)}; use HRFDense for sequences"
            )
        super().build(input_shape)
        self.input_spec = keras.layers.InputSpec(ndim=4, axes={-1: input_shape[-1]})

    def deploy_layer(self) -> keras.layers.Layer:
        return keras.layers.Conv2D(
            self.units,
            1,
            activation=self.activation,
            use_bias=self.has_merged_bias,
            name=self.name,
            dtype=self.dtype_policy,
        )

    def merged_weights(self) -> list[np.ndarray]:
        """``[kernel (1, 1, d, units), bias]``: :meth:`HRFDense.merged_weights` as a 1x1 kernel."""
        weights = super().merged_weights()
        weights[0] = weights[0].reshape((1, 1) + weights[0].shape)
        return weights
