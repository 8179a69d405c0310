"""The weight-free core of multi-head self-attention, written for TFLite Micro.

The projections (query, key, value, output) are ordinary ``Dense`` (or ``HRFDense``) layers in the
functional graph, built by :func:`keras_hrf.models.blocks.self_attention`; keeping them outside
this layer is what lets :func:`keras_hrf.reparam.merge` see and replace every HRF layer. This layer
only does ``softmax(q·kᵀ + mask)·v`` per head:

- Queries are scaled by ``1/sqrt(head_dim)`` *before* the product, which bounds the int8 range of
  the logits (the pilot's int8 failure came from query-key logits of about ±148).
- Heads are computed one after another (``per_head=True``, the default), so the arena only holds
  one ``T x T`` score matrix at a time; the alternative reshapes to ``(B, H, T, dh)``.
- ``window=W`` computes local attention inside non-overlapping windows of ``W`` frames by
  reshaping to ``(B, T/W, W, D)``: the cost and the score memory are ``T·W`` rather than ``T²``
  (SpeechFormer's local stages), instead of a masked attention over all frames.
- ``mask`` is an optional constant additive mask over the (window's) score matrix.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_hrf")
class MultiHeadAttentionCore(keras.layers.Layer):
    """Scaled dot-product attention of already projected queries, keys and values.

    Call with ``[query, key, value]``, each of shape ``(B, T, D)`` with ``D = num_heads *
    head_dim``; returns ``(B, T, D)`` (the heads concatenated, before the output projection).

    Args:
        num_heads: Number of heads; must divide ``D``.
        window: If set, attention is restricted to non-overlapping windows of this many frames;
            ``T`` must be a multiple of it (pad before).
        mask: Optional constant additive mask, shape ``(T, T)`` (or ``(window, window)``), added to
            the logits; use large negative values (e.g. -1e4, not -inf) to forbid positions.
        per_head: Compute heads one at a time (smaller arena on a microcontroller).
        **kwargs: Base ``Layer`` arguments.
    """

    def __init__(
        self,
        num_heads: int,
        window: int | None = None,
        mask=None,
        per_head: bool = True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(num_heads, int | np.integer) or num_heads < 1:
            raise ValueError(f"MultiHeadAttentionCore: num_heads must be >= 1, got {num_heads!r}")
        if window is not None and (not isinstance(window, int | np.integer) or window < 1):
            raise ValueError(f"MultiHeadAttentionCore: window must be >= 1, got {window!r}")
        self.num_heads = int(num_heads)
        self.window = None if window is None else int(window)
        self.mask = None if mask is None else np.asarray(mask, dtype="float32")
        if self.mask is not None and (self.mask.ndim != 2 or not np.isfinite(self.mask).all()):
            raise ValueError(
                "MultiHeadAttentionCore: mask must be a finite 2-D (T, T) array; use a large "
                "negative number such as -1e4 rather than -inf to forbid a position"
            )
        self.per_head = bool(per_head)

    def build(self, input_shapes):
        q_shape = input_shapes[0]
        d = q_shape[-1]
        if d % self.num_heads:
            raise ValueError(
                f"MultiHeadAttentionCore {self.name!r}: width {d} is not divisible by "
                f"num_heads={self.num_heads}"
            )
        t = q_shape[1]
        if self.window is not None and t is not None and t % self.window:
            raise ValueError(
                f"MultiHeadAttentionCore {self.name!r}: {t} frames are not a multiple of "
                f"window={self.window}; pad the sequence first"
            )
        n = self.window if self.window is not None else t
        if self.mask is not None and self.mask.shape != (n, n):
            raise ValueError(
                f"MultiHeadAttentionCore {self.name!r}: mask shape {self.mask.shape} does not "
                f"match the score matrix ({n}, {n})"
            )

    def call(self, inputs):
        q, k, v = inputs
        d = q.shape[-1]
        head_dim = d // self.num_heads
        t = q.shape[1]
        if self.window is not None:
            # (B, T, D) -> (B, T/W, W, D): windows become a batch-like axis of the matmuls.
            shape = (-1, t // self.window, self.window, d)
            q, k, v = (ops.reshape(z, shape) for z in (q, k, v))
        q = q * (1.0 / math.sqrt(head_dim))
        rank = len(q.shape)
        swap = tuple(range(rank - 2)) + (rank - 1, rank - 2)
        if self.num_heads == 1:
            # No slicing for one head: a full-width slice would still be a STRIDED_SLICE op
            # (and a tensor) per input in the TFLite graph.
            out = self._attend(q, k, v, swap, head=0)
        elif self.per_head:
            heads = []
            for h in range(self.num_heads):
                sl = slice(h * head_dim, (h + 1) * head_dim)
                heads.append(self._attend(q[..., sl], k[..., sl], v[..., sl], swap, head=h))
            out = heads[0] if len(heads) == 1 else ops.concatenate(heads, axis=-1)
        else:
            # (..., T, D) -> (..., H, T, dh): all heads in one batched matmul.
            def split(z):
                z = ops.reshape(z, tuple(z.shape[:-1]) + (self.num_heads, head_dim))
                lead = tuple(range(rank - 2))
                return ops.transpose(z, lead + (rank - 1, rank - 2, rank))

            qs, ks, vs = split(q), split(k), split(v)
            out = self._attend(qs, ks, vs, tuple(range(rank - 1)) + (rank, rank - 1))
            lead = tuple(range(rank - 2))
            out = ops.transpose(out, lead + (rank - 1, rank - 2, rank))
            out = ops.reshape(out, tuple(out.shape[:-2]) + (d,))
        if self.window is not None:
            out = ops.reshape(out, (-1, t, d))
        return out

    def _attend(self, q, k, v, swap, head: int = 0):
        # ``head`` is unused here; the quantization-aware twin (keras_hrf.quantization.qat) keys
        # its per-head activation ranges by it.
        logits = ops.matmul(q, ops.transpose(k, swap))
        if self.mask is not None:
            logits = logits + ops.convert_to_tensor(self.mask, dtype=logits.dtype)
        return ops.matmul(ops.softmax(logits, axis=-1), v)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "window": self.window,
                "mask": None if self.mask is None else self.mask.tolist(),
                "per_head": self.per_head,
            }
        )
        return config
