"""The project's own int8 kernels (``op_resolver.h``, :data:`keras_hrf.export.csource.
PROJECT_KERNELS`) against the Python TFLM interpreter's reference kernels, on the operand
layouts they handle themselves and on some they hand back to TFLM's kernels.

The light exports' firmware test covers the layouts the presets produce; this model has the
others once (same shapes, per row, per column, one value; the broadcast operand first or
second; small and large tensors) and outputs every intermediate, so that a one-step difference
anywhere shows. Every fallback is exact too, so these tests show the results are right, not
which path ran (``benchmarks/device_cost.py`` shows that in the per-op instructions).
Built and run on the host (reference kernels around the project's) and on Cortex-M4 (CMSIS-NN
around them: MUL's fallback is CMSIS-NN's); skips, saying why, where a toolchain or tree is
missing.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
from keras import ops
from support.tflm import needs_gxx

from data_prep import int8 as quant
from keras_hrf import tflite
from keras_hrf.device import firmware
from keras_hrf.device.runtimes import run_tflm
from keras_hrf.export import csource, flatbuffer, min_tflm_arena
from keras_hrf.layers import MultiHeadAttentionCore

FRAMES = 24  # a short input: 24 x 64 (= 1,536) values per wide tensor, ~9,000 outputs
#: The ops of the layout model that the project's kernels run (where the layout suits them).
OWN = (
    "ADD", "SUB", "MUL", "MEAN", "DEPTHWISE_CONV_2D", "CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL",
    "RSQRT",
)  # fmt: skip


def _layout_model(n_mels: int) -> keras.Model:
    """Every operand layout of ADD, SUB, MUL and MEAN the project's kernels see; the output is
    all the intermediates, flattened and concatenated."""
    rng = np.random.default_rng(0)
    inp = keras.Input((FRAMES, n_mels))
    narrow = keras.layers.Dense(16, name="narrow")(inp)  # 384 values: the direct path
    wide = keras.layers.Dense(64, name="wide")(inp)  # 1,536 values: the table path
    centred_narrow = narrow - ops.mean(narrow, axis=-1, keepdims=True)  # SUB per row
    centred = wide - ops.mean(wide, axis=-1, keepdims=True)  # SUB per row, MEAN last axis
    var = ops.mean(centred * centred, axis=-1, keepdims=True)  # MUL x * x (the table)
    normed = ops.rsqrt(var + 1e-3) * centred  # ADD of one value; MUL per row
    gamma = rng.uniform(0.5, 1.5, 64).astype("float32")
    beta = rng.uniform(-0.5, 0.5, 64).astype("float32")
    scaled = normed * gamma + beta  # MUL and ADD per column
    shifted = scaled - 0.25  # SUB of one value (or ADD of -0.25, as the converter likes)
    residual = shifted + wide  # ADD of the same shapes
    table = rng.uniform(-1, 1, (FRAMES, 64)).astype("float32")
    positioned = residual + table  # ADD of a constant with one dimension fewer: the same layout
    per_frame = rng.uniform(0.5, 1.5, (FRAMES, 1)).astype("float32")
    row_scaled = positioned * per_frame  # MUL per row, the constant one dimension fewer
    lifted = ops.mean(wide, axis=-1, keepdims=True) + wide  # ADD per row, the broadcast first
    column_sub = wide - ops.mean(wide, axis=1, keepdims=True)  # SUB per column
    halved = lifted * ops.mean(var)  # MUL by one (non-constant) value
    blocks = ops.reshape(residual, (-1, FRAMES, 8, 8))
    mid_mean = ops.mean(blocks, axis=2, keepdims=True)  # MEAN over a middle axis
    mid_add = blocks + mid_mean  # a broadcast over a middle axis: TFLM's kernels
    mid_mul = blocks * mid_mean
    mid_sub = blocks - mid_mean
    # Convolutions of one channel (the converter writes them as DEPTHWISE_CONV_2D with a
    # channel multiplier): a 3 x 3 stem at stride 2 ("same": padding on every border) and a
    # 3 x 2 one into 8 channels (stride 1, "same": the extra column of padding on one side);
    # and a depthwise convolution over 4 channels (the stock kernel's layout).
    image = keras.layers.Reshape((FRAMES, n_mels, 1))(inp)
    stem = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="stem")(image)
    stem8 = keras.layers.Conv2D(8, (3, 2), padding="same", name="stem8")(image)
    depthwise = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(stem)
    # ... and one of 11 taps over time (the Conformer's convolution module: the project's
    # kernel), "same": taps cut off at both ends.
    long_dw = keras.layers.DepthwiseConv2D((1, 11), padding="same", name="long_dw")(stem)
    # CONV_2D over 4 channels (the Transformer stems' second convolution): 3 x 3 at stride 2
    # ("same": padding on every border) into 6 channels, 96 outputs per channel (blocks of 28
    # patches and a last one of 12), and 2 x 3 "valid" at strides 1 x 2 into 5 (an odd channel
    # count), 165 outputs per channel (an odd last block), with a fused ReLU.
    conv_same = keras.layers.Conv2D(6, 3, strides=2, padding="same", name="conv_same")(stem)
    conv_valid = keras.layers.Conv2D(
        5, (2, 3), strides=(1, 2), activation="relu", name="conv_valid"
    )(stem)
    conv8 = keras.layers.Conv2D(4, 3, padding="same", name="conv8")(stem8)  # 8 channels in
    gated = wide * residual  # MUL of the same shapes
    # FULLY_CONNECTED over rows (narrow and wide above: 24 rows, 64 -> 16 and 64 -> 64): an odd
    # channel count over a depth that is no multiple of 4 (6 -> 5), a fused ReLU (not the whole
    # int8 range), 3 rows (odd) and 48 (one and a half of the kernel's blocks of 32), 9 rows
    # (odd, enough for the widened weights of Cortex-M4) into 7 channels, and the one-row FC of
    # a pooled vector (TFLM's kernel).
    six = keras.layers.Dense(6, name="six")(inp)
    five = keras.layers.Dense(5, activation="relu", name="five")(six)
    three_rows = keras.layers.Dense(4, name="three_rows")(ops.reshape(residual, (-1, 3, 512)))
    rows48 = keras.layers.Dense(6, name="rows48")(ops.reshape(residual, (-1, 48, 32)))
    rows9 = keras.layers.Dense(7, name="rows9")(inp[:, 3:12, :])
    # BATCH_MATMUL (attention's Q K^T and A V): two heads of 5 in one batched product (odd
    # columns, a depth that is no multiple of 4), and one head over windows of 8 frames.
    qkv = [keras.layers.Dense(10, name=f"attn_{t}")(inp) for t in "qkv"]
    heads = MultiHeadAttentionCore(2, per_head=False, name="heads")(qkv)
    qkv12 = [keras.layers.Dense(12, name=f"win_{t}")(inp) for t in "qkv"]
    windows = MultiHeadAttentionCore(1, window=8, name="windows")(qkv12)
    over_time = ops.mean(residual, axis=1)  # MEAN over time (a global pool)
    pooled_fc = keras.layers.Dense(3, name="pooled_fc")(over_time)
    non_adjacent = ops.mean(blocks, axis=[1, 3])  # TFLM's MEAN
    small = over_time + ops.mean(wide, axis=1)  # ADD of the same shapes, 64 values
    # RSQRT over 384 values from near 0 up (most of its table; LayerNorm's sees 24 variances).
    spread = ops.rsqrt(narrow * narrow + 1e-2)
    parts = [centred_narrow, centred, normed, scaled, residual, mid_add, mid_mul, mid_sub]
    parts += [positioned, row_scaled, lifted, column_sub, halved, stem, stem8, depthwise]
    parts += [five, three_rows, rows48, heads, windows, conv_same, conv_valid, gated]
    parts += [long_dw, conv8, rows9, spread]
    parts = [keras.layers.Flatten()(p) for p in parts] + [over_time, non_adjacent, small, pooled_fc]
    # TFLM's CONCATENATION takes <= 10 inputs
    chunks = [keras.layers.Concatenate()(parts[i : i + 8]) for i in range(0, len(parts), 8)]
    return keras.Model(inp, keras.layers.Concatenate()(chunks))


def _export_layouts(corpus, tmp_path_factory, per_channel: bool = True):
    x = corpus["x"][:, :FRAMES].astype("float32")
    params = dataclasses.replace(corpus["params"], frames=FRAMES)
    model = _layout_model(x.shape[-1])
    n_out = int(model.outputs[0].shape[-1])
    folder = tmp_path_factory.mktemp("layouts") / "export"
    result = tflite.export(
        model,
        folder,
        representative_data=x,
        labels=[f"v{i}" for i in range(n_out)],
        feature_params=params,
        normalizer=corpus["normalizer"],
        num_samples=32,
        firmware=None,
        per_channel=per_channel,
    )
    info = flatbuffer.parse(result.int8_bytes)
    inputs = quant.quantize(
        flatbuffer.as_input_batch(x[:6], info.input.shape),
        *flatbuffer.quantization_params(info.input),
    )
    reference, _ = run_tflm(result.int8_bytes, inputs, min_tflm_arena(result.int8_bytes))
    return {"result": result, "info": info, "inputs": inputs, "reference": reference}


@pytest.fixture(scope="module")
def layout_export(corpus, tmp_path_factory):
    return _export_layouts(corpus, tmp_path_factory)


def test_the_layout_model_uses_the_project_kernels(layout_export):
    info = layout_export["info"]
    assert set(OWN) <= set(info.int8_ops)
    resolver = (layout_export["result"].out_dir / "op_resolver.h").read_text()
    for op in OWN:
        assert f"{csource.PROJECT_KERNELS[op][0]}()" in resolver
    # The layouts are there: broadcasts per row, per column and over a middle axis.
    seen = {
        (op.name, tuple(tuple(info.tensors[i].shape) for i in op.inputs[:2])) for op in info.ops
    }
    assert ("SUB", ((1, FRAMES, 64), (1, FRAMES, 1))) in seen
    assert ("MUL", ((1, FRAMES, 1), (1, FRAMES, 64))) in seen or (
        "MUL",
        ((1, FRAMES, 64), (1, FRAMES, 1)),
    ) in seen
    assert any(n == "ADD" and s[1] == (64,) for n, s in seen)
    assert any(n == "ADD" and s == ((1, FRAMES, 8, 8), (1, FRAMES, 1, 8)) for n, s in seen)
    assert ("ADD", ((1, FRAMES, 64), (FRAMES, 64))) in seen
    assert ("ADD", ((1, FRAMES, 1), (1, FRAMES, 64))) in seen  # the broadcast operand first
    assert ("SUB", ((1, FRAMES, 64), (1, 1, 64))) in seen
    # (input shape, filter shape) of the depthwise convolutions: the two over one channel and
    # the 11-tap one over four (the project's kernel), the 3 x 3 one over four (TFLM's).
    depthwise = {s[:2] for n, s in seen if n == "DEPTHWISE_CONV_2D"}
    assert depthwise == {
        ((1, FRAMES, 64, 1), (1, 3, 3, 4)),
        ((1, FRAMES, 64, 1), (1, 3, 2, 8)),
        ((1, FRAMES // 2, 32, 4), (1, 3, 3, 4)),
        ((1, FRAMES // 2, 32, 4), (1, 1, 11, 4)),
    }
    conv = {s[:2] for n, s in seen if n == "CONV_2D"}
    assert conv == {
        ((1, FRAMES // 2, 32, 4), (6, 3, 3, 4)),
        ((1, FRAMES // 2, 32, 4), (5, 2, 3, 4)),
        ((1, FRAMES, 64, 8), (4, 3, 3, 8)),
    }
    assert ("MUL", ((1, FRAMES, 64), (1, FRAMES, 64))) in seen
    dense = {s[:2] for n, s in seen if n == "FULLY_CONNECTED"}
    assert {((1, FRAMES, 6), (5, 6)), ((3, 512), (4, 512)), ((48, 32), (6, 32))} <= dense
    assert ((1, 64), (3, 64)) in dense  # one row
    # BATCH_MATMUL: (lhs, rhs) of Q K^T with the keys transposed by the graph (adj_y false) and
    # as the product's own transpose (adj_y true), and A V (5 columns).
    bmm = {s[:2] for n, s in seen if n == "BATCH_MATMUL"}
    assert ((1, 2, FRAMES, 5), (1, 2, 5, FRAMES)) in bmm
    assert ((1, 2, FRAMES, FRAMES), (1, 2, FRAMES, 5)) in bmm
    assert ((1, 3, 8, 12), (1, 3, 8, 12)) in bmm


@pytest.mark.parametrize("target", ["host", "m4"])
def test_project_kernels_match_tflms_reference_kernels_on_every_layout(layout_export, target):
    trees = firmware.Trees.from_env()
    why = firmware.missing(target, trees, "harness")
    if why is not None:
        pytest.skip(f"firmware for {target} cannot be built here: {why}")
    e = layout_export
    run = firmware.run_harness(e["result"].out_dir, e["inputs"], target, trees=trees)
    np.testing.assert_array_equal(run.outputs, e["reference"].reshape(run.outputs.shape))
    if target != "host":  # profiled under QEMU: the kernels ran
        assert set(OWN) <= set(run.op_instructions())


def _multiply_by_quantized_multiplier(x: int, m: int, e: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier(x, m, -e) for e >= 0, as gemmlowp writes it:
    SaturatingRoundingDoublingHighMul (sign-dependent nudge, division truncating toward zero),
    then RoundingDivideByPOT (mask, threshold)."""
    if x == m == -(2**31):
        v = 2**31 - 1
    else:
        ab = x * m
        t = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
        v = (abs(t) >> 31) * (1 if t >= 0 else -1)
    mask = (1 << e) - 1
    return (v >> e) + (1 if (v & mask) > (mask >> 1) + (1 if v < 0 else 0) else 0)


