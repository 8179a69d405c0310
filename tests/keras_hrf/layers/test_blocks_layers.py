"""LayerNorm, MultiHeadAttentionCore and GLU against direct numpy computations."""

import keras
import numpy as np
import pytest

from keras_hrf.layers import GLU, LayerNorm, MultiHeadAttentionCore


@pytest.mark.parametrize("lowering", ["rsqrt", "l2", "pool"])
def test_layer_norm_matches_keras_layer_normalization(lowering):
    x = np.random.default_rng(0).normal(2, 3, size=(2, 5, 8)).astype("float32")
    ours = LayerNorm(epsilon=1e-5, lowering=lowering)
    ref = keras.layers.LayerNormalization(epsilon=1e-5)
    ours.build(x.shape)
    ref.build(x.shape)
    g = np.random.default_rng(1).normal(size=8).astype("float32")
    b = np.random.default_rng(2).normal(size=8).astype("float32")
    ours.set_weights([g, b])
    ref.set_weights([g, b])
    np.testing.assert_allclose(ours(x).numpy(), ref(x).numpy(), atol=1e-5)
    x2 = x[:, 0]  # (B, d): the pool lowering pools a (B, 1, d, 1) view
    np.testing.assert_allclose(ours(x2).numpy(), ref(x2).numpy(), atol=1e-5)
    clone = LayerNorm.from_config(ours.get_config())
    assert clone.epsilon == 1e-5 and clone.lowering == lowering
    with pytest.raises(ValueError, match="lowering"):
        LayerNorm(lowering="l1")


def test_layer_norm_lowerings_differ_only_near_epsilon():
    """rsqrt(var + eps) vs rsqrt(max(var, eps)): equal unless the variance is close to eps."""
    rng = np.random.default_rng(0)
    constant = np.full((1, 1, 8), 3.0, "float32")  # variance 0: both give beta (here 0)
    quiet = (1e-3 * rng.normal(size=(1, 1, 8))).astype("float32")  # variance ~1e-6 < eps
    norms = {lw: LayerNorm(lowering=lw, center=False) for lw in ("rsqrt", "l2")}
    for layer in norms.values():
        np.testing.assert_allclose(layer(constant).numpy(), 0, atol=1e-6)
    ratio = norms["l2"](quiet).numpy() / norms["rsqrt"](quiet).numpy()
    var = quiet.var()
    np.testing.assert_allclose(ratio, np.sqrt((var + 1e-5) / 1e-5), rtol=1e-3)


def _reference_attention(q, k, v, heads, window=None, mask=None):
    b, t, d = q.shape
    dh = d // heads
    out = np.zeros_like(q, dtype=np.float64)
    w = window or t
    for s in range(0, t, w):
        sl = slice(s, s + w)
        for h in range(heads):
            hs = slice(h * dh, (h + 1) * dh)
            logits = q[:, sl, hs] @ k[:, sl, hs].transpose(0, 2, 1) / np.sqrt(dh)
            if mask is not None:
                logits = logits + mask
            p = np.exp(logits - logits.max(-1, keepdims=True))
            p /= p.sum(-1, keepdims=True)
            out[:, sl, hs] = p @ v[:, sl, hs]
    return out


@pytest.mark.parametrize("per_head", [True, False])
@pytest.mark.parametrize("window", [None, 3])
def test_attention_core_matches_reference(per_head, window):
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=(2, 6, 8)).astype("float32") for _ in range(3))
    mask = None
    if window is None:
        mask = np.triu(np.full((6, 6), -1e4, dtype="float32"), 1)  # causal, as a constant
    layer = MultiHeadAttentionCore(2, window=window, mask=mask, per_head=per_head)
    got = layer([q, k, v]).numpy()
    np.testing.assert_allclose(got, _reference_attention(q, k, v, 2, window, mask), atol=1e-5)
    clone = MultiHeadAttentionCore.from_config(layer.get_config())
    np.testing.assert_allclose(clone([q, k, v]).numpy(), got, atol=1e-6)


def test_attention_core_errors():
    q = np.zeros((1, 7, 8), "float32")
    with pytest.raises(ValueError, match="not a multiple of window"):
        MultiHeadAttentionCore(2, window=3)([q, q, q])
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        MultiHeadAttentionCore(3)([q, q, q])
    with pytest.raises(ValueError, match="-inf"):
        MultiHeadAttentionCore(2, mask=np.full((7, 7), -np.inf))


def test_glu():
    x = np.random.default_rng(0).normal(size=(2, 3, 6)).astype("float32")
    y = GLU()(x).numpy()
    np.testing.assert_allclose(y, x[..., :3] / (1 + np.exp(-x[..., 3:])), atol=1e-6)
