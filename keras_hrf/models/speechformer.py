"""SpeechFormer (Chen et al., Interspeech 2022), adapted to static shapes and TFLite Micro.

SpeechFormer follows the structure of speech: a *frame* stage attends within ~50 ms windows, a
merge block pools each window into one token, a *phoneme* stage attends within windows of those
tokens, and so on through *word* to a global *utterance* stage. Here every local stage attends
within non-overlapping windows (computed per window, not as a masked attention over all frames, so
the score memory is ``T·W`` rather than ``T²``), and the following merge block average-pools exactly
those windows (pool = window) and applies a linear (``merge`` HRF site) to the next stage's width.
The input is zero-padded at the end to a multiple of the product of the windows (300 frames need
no padding with the defaults: 5·4·5 = 100).
"""

from __future__ import annotations

import math

import keras

from keras_hrf.models.blocks import classifier_head, conv2d_subsampling, linear, transformer_block
from keras_hrf.models.hrf_config import HRFConfig

PRESETS = {
    # Frame stage at 10 ms x 5 = 50 ms windows, phoneme 4 x 50 = 200 ms, word 5 x 200 ms = 1 s,
    # then global attention over the 3 "word" tokens of a 3 s input. Sized for models.BUDGETS:
    # a Transformer block is ~30 TFLite ops, whose TFLM records dominate the arena, hence one
    # head, narrow early stages and a phoneme stage that only merges (no block). The per-frame
    # linear stem ("dense") is kept: a Conv2D stem at the frame stage's 10 ms resolution needs a
    # 300 x 32 x C first map (38 KB at C = 4), more than the arena budget leaves.
    "light": dict(
        dims=(16, 24, 32, 48),
        blocks=(1, 0, 1, 1),
        windows=(5, 4, 5),
        num_heads=1,
        ffn_ratio=2,
        dropout=0.1,
        norm="post",
    ),
    "tiny": dict(
        dims=(8, 12, 16, 32),
        blocks=(1, 0, 0, 1),
        windows=(5, 4, 5),
        num_heads=1,
        ffn_ratio=2,
        dropout=0.1,
        norm="post",
    ),
    "large": dict(
        dims=(64, 96, 128, 128),
        blocks=(1, 2, 2, 2),
        windows=(5, 4, 5),
        num_heads=4,
        ffn_ratio=4,
        dropout=0.1,
        norm="post",
    ),
}


def build_graph(
    inputs,
    num_classes: int,
    hrf: HRFConfig | None,
    dims: tuple[int, ...],
    blocks: tuple[int, ...],
    windows: tuple[int, ...],
    num_heads: int,
    ffn_ratio: int = 2,
    dropout: float = 0.1,
    norm: str = "post",
    activation: str = "relu",
    stem: str = "dense",
    stem_channels: tuple[int, ...] = (4, 8),
    stem_strides: tuple[tuple[int, int], ...] = ((1, 2), (1, 2)),
):
    """Functional graph from ``inputs`` ``(B, T, F)`` to logits ``(B, num_classes)``.

    The frame stage attends at the input's 10 ms frames, so the stems keep the time axis:
    ``stem="dense"`` is a per-frame linear over the mel bands, ``"conv2d"`` the Conv2D stem of
    :func:`keras_hrf.models.blocks.conv2d_subsampling` with time strides 1 (frequency only).

    Args:
        dims: Model width of each stage; ``len(dims) == len(windows) + 1`` (the last stage is the
            global utterance stage).
        blocks: Transformer blocks per stage.
        windows: Local attention window (and merge pool) of each local stage.
    """
    if not (len(dims) == len(blocks) == len(windows) + 1):
        raise ValueError(
            "speechformer: need len(dims) == len(blocks) == len(windows) + 1, got "
            f"{len(dims)}, {len(blocks)}, {len(windows)}"
        )
    frames = inputs.shape[1]
    unit = math.prod(windows)
    pad = (-frames) % unit
    x = inputs
    if pad:
        x = keras.layers.ZeroPadding1D((0, pad), name="pad_to_windows")(x)
    if stem == "dense":
        x = keras.layers.Dense(dims[0], name="input_proj")(x)
    elif stem == "conv2d":
        if any(int(t) != 1 for t, _ in stem_strides):
            raise ValueError(
                f"speechformer: the conv2d stem must keep the time axis (time strides 1, the "
                f"frame stage attends over 10 ms frames), got stem_strides={stem_strides!r}"
            )
        x = conv2d_subsampling(x, dims[0], "subsample", stem_channels, stem_strides)
    else:
        raise ValueError(f"speechformer: unknown stem {stem!r}; choose 'dense' or 'conv2d'")
    for s, (d, n_blocks) in enumerate(zip(dims, blocks)):
        window = windows[s] if s < len(windows) else None
        for b in range(n_blocks):
            x = transformer_block(
                x,
                d,
                num_heads,
                ffn_ratio * d,
                hrf,
                f"stage{s}_block{b}",
                norm=norm,
                dropout=dropout,
                activation=activation,
                window=window,
            )
        if window is not None:
            x = keras.layers.AveragePooling1D(window, name=f"merge{s}_pool")(x)
            x = linear(dims[s + 1], "merge", hrf, f"merge{s}_proj")(x)
    return classifier_head(x, num_classes)