@needs_gxx
def test_requantization_matches_tflite_on_golden_vectors(tmp_path):
    """RightShiftRequant (FULLY_CONNECTED's and BATCH_MATMUL's requantization) against a Python
    port of TFLite's integer arithmetic: the general form for every exponent and sum, the
    bounded one (one rounding multiply and one shift, offset folded in) for the sums it is
    used for (|x| < 2^30, exponent <= 22), ties of the rounding included. Host build (the
    portable form; Cortex-M4's SMMULR is compared with TFLM by the layout test above)."""
    import re
    import subprocess

    source = csource._KERNELS_HEAD
    struct = re.search(r"struct RightShiftRequant \{.*?\n\};\n", source, re.S).group(0)
    rng = np.random.default_rng(0)
    cases = []
    for _ in range(4000):
        m = int(rng.integers(1 << 30, 1 << 31))
        e = int(rng.integers(0, 32))
        offset = int(rng.integers(-128, 128))
        small = e <= 22 and rng.random() < 0.8
        limit = (1 << 30) - 1 if small else 2**31 - 1
        if rng.random() < 0.5:  # a sum whose high product lands on a rounding tie (or next to it)
            span = 1 << max(29 - e, 0)  # |v| < 2^29: its x within the range
            v = (int(rng.integers(-span, span)) << e) + (1 << max(e - 1, 0))
            base = (v << 31) // m
            xs = [base - 1, base, base + 1]
        else:
            xs = [int(rng.integers(-limit, limit + 1))]
        for x in xs:
            if -limit <= x <= limit:
                expected = offset + _multiply_by_quantized_multiplier(x, m, e)
                cases.append((x, m, e, offset, int(small), expected))
    table = ",\n".join(f"{{{x}LL, {m}LL, {e}, {o}, {b}, {y}LL}}" for x, m, e, o, b, y in cases)
    program = tmp_path / "requant.cc"
    program.write_text(
        "#include <cstdint>\n#include <cstdio>\nnamespace keras_hrf {\n" + struct + "}\n"
        "struct Case { long long x, m; int e, offset, small; long long expected; };\n"
        f"static const Case kCases[] = {{\n{table}\n}};\n"
        "int main() {\n"
        "  int wrong = 0, bounded = 0;\n"
        "  for (const Case& c : kCases) {\n"
        "    keras_hrf::RightShiftRequant q(static_cast<int32_t>(c.m), c.e, c.offset, c.small);\n"
        "    const long long general = q(static_cast<int32_t>(c.x));\n"
        "    if (general != c.expected) ++wrong;\n"
        "    if (q.bounded) {\n"
        "      ++bounded;\n"
        "      if (q.Bounded(static_cast<int32_t>(c.x)) != c.expected) ++wrong;\n"
        "    }\n"
        "  }\n"
        '  std::printf("%d %d\\n", wrong, bounded);\n'
        "  return 0;\n}\n"
    )
    exe = tmp_path / "requant"
    subprocess.run(["g++", "-O2", "-std=c++17", "-o", str(exe), str(program)], check=True)
    wrong, bounded = map(int, subprocess.run([str(exe)], capture_output=True, text=True,
                                             check=True).stdout.split())  # fmt: skip
    assert wrong == 0
    expected_bounded = sum(c[4] for c in cases)
    assert bounded == expected_bounded > 2000
