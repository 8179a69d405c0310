"""Per-layer quantization report: TFLite's QuantizationDebugger on the project's own converter.

One tiny conv_transformer (light preset at a (40, 16) input, perturbed weights) with one layer
damaged for int8 only: hidden unit 0 of ``block0_ffn_fc1`` is dead (zero weights, bias -20, so
ReLU gives 0 for every input) and row 0 of ``block0_ffn_fc2``'s kernel is 1000x its largest
weight. The float model is unchanged (the row multiplies zeros), but the per-channel int8 scale of
every fc2 output channel is set by the outlier, so all its real weights round to 0: the int8 fc2
output is wrong by tens of steps. (Damage that the converter folds away, e.g. a zero LayerNorm
gain before a Dense, or that only rescales a tensor, e.g. a whole kernel x100, does not show in a
per-op error measured in the op's own int8 steps.)
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from keras_hrf import models, tflite
from keras_hrf.cli import main
from keras_hrf.export import flatbuffer
from keras_hrf.export.quant_report import ROW_COLUMNS

SHAPE = (40, 16)
DAMAGED = "block0_ffn_fc2"


def _damaged_model():
    m = models.build("conv_transformer", "light", input_shape=SHAPE, num_classes=3, seed=0)
    rng = np.random.default_rng(1)
    m.set_weights([w + 0.05 * rng.standard_normal(w.shape) for w in m.get_weights()])
    k1, b1 = m.get_layer("block0_ffn_fc1").get_weights()
    k1[:, 0], b1[0] = 0.0, -20.0
    m.get_layer("block0_ffn_fc1").set_weights([k1, b1])
    k2, b2 = m.get_layer(DAMAGED).get_weights()
    k2[0, :] = 1000.0 * np.abs(k2).max()
    m.get_layer(DAMAGED).set_weights([k2, b2])
    return m


@pytest.fixture(scope="module")
def damaged():
    x = np.random.default_rng(0).standard_normal((48,) + SHAPE).astype("float32")
    model = _damaged_model()
    report = tflite.quant_report(model, x, num_samples=48, num_debug=16, keep_float=(1, 3))
    return model, x, report


def test_one_row_per_quantized_tensor_with_finite_errors(damaged):
    model, x, report = damaged
    rows = report.rows
    assert list(rows.columns) == list(ROW_COLUMNS)
    # The debugger checks every op output of the int8 model that convert() makes.
    info = flatbuffer.parse(tflite.convert(model, x, num_samples=48))
    int8_outputs = [op for op in info.ops if info.tensors[op.outputs[0]].dtype == "INT8"]
    assert len(rows) == len(int8_outputs) > 50
    assert set(rows["op_type"]) == {op.name for op in int8_outputs}
    for col in ("rmse_scale", "max_abs_error", "scale"):
        assert np.all(np.isfinite(rows[col])) and np.all(rows[col] >= 0), col
    assert list(rows["rank"]) == list(range(1, len(rows) + 1))
    assert rows["rmse_scale"].is_monotonic_decreasing
    # Names are shortened to the Keras layers; the output is named after the logits layer.
    layer_names = {layer.name for layer in model.layers}
    assert (rows["layer"].isin(layer_names)).mean() > 0.95
    assert "logits (output)" in set(rows["tensor"])


def test_the_damaged_layer_ranks_at_the_top_and_keeping_it_float_repairs_the_logits(damaged):
    _, _, report = damaged
    rows = report.rows
    hit = rows[rows["layer"] == DAMAGED].iloc[0]
    # At the top: its wrong output also pushes the next LayerNorm's int8 tensors (RSQRT, MEAN)
    # out of their calibrated range, and such saturation is an error of those ops too.
    assert hit["rank"] <= 3 and hit["op_type"] == "FULLY_CONNECTED"
    assert hit["rmse_scale"] > 10  # tens of int8 steps; rounding alone is 0.29
    assert rows["rmse_scale"].median() < 0.4  # the others stay near rounding error
    sel = report.selective.set_index("kept_float")
    assert (sel["error"] == "").all()
    assert sel.loc["none", "float_ops"] == 0 and sel.loc["top 3", "float_ops"] >= 3
    base = report.end_to_end["logits_rmse"]
    assert base == pytest.approx(sel.loc["none", "logits_rmse"], rel=1e-6)
    assert sel.loc["top 3", "logits_rmse"] < 0.25 * base  # the top 3 hold the damaged op
    ops = report.by_op_type().set_index("op_type")
    assert ops.loc["FULLY_CONNECTED", "max_rmse_scale"] == hit["rmse_scale"]
    assert ops.loc["FULLY_CONNECTED", "rmse_change"] < -0.5
    assert "RESHAPE" not in set(sel.index)  # lossless data movement: not re-quantized


def test_markdown_plot_and_dict(damaged, tmp_path):
    _, _, report = damaged
    md = report.to_markdown(top=5)
    assert f"`{DAMAGED}/" in md and "By op type" in md and "TFLite Micro" in md
    assert md.count("| FULLY_CONNECTED |") >= 2
    png = report.plot(tmp_path / "q.png", top=8)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    d = json.loads(json.dumps(report.to_dict()))
    assert len(d["rows"]) == len(report.rows)
    assert d["rows"][0]["tensor"] == report.rows.iloc[0]["tensor"]
    assert {r["kept_float"] for r in d["selective"]} >= {"none", "top 1", "top 3", "SOFTMAX"}
    assert 0 <= d["end_to_end"]["agreement"] <= 1


def test_cli_check_layers_on_a_run_folder(damaged, tmp_path, capsys):
    model, x, _ = damaged
    run = tmp_path / "run"
    (run / "device").mkdir(parents=True)
    model.save(run / "model_merged.keras")
    np.save(run / "representative.npy", x)
    flat = run / "device" / "model_int8.tflite"
    flat.write_bytes(tflite.convert(model, x, num_samples=48))
    assert main(["check", str(flat), "--layers", "--layers-out", str(tmp_path / "ql")]) == 0
    out = capsys.readouterr().out
    for name in ("quant_layers.md", "quant_layers.png", "quant_layers.json"):
        assert (tmp_path / "ql" / name).stat().st_size > 0
    assert "Quantization report" in out and f"`{DAMAGED}/" in out
    # Same model and calibration data: the debugger's int8 model is the deployed one.
    assert "differs from it by at most 0 output steps" in out

    alone = tmp_path / "model_int8.tflite"
    alone.write_bytes(flat.read_bytes())
    assert main(["check", str(alone), "--layers"]) == 2
    err = capsys.readouterr().err
    assert "--keras" in err and "Traceback" not in err
