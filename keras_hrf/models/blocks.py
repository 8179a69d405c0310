"""Functional building blocks shared by the three model families.

Every block adds its layers to the *functional* graph (no nested sub-models), so that each
``HRFDense`` is a top-level layer that :func:`keras_hrf.reparam.merge` can find and replace, and so
that the TFLite graph of every family is built from the same few TFLM-friendly ops.
"""

from __future__ import annotations

import keras

from keras_hrf.layers import HRFDense, LayerNorm, MultiHeadAttentionCore
from keras_hrf.models.hrf_config import HRFConfig

#: Activations TFLite Micro has int8 kernels for (no GELU kernel in TFLM, see DESIGN.md).
ALLOWED_ACTIVATIONS = ("relu", "silu", "swish", None)


def check_activation(activation: str | None) -> str | None:
    """Refuse activations that TFLite Micro cannot run, with the reason."""
    if activation not in ALLOWED_ACTIVATIONS:
        raise ValueError(
            f"activation {activation!r} is not supported: the model must run under TFLite Micro, "
            f"which has int8 kernels for {', '.join(a for a in ALLOWED_ACTIVATIONS if a)} "
            f"(no GELU); pick one of those"
        )
    return activation


def linear(
    units: int,
    site: str,
    hrf: HRFConfig | None,
    name: str,
    activation: str | None = None,
) -> keras.layers.Layer:
    """A ``Dense`` layer, or an ``HRFDense`` if ``site`` is one of ``hrf.sites``.

    Both have the same ``name``, which is what lets the merged model's layer list match that of a
    model built without HRF.
    """
    if hrf is not None and site in hrf.sites:
        return HRFDense(units, activation=activation, name=name, **hrf.layer_kwargs())
    return keras.layers.Dense(units, activation=activation, name=name)


def feed_forward(
    x,
    d_model: int,
    ffn_dim: int,
    hrf: HRFConfig | None,
    name: str,
    activation: str = "relu",
    dropout: float = 0.0,
):
    """Position-wise FFN ``W2·act(W1·x + b1) + b2``; ``(B, T, d) -> (B, T, d)``.

    With HRF at ``ffn_in`` the first linear is an ``HRFDense``: the extra linear of the paper sits
    directly before ``W1`` with nothing non-linear in between, so it merges exactly.
    """
    check_activation(activation)
    h = linear(ffn_dim, "ffn_in", hrf, f"{name}_fc1", activation=activation)(x)
    if dropout:
        h = keras.layers.Dropout(dropout, name=f"{name}_hidden_drop")(h)
    return linear(d_model, "ffn_out", hrf, f"{name}_fc2")(h)


def self_attention(
    x,
    d_model: int,
    num_heads: int,
    hrf: HRFConfig | None,
    name: str,
    window: int | None = None,
    mask=None,
    per_head: bool = True,
):
    """Multi-head self-attention from Dense projections + :class:`MultiHeadAttentionCore`.

    ``(B, T, d) -> (B, T, d)``. With ``window``, attention is local to non-overlapping windows.
    """
    q = linear(d_model, "attention", hrf, f"{name}_query")(x)
    k = linear(d_model, "attention", hrf, f"{name}_key")(x)
    v = linear(d_model, "attention", hrf, f"{name}_value")(x)
    ctx = MultiHeadAttentionCore(
        num_heads, window=window, mask=mask, per_head=per_head, name=f"{name}_core"
    )([q, k, v])
    return linear(d_model, "attention", hrf, f"{name}_out")(ctx)


def transformer_block(
    x,
    d_model: int,
    num_heads: int,
    ffn_dim: int,
    hrf: HRFConfig | None,
    name: str,
    norm: str = "post",
    dropout: float = 0.1,
    activation: str = "relu",
    window: int | None = None,
):
    """A Transformer encoder block (self-attention + FFN, residuals, LayerNorm).

    Args:
        norm: ``"post"`` (``LN(x + f(x))``, the original Transformer) or ``"pre"``
            (``x + f(LN(x))``, usually easier to train and friendlier to int8).
    """
    if norm not in ("post", "pre"):
        raise ValueError(f"norm must be 'post' or 'pre', got {norm!r}")

    def drop(t, tag):
        return keras.layers.Dropout(dropout, name=f"{name}_{tag}_drop")(t) if dropout else t

    def sublayer(t, fn, tag):
        if norm == "pre":
            y = fn(LayerNorm(name=f"{name}_{tag}_norm")(t))
            return keras.layers.Add(name=f"{name}_{tag}_add")([t, drop(y, tag)])
        y = fn(t)
        t = keras.layers.Add(name=f"{name}_{tag}_add")([t, drop(y, tag)])
        return LayerNorm(name=f"{name}_{tag}_norm")(t)

    x = sublayer(
        x,
        lambda t: self_attention(t, d_model, num_heads, hrf, f"{name}_mhsa", window=window),
        "mhsa",
    )
    return sublayer(
        x,
        lambda t: feed_forward(
            t, d_model, ffn_dim, hrf, f"{name}_ffn", activation=activation, dropout=dropout
        ),
        "ffn",
    )


def conv_subsampling(x, d_model: int, name: str, layers: int = 2, kernel_size: int = 3):
    """``layers`` Conv1D(d_model, kernel, stride 2, ReLU): ``(B, T, F) -> (B, ~T/2^layers, d)``."""
    for i in range(layers):
        x = keras.layers.Conv1D(
            d_model,
            kernel_size,
            strides=2,
            padding="same",
            activation="relu",
            name=f"{name}_conv{i}",
        )(x)
    return x


def classifier_head(x, num_classes: int, dropout: float = 0.0):
    """Temporal average pooling and a linear classifier producing logits ``(B, num_classes)``."""
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_drop")(x)
    return keras.layers.Dense(num_classes, name="logits")(x)
