"""The resumable reproduction and the quantization study on its runs (synthetic corpus)."""

import json

import pytest

from keras_hrf.experiments import reproduction as experiment
from keras_hrf.training import TrainConfig


def test_reproduce_resumes_and_backfills_int8(synthetic_root, tmp_path, tiny):
    kw = dict(
        families=["conv_transformer"],
        variants=["light", "light+hrf"],
        seeds=[0],
        n_folds=3,
        folds=[0],
        base=TrainConfig(epochs=1, model_overrides=tiny),
        progress=False,
    )
    table = experiment.reproduce("synthetic", synthetic_root, tmp_path, export=False, **kw)
    assert len(table) == 2 and table["int8_ua"].isna().all()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["paired_ua_hrf_minus_light"]["conv_transformer"]["pairs"] == 1
    history = sorted(tmp_path.glob("runs/**/history.csv"))
    stamps = [p.stat().st_mtime_ns for p in history]
    # Resume with export: nothing is retrained, the int8 figures are back-filled.
    table = experiment.reproduce("synthetic", synthetic_root, tmp_path, command="x y", **kw)
    assert [p.stat().st_mtime_ns for p in history] == stamps
    assert table["int8_ua"].notna().all() and table["flatbuffer_bytes"].gt(0).all()
    metrics = sorted(tmp_path.glob("runs/**/metrics.json"))
    stamps = [p.stat().st_mtime_ns for p in metrics]
    (tmp_path / "NOTES.md").write_text("## How these runs were made\n")
    experiment.reproduce("synthetic", synthetic_root, tmp_path, **kw)  # nothing left to do
    assert [p.stat().st_mtime_ns for p in metrics] == stamps
    # Hand-written notes survive the regenerated report.
    assert (tmp_path / "REPORT.md").read_text().endswith("## How these runs were made\n")

    # The quantization study on the same runs: PTQ figures read, QAT computed once (resumable).
    from keras_hrf.experiments.quant_study import quantization_study
    from keras_hrf.training import QATConfig

    study = dict(families=["conv_transformer"], seeds=[0], folds=[0], n_folds=3, progress=False)
    summary = quantization_study(
        "synthetic",
        synthetic_root,
        tmp_path,
        qat_config=QATConfig(epochs=1),
        layer_norm_l2=True,
        **study,
    )
    ct = summary["conv_transformer"]
    # control=True (the same fine-tuning without fake quantization) is left out for time.
    assert ct["ptq"]["n"] == ct["qat"]["n"] == ct["ptq_l2"]["n"] == 1
    assert "qhrf" not in ct and "ft" not in ct
    # The l2 lowering changes the int8 graph, not the float model.
    assert ct["ptq_l2"]["float_ua"] == pytest.approx(ct["ptq"]["float_ua"], abs=0.02)
    assert 0 <= ct["qat"]["agreement"] <= 1 and ct["qat"]["litert_tflm_max_diff"] >= 0
    assert json.loads((tmp_path / "quantization.json").read_text()) == summary
    assert "| conv_transformer | qat | 1 |" in (tmp_path / "QUANT.md").read_text()
    qat_metrics = next(tmp_path.glob("runs/**/qat/metrics.json"))
    stamp = qat_metrics.stat().st_mtime_ns
    quantization_study("synthetic", synthetic_root, tmp_path, run_qat=False, **study)
    assert qat_metrics.stat().st_mtime_ns == stamp
    report = (tmp_path / "REPORT.md").read_text()
    assert "Wilcoxon" in report and "too few pairs" in report
    # report_only summarises finished runs and trains nothing for the missing fold 1.
    kw["folds"] = [0, 1]
    table = experiment.reproduce("synthetic", synthetic_root, tmp_path, report_only=True, **kw)
    assert len(table) == 2 and set(table["fold"]) == {0}
    assert not list(tmp_path.glob("runs/**/fold1_seed0"))
