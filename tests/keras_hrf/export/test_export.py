"""int8 TFLite export: conversion rules, the real LiteRT and TFLM runtimes, device artefacts.

Every family's light preset is trained for a few steps on the synthetic corpus at the real
(300, 64) input (the TFLM arena depends on it), merged, converted and run once per session; the
error cases use tiny models.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import keras
import numpy as np
import pytest
from support.models import perturb
from support.tflm import include_args, needs_gxx, needs_tflm

from keras_hrf import models, reparam, tflite
from keras_hrf.experiments.quant_study import runtime_max_diff
from keras_hrf.export import converter as convert_mod
from keras_hrf.export import csource, slim
from keras_hrf.export import runtime_check as check_mod
from keras_hrf.layers import LayerNorm

MAIN_CC = Path(__file__).parents[3] / "tflite" / "micro" / "main.cc"
TINY_SHAPE = (40, 16)
FAMILIES = list(models.FAMILIES)

#: Largest LiteRT-vs-TFLM output difference accepted, in int8 steps, whatever LiteRT's own
#: kernels do (a broken kernel or a wrong quantization shows as tens of steps). DESIGN.md expected
#: 2-3; measured 2-8 on these briefly trained light models. Cause: the runtimes requantize
#: differently (TFLM's FULLY_CONNECTED rounds twice, and LiteRT's optimised kernels differ from
#: LiteRT's own reference kernels by as much: 2-5 steps on the same models), so outputs at
#: near-ties differ by one step, which the int8 LayerNorm and softmax amplify.
MAX_RUNTIME_DIFF_STEPS = 10


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def reports(light, corpus):
    samples = corpus["x"][::6]
    return {
        f: tflite.check(light[f]["int8"], samples, keras_model=light[f]["merged"]) for f in light
    }


def _tiny(activation="relu", batch_size=1, norm=None, classes=3):
    inputs = keras.Input(TINY_SHAPE, batch_size=batch_size, name="features")
    h = keras.layers.Dense(16, activation=activation, name="fc")(inputs)
    if norm is not None:
        h = norm(h)
    h = keras.layers.GlobalAveragePooling1D(name="pool")(h)
    return keras.Model(inputs, keras.layers.Dense(classes, name="logits")(h))


@pytest.fixture(scope="session")
def tiny_data():
    return np.random.default_rng(0).standard_normal((32,) + TINY_SHAPE).astype("float32")


@pytest.fixture(scope="session")
def exported(light, corpus, tmp_path_factory):
    """The conv_transformer light export (real input), checked on held-out-like samples."""
    out = tmp_path_factory.mktemp("export") / "ser"
    rows = np.arange(0, len(corpus["x"]), 4)
    result = tflite.export(
        light["conv_transformer"]["merged"],
        out,
        representative_data=corpus["x"],
        labels=corpus["labels"],
        feature_params=corpus["params"],
        normalizer=corpus["normalizer"],
        origin={
            "family": "conv_transformer",
            "size": "light",
            "hrf": models.HRFConfig(sites=("ffn_in",)),
        },
        samples=corpus["x"][rows],
        num_samples=48,
    )
    return result, rows


def _cc_array(text: str, name: str) -> bytes:
    body = re.search(rf"{name}\[[^\]]*\]\s*=\s*\{{(.*?)\}};", text, re.S)
    assert body, f"no array {name}"
    return bytes(int(v, 0) & 0xFF for v in re.findall(r"-?0x[0-9a-f]+|-?\d+", body.group(1)))


def _compile(source: Path, *include_dirs: Path) -> None:
    cmd = ["g++", "-std=c++17", "-Wall", "-Wextra", "-Werror", "-c", str(source), "-o", os.devnull]
    for d in include_dirs:
        cmd += ["-I", str(d)]
    cmd += include_args()
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------- light presets


@pytest.mark.parametrize("family", FAMILIES)
def test_light_preset_is_all_int8_and_runs_in_litert_and_tflm(family, light, reports):
    info = tflite.parse(light[family]["int8"])
    assert tflite.problems(info, "int8") == []
    assert {t.dtype for t in info.tensors} <= {"INT8", "INT32"}
    # A model whose first layer reshapes to (frames, n_mels, 1) gets that input (no RESHAPE copy).
    expected = (1,) + convert_mod.tflite_input_shape(light[family]["merged"])
    assert info.input.shape == expected and expected[1:3] == (300, 64)
    assert info.input.dtype == "INT8"
    if expected == (1, 300, 64, 1):
        assert "RESHAPE" not in info.op_names[:1]
    assert not {"NEG", "DEQUANTIZE", "QUANTIZE", "GELU", "SHAPE"} & set(info.op_names)
    report = reports[family]
    assert report.ok, report.problems + report.tflm_errors
    assert report.litert_tflm_max_diff <= MAX_RUNTIME_DIFF_STEPS
    # TFLM is within 3 steps of LiteRT, or no further from it than LiteRT's optimised kernels
    # are from its reference kernels (+2): measured 3/3, 3/2 and 4/5 here, and on 12 RAVDESS
    # models never more than +1 (results/ravdess/speaker_kfold/QUANT_NOTES.md).
    assert report.litert_tflm_max_diff <= max(3, report.litert_kernels_max_diff + 2)
    # Not asserted: top-1 agreement of the runtimes (97-100 % measured); with near-tied logits of
    # a model trained for 4 steps, a 0.07-logit difference can flip a decision.
    assert report.litert_tflm_argmax_agreement is not None
    assert 0 < report.arena_min < report.arena_recommended
    assert report.arena_recommended % 1024 == 0
    assert report.macs == models.count_macs(light[family]["plain"])
    assert report.argmax_agreement is not None and report.float_reference == "keras"
    json.dumps(report.to_dict())
    assert "| TFLM arena, recommended |" in report.to_markdown()


def test_ds_cnn_stem_and_pool_convert_to_the_ops_cmsis_nn_runs_fast(light, corpus):
    """The stem converts as space-to-depth + a stride-1 CONV_2D and the global pool as
    AVERAGE_POOL_2D (not MEAN): the int8 outputs are those of the plain conversion up to
    calibration rounding, in LiteRT and in TFLM."""
    from data_prep.int8 import quantize
    from keras_hrf.device import runtimes
    from keras_hrf.export.flatbuffer import as_input_batch

    fast = light["ds_cnn"]["int8"]
    ops = tflite.parse(fast).op_names
    assert ops[:5] == ["PAD", "RESHAPE", "TRANSPOSE", "RESHAPE", "CONV_2D"]
    assert "AVERAGE_POOL_2D" in ops and "MEAN" not in ops
    x = corpus["x"][:24]
    plain = tflite.convert(light["ds_cnn"]["merged"], corpus["x"], num_samples=48,
                           space_to_depth=False, one_channel_depthwise=False)  # fmt: skip
    assert tflite.parse(plain).op_names[0] == "CONV_2D"
    outs = {}
    for name, flat in (("fast", fast), ("plain", plain)):
        detail = runtimes.litert_interpreter(flat).get_input_details()[0]
        q = quantize(as_input_batch(x, detail["shape"]), *detail["quantization"])
        outs[name] = runtimes.run_litert(flat, q)[0].astype(int)
        tflm = runtimes.run_tflm(flat, q, arena_size=4 * 1024 * 1024)[0].astype(int)
        assert np.abs(tflm - outs[name]).max() <= MAX_RUNTIME_DIFF_STEPS
    diff = np.abs(outs["fast"] - outs["plain"])
    # Same weights, same sums; only the calibrated ranges may round differently (measured on
    # an untrained ds_cnn: 97 % of outputs identical, none more than one step apart).
    assert diff.max() <= 2 and (diff == 0).mean() >= 0.8


@pytest.mark.parametrize("family", FAMILIES)
def test_merged_hrf_model_has_the_plain_models_ops_and_size(family, light):
    merged = tflite.parse(light[family]["int8"])
    plain = tflite.parse(light[family]["plain_int8"])
    assert merged.op_names == plain.op_names
    # Equal weights and ops; the sizes differ only by the bytes of calibrated quantization
    # parameters (measured <= 1.2 % on the small light presets).
    assert abs(merged.size_bytes - plain.size_bytes) <= 0.02 * plain.size_bytes
    assert merged.weight_bytes == plain.weight_bytes


@pytest.mark.parametrize("size", sorted(models.BUDGETS))
@pytest.mark.parametrize("family", FAMILIES)
def test_every_preset_fits_the_budget_its_name_promises(family, size, light, corpus):
    """int8 flash and the measured TFLM arena (3 s of 64-band log-Mel) within models.BUDGETS."""
    if size == "light":
        flat = light[family]["plain_int8"]
    else:
        model = perturb(models.build(family, size, num_classes=len(corpus["labels"]), seed=1))
        flat = tflite.convert(model, corpus["x"], num_samples=8)
    budget = models.BUDGETS[size]
    assert tflite.parse(flat).input.shape[1:3] == (300, 64)
    assert len(flat) <= budget.flash_kib * 1024
    assert check_mod.min_tflm_arena(flat) <= budget.arena_kib * 1024


def test_minimum_arena_is_the_smallest_that_works(light):
    flat = light["speechformer"]["int8"]
    arena = check_mod.min_tflm_arena(flat)
    check_mod.tflm_interpreter(flat, arena)
    with pytest.raises(check_mod.TflmError, match="allocate"):
        check_mod.tflm_interpreter(flat, arena - check_mod.ARENA_RESOLUTION)
    assert check_mod.recommended_arena(arena) >= 1.1 * arena


def test_float32_conversion_and_predict_match_keras(light, corpus):
    model = light["conformer"]["merged"]
    flat = tflite.convert(model, quantization="float32")
    info = tflite.parse(flat)
    assert info.input.dtype == "FLOAT32" and tflite.problems(info, "float32") == []
    x = corpus["x"][:4]
    np.testing.assert_allclose(tflite.predict(flat, x), model.predict(x, verbose=0), atol=1e-4)
    int8_logits = tflite.predict_int8(light["conformer"]["int8"], x)
    assert int8_logits.shape == (4, len(corpus["labels"])) and int8_logits.dtype == np.float32


def test_layer_norm_l2_lowering_converts_to_l2_normalization(tiny_data):
    """The same float model, every LayerNorm as TFLite's integer L2_NORMALIZATION instead.

    The conformer: it has LayerNorms after residual adds, in the FFN and in the convolution
    module (all three families convert the same way: measured on RAVDESS, QUANT.md)."""
    # Seeded. The lowerings differ where a frame's variance is near eps (var + eps against
    # max(var, eps)): measured up to 1.05e-3 on these logits, so 3e-3 below; a wrong lowering
    # is off by tenths.
    model = perturb(
        models.build("conformer", "light", input_shape=TINY_SHAPE, num_classes=3, seed=0)
    )
    flat = tflite.convert(model, tiny_data, num_samples=16, layer_norm="l2")
    ops = tflite.parse(flat).op_names
    norms = [layer for layer in model.layers if isinstance(layer, LayerNorm)]
    assert "RSQRT" not in ops and ops.count("L2_NORMALIZATION") == len(norms) > 0
    assert {layer.lowering for layer in norms} == {"rsqrt"}  # the model itself is unchanged
    relowered = reparam.set_layer_norm_lowering(model, "l2")
    np.testing.assert_allclose(
        relowered.predict(tiny_data, verbose=0), model.predict(tiny_data, verbose=0), atol=3e-3
    )
    # It runs in both runtimes, alike (fidelity is measured on trained models: results/ravdess).
    assert runtime_max_diff(flat, tiny_data[:2]) <= MAX_RUNTIME_DIFF_STEPS
    with pytest.raises(tflite.ConversionError, match="lowering"):
        tflite.convert(model, tiny_data, layer_norm="l1")


def test_layer_norm_pool_lowering_takes_its_means_as_average_pools(tiny_data):
    """``"pool"``: every LayerNorm mean is an AVERAGE_POOL_2D (CMSIS-NN runs it much faster
    than TFLM's MEAN on Cortex-M4); the variances and the classifier's pooling over time stay
    MEAN. Same float function, both runtimes agree."""
    model = perturb(models.build("conformer", "light", input_shape=TINY_SHAPE, num_classes=3))
    flat = tflite.convert(model, tiny_data, num_samples=16, layer_norm="pool")
    ops = tflite.parse(flat).op_names
    norms = [layer for layer in model.layers if isinstance(layer, LayerNorm)]
    assert ops.count("AVERAGE_POOL_2D") == len(norms) > 0 and ops.count("MEAN") == len(norms) + 1
    relowered = reparam.set_layer_norm_lowering(model, "pool")
    np.testing.assert_allclose(
        relowered.predict(tiny_data, verbose=0), model.predict(tiny_data, verbose=0), atol=1e-4
    )
    assert runtime_max_diff(flat, tiny_data[:2]) <= MAX_RUNTIME_DIFF_STEPS


# ------------------------------------------------------------------------------ clear errors


def test_unmerged_hrf_is_refused_or_merged_on_request(tiny_data):
    kwargs = dict(input_shape=TINY_SHAPE, num_classes=3)
    model = models.build("conv_transformer", "light", hrf=True, **kwargs)
    with pytest.raises(tflite.ConversionError, match=r"keras_hrf\.reparam\.merge"):
        tflite.convert(model, tiny_data)
    merged = tflite.parse(tflite.convert(model, tiny_data, merge=True, num_samples=8))
    plain = models.build("conv_transformer", "light", **kwargs)
    assert merged.op_names == tflite.parse(tflite.convert(plain, tiny_data, num_samples=8)).op_names


def test_gelu_is_refused_by_name_and_tflm_says_why(tiny_data):
    model = _tiny(activation="gelu")
    with pytest.raises(tflite.ConversionError, match="GELU.*no GELU kernel") as err:
        tflite.convert(model, tiny_data)
    assert "\n" not in str(err.value)  # one line for the CLI
    flat = tflite.convert(model, tiny_data, strict=False)
    report = tflite.check(flat, tiny_data[:2])
    assert not report.ok and not report.tflm_ok
    assert "GELU" in report.tflm_unsupported_ops
    assert "GELU" in report.to_markdown()


def test_keras_layer_normalization_float_island_is_refused(tiny_data):
    model = _tiny(norm=keras.layers.LayerNormalization(name="keras_ln"))
    with pytest.raises(tflite.ConversionError, match="NEG .*keras_ln.*keras_hrf.layers.LayerNorm"):
        tflite.convert(model, tiny_data)


def test_free_batch_is_fixed_by_convert_and_refused_in_a_flatbuffer(tiny_data):
    import tensorflow as tf

    model = _tiny(batch_size=None)
    info = tflite.parse(tflite.convert(model, tiny_data, num_samples=8))
    assert info.input.shape == (1,) + TINY_SHAPE and "SHAPE" not in info.op_names
    # A flatbuffer converted without the batch-1 rebuild keeps run-time shape arithmetic.
    free = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    found = tflite.problems(tflite.parse(free), "float32")
    assert any("free batch dimension survives" in p and "SHAPE" in p for p in found)
    assert any("free dimension" in p for p in found)


class _Product(keras.layers.Layer):
    """Product over the last axis: REDUCE_PROD, a TFLite op that TFLM has no kernel for."""

    def call(self, x):
        return keras.ops.prod(x, axis=-1, keepdims=True)


def test_an_op_without_tflm_kernel_is_refused_by_name(tiny_data):
    inputs = keras.Input(TINY_SHAPE, batch_size=1)
    h = _Product(name="product")(keras.layers.Dense(4, name="fc")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(h)))
    with pytest.raises(tflite.ConversionError, match="no kernel for REDUCE_PROD"):
        tflite.convert(model, quantization="float32")


def test_bad_representative_data_and_options_are_clear(tiny_data):
    model = _tiny()
    with pytest.raises(tflite.ConversionError, match=r"\[N, 40, 16\]"):
        tflite.convert(model, tiny_data[:, :20])
    with pytest.raises(tflite.ConversionError, match="needs representative_data"):
        tflite.convert(model, None)
    with pytest.raises(tflite.ConversionError, match="quantization must be"):
        tflite.convert(model, tiny_data, quantization="int16")


def test_quantize_rounds_half_away_from_zero_like_tflite():
    x = np.array([0.5, -0.5, 1.5, 2.5, -2.5, 0.49999997, 1000.0, -1000.0], np.float32)
    np.testing.assert_array_equal(tflite.quantize(x, 1.0, 0), [1, -1, 2, 3, -3, 0, 127, -128])
    np.testing.assert_array_equal(tflite.quantize(np.float32([0.25]), 0.5, -3), [-2])
    np.testing.assert_allclose(tflite.dequantize(np.int8([-2]), 0.5, -3), [0.5])


# ------------------------------------------------------------------------- device artefacts


def test_export_writes_every_artefact(exported):
    result, _ = exported
    names = sorted(p.name for p in result.out_dir.iterdir())
    # Everything but firmware.json (no firmware is built in these tests: tests/conftest.py).
    assert names == sorted(n for r, n in tflite.FILES.items() if r != "firmware")
    assert sorted(result.meta.files) == sorted(r for r in tflite.FILES if r != "firmware")
    assert result.files["int8"].read_bytes() == result.int8_bytes
    meta = json.loads(result.files["meta"].read_text())
    info = tflite.parse(result.int8_bytes)
    assert meta["ops"] == info.op_set
    assert meta["arena"]["recommended_bytes"] == result.report.arena_recommended
    # The model was merged before export, from an HRF run (its origin says so): still "merged
    # from HRF" (it said no when the exporter looked only at the model it was given).
    assert (
        meta["origin"]["hrf"]["sites"] == ["ffn_in"] and meta["origin"]["merged_from_hrf"] is True
    )
    header = result.files["c_header"].read_text()
    assert f"#define KERAS_HRF_ARENA_SIZE {meta['arena']['recommended_bytes']}" in header
    resolver = result.files["op_resolver"].read_text()
    methods = re.findall(r"resolver\.(Add\w+)\(", resolver)
    assert methods == sorted(tflite.TFLM_OP_RESOLVER_METHODS[op] for op in info.op_set)
    assert "MicroMutableOpResolver<kKerasHrfNumOps>" in resolver
    assert f"kKerasHrfNumOps = {len(info.op_set)};" in resolver
    report_md = result.files["report"].read_text()
    assert "| TFLM arena, measured minimum |" in report_md and "| BATCH_MATMUL |" in report_md


@needs_gxx
@needs_tflm
def test_c_array_compiles_and_holds_the_flatbuffer(exported, tmp_path):
    result, _ = exported
    source = result.files["c_source"].read_text()
    assert "alignas(16) const unsigned char g_model_data[]" in source
    micro = _cc_array(source, "g_model_data")
    full = result.files["int8"].read_bytes()
    assert micro == slim.micro_flatbuffer(full)
    assert len(micro) == result.meta.sizes["micro_bytes"] < len(full)
    _compile(result.files["c_source"], result.out_dir)
    # The example application compiles against the export's headers too.
    _compile(MAIN_CC, result.out_dir)


def test_micro_flatbuffer_runs_alike_in_tflm_and_is_smaller_where_it_says(light, corpus):
    """The copy for the C array: the same TFLM outputs, bytes saved where the docstring says
    (zero points, bias scales, names, metadata), and LiteRT refuses it (which is why the
    ``.tflite`` stays complete)."""
    from data_prep.int8 import quantize
    from keras_hrf.device import runtimes
    from keras_hrf.export.flatbuffer import as_input_batch

    full = light["ds_cnn"]["int8"]
    micro = slim.micro_flatbuffer(full)
    detail = runtimes.litert_interpreter(full).get_input_details()[0]
    q = quantize(as_input_batch(corpus["x"][:16], detail["shape"]), *detail["quantization"])
    a = runtimes.run_tflm(full, q, arena_size=4 * 1024 * 1024)[0]
    b = runtimes.run_tflm(micro, q, arena_size=4 * 1024 * 1024)[0]
    np.testing.assert_array_equal(a, b)
    before, after = slim.size_breakdown(full), slim.size_breakdown(micro)
    assert after["weights"] == before["weights"] and after["metadata"] == 0
    # ds_cnn light: per-channel weights and biases, ~24 B of parameters per channel -> ~4.
    assert after["quantization"] < 0.3 * before["quantization"]
    assert tflite.parse(micro).op_names == tflite.parse(full).op_names
    with pytest.raises(Exception, match="zero_point|scale"):
        runtimes.run_litert(micro, q[:1])
    # The metadata TFLM reads (an offline memory plan) survives; the converter's strings do not.
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(full), 0)
    plan, buffer = schema.MetadataT(), schema.BufferT()
    buffer.data = [1, 0, 0, 0]
    model.buffers.append(buffer)
    plan.name, plan.buffer = b"OfflineMemoryAllocation", len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), plan]
    names = {bytes(m.name) for m in model.metadata}
    assert b"min_runtime_version" in names
    kept = schema.ModelT.InitFromPackedBuf(
        bytearray(slim.micro_flatbuffer(slim._to_bytes(model))), 0
    )
    assert [bytes(m.name) for m in kept.metadata] == [b"OfflineMemoryAllocation"]
    assert list(kept.buffers[kept.metadata[0].buffer].data) == [1, 0, 0, 0]


def test_micro_flatbuffer_stores_repeats_once_and_reads_back_the_same(light, corpus):
    """The Transformer copy for TFLM shares equal shapes, zero points and quantization tables
    and one empty buffer: read back, every tensor has the shape, type, data and quantization
    it had (bias scales and zero points collapsed as documented), TFLM gives the same outputs,
    and the breakdown counts shared bytes once."""
    from tensorflow.lite.python import schema_py_generated as schema

    from data_prep.int8 import quantize
    from keras_hrf.device import runtimes
    from keras_hrf.export.flatbuffer import as_input_batch

    full = light["conformer"]["int8"]
    micro = slim.micro_flatbuffer(full)
    a = schema.ModelT.InitFromPackedBuf(bytearray(full), 0)
    b = schema.ModelT.InitFromPackedBuf(bytearray(micro), 0)
    ta, tb = a.subgraphs[0].tensors, b.subgraphs[0].tensors
    assert len(ta) == len(tb)
    biases = {t.index for t in tflite.parse(full).tensors if t.dtype == "INT32"}

    def data(model, tensor):
        d = model.buffers[tensor.buffer].data
        return b"" if d is None else bytes(d)

    for i, (x, y) in enumerate(zip(ta, tb)):
        assert list(x.shape) == list(y.shape) and x.type == y.type
        assert data(a, x) == data(b, y)
        if not data(b, y):
            assert y.buffer == 0  # every activation shares the empty sentinel
        qx, qy = x.quantization, y.quantization
        if qx is None or qx.scale is None:
            continue
        if len(qx.scale) > 1 and i in biases:
            np.testing.assert_array_equal(qy.scale, qx.scale[:1])
        else:
            np.testing.assert_array_equal(qy.scale, qx.scale)
            assert np.all(np.asarray(qy.zeroPoint) == np.asarray(qx.zeroPoint))
    constant = {t.buffer for t in tb if t.buffer}
    assert len(b.buffers) == 1 + len(constant)

    # Shared: fewer distinct shape vectors and quantization tables than tensors, read by
    # position (the object API unpacks each use on its own).
    reader = schema.Model.GetRootAs(bytearray(micro), 0).Subgraphs(0)
    positions = [reader.Tensors(i).Quantization() for i in range(reader.TensorsLength())]
    tables = {q._tab.Pos for q in positions if q is not None}
    assert len(tables) < sum(q is not None for q in positions)
    shapes = {reader.Tensors(i)._tab.Vector(reader.Tensors(i)._tab.Offset(4))
              for i in range(reader.TensorsLength())}  # fmt: skip
    assert len(shapes) < reader.TensorsLength()
    parts = slim.size_breakdown(micro)
    assert parts["structure"] > 0  # shared bytes counted twice would eat into it
    naive = sum(
        4 * len(t.quantization.scale) + 8 * len(t.quantization.zeroPoint)
        for t in tb
        if t.quantization is not None and t.quantization.scale is not None
    )
    assert parts["quantization"] < naive
    # Smaller than the same slimming without sharing (what the copy was before).
    assert len(micro) < len(slim._to_bytes(b)) - 2000

    detail = runtimes.litert_interpreter(full).get_input_details()[0]
    q = quantize(as_input_batch(corpus["x"][:8], detail["shape"]), *detail["quantization"])
    np.testing.assert_array_equal(
        runtimes.run_tflm(full, q, arena_size=4 * 1024 * 1024)[0],
        runtimes.run_tflm(micro, q, arena_size=4 * 1024 * 1024)[0],
    )


def test_sharing_builder_shares_scalar_vectors_only():
    """Equal scalar vectors get one offset; vectors of offsets with equal bytes do not (their
    bytes are relative to where they lie)."""
    b = slim._SharingBuilder(16)
    offsets = []
    for _ in range(2):
        b.StartVector(4, 3, 4)
        for v in (3, 2, 1):
            b.PrependInt32(v)
        offsets.append(b.EndVector())
    assert offsets[0] == offsets[1]
    b.StartVector(4, 3, 4)
    for v in (1, 2, 4):
        b.PrependInt32(v)
    assert b.EndVector() != offsets[0]
    s1, s2 = b.CreateString("a"), b.CreateString("b")
    lists = []
    for _ in range(2):
        b.StartVector(4, 1, 4)
        b.PrependUOffsetTRelative(s1 if not lists else s2)
        lists.append(b.EndVector())
    assert lists[0] != lists[1]


@needs_gxx
@needs_tflm
def test_resolver_methods_and_c_strings_compile(tmp_path):
    src = tmp_path / "all_ops.cc"
    src.write_text(
        '#include "op_resolver.h"\n'
        "bool RegisterAll() { bool ok = false; GetKerasHrfOpResolver(&ok); return ok; }\n"
    )
    every = list(tflite.TFLM_OP_RESOLVER_METHODS)
    # Generic kernels; then every op all-int8: the int8-only registrations and the project's own.
    for int8_ops in ((), every):
        resolver = csource.op_resolver_h(every, int8_ops)
        for registration, _ in csource.PROJECT_KERNELS.values():
            assert (f"{registration}()) != kTfLiteOk" in resolver) == bool(int8_ops)
        (tmp_path / "op_resolver.h").write_text(resolver)
        _compile(src, tmp_path)
    labels = ['say "hi"', "back\\slash", "wütend", "??="]
    (tmp_path / "model_data.h").write_text(
        csource.model_data_h(
            num_bytes=3,
            arena_bytes=1024,
            arena_min=900,
            input_shape=(1, 2, 2),
            input_scale=1.0,
            input_zero_point=0,
            output_scale=0.5,
            output_zero_point=-1,
            num_classes=len(labels),
        )
    )
    (tmp_path / "model_data.cc").write_text(csource.model_data_cc(b"\x00\x01\xff", labels))
    _compile(tmp_path / "model_data.cc", tmp_path)


def test_meta_round_trip_reproduces_the_exported_input(exported, corpus):
    from data_prep.features import features_of

    result, rows = exported
    meta = tflite.load_meta(result.out_dir)
    assert list(meta.labels) == corpus["labels"]
    assert meta.feature_params == corpus["params"]
    np.testing.assert_array_equal(meta.normalizer.mean, corpus["normalizer"].mean)
    example = json.loads(result.files["meta"].read_text())["example"]
    wav = corpus["manifest"]["path"].iloc[rows[example["sample_index"]]]
    # From the WAV file, with nothing but the metadata, to the tensor the exporter wrote.
    x = meta.features_to_input(features_of(wav, meta.feature_params))
    written = _cc_array(result.files["example_input"].read_text(), "g_example_input")
    np.testing.assert_array_equal(x.reshape(-1), np.frombuffer(written, np.int8))
    assert x.shape == meta.input_shape and x.dtype == np.int8
    # The device example gives the label the header promises.
    feats = features_of(wav, meta.feature_params)
    logits = tflite.predict(result.int8_bytes, meta.normalizer.transform(feats))
    assert meta.label_of(logits) == example["expected_label"]


def test_load_meta_names_a_missing_key(exported, tmp_path):
    result, _ = exported
    doc = json.loads(result.files["meta"].read_text())
    del doc["input"]["scale"]
    bad = tmp_path / "model_meta.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(tflite.MetaError, match=r"missing key 'input\.scale'"):
        tflite.load_meta(bad)
    doc = json.loads(result.files["meta"].read_text())
    doc["schema_version"] = tflite.META_SCHEMA_VERSION + 1
    bad.write_text(json.dumps(doc))
    with pytest.raises(tflite.MetaError, match="schema_version"):
        tflite.load_meta(bad)
    with pytest.raises(tflite.MetaError, match="no such file"):
        tflite.load_meta(tmp_path / "nowhere")


def test_export_is_atomic(tiny_data, tmp_path):
    from data_prep.features import FeatureParams, Normalizer

    params = FeatureParams(n_fft=256, win_length=200, n_mels=16, frames=40)
    kwargs = dict(
        representative_data=tiny_data,
        labels=["a", "b", "c"],
        feature_params=params,
        normalizer=Normalizer.fit(tiny_data, params, exclude_floor=False),
        num_samples=8,
    )
    out = tmp_path / "device"
    out.mkdir()
    (out / "keep.txt").write_text("old export")
    model = _tiny()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        tflite.export(model, out, **kwargs)
    # A failure after the flatbuffers were written (origin is not JSON) leaves the old folder.
    with pytest.raises(ValueError, match="JSON-serialisable"):
        tflite.export(model, out, origin={"bad": object()}, overwrite=True, **kwargs)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["device"]  # no partial folder
    tflite.export(model, out, overwrite=True, **kwargs)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        n for r, n in tflite.FILES.items() if r != "firmware"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["device"]
    with pytest.raises(ValueError, match="2 labels for a model with 3 outputs"):
        tflite.export(model, tmp_path / "other", **{**kwargs, "labels": ["a", "b"]})
    assert not (tmp_path / "other").exists()
