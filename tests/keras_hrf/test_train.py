"""Training, run folders and the resumable reproduction, on the synthetic corpus."""

import json

import numpy as np
import pytest

from data_prep import splits
from keras_hrf import experiment, runs
from keras_hrf.metrics import classification_metrics, participant_vote
from keras_hrf.train import TrainConfig, encode_labels, fit


@pytest.fixture(scope="session")
def split(synthetic_features):
    _, manifest, _ = synthetic_features
    return splits.speaker_kfold(manifest, n_folds=3, seed=0)[0]


@pytest.fixture(scope="session")
def hrf_run(synthetic_features, split, tiny):
    feats, manifest, params = synthetic_features
    # One epoch of quantization-aware fine-tuning of the merged model, too (qat_epochs).
    cfg = TrainConfig(hrf={}, epochs=3, model_overrides=tiny, seed=1, qat_epochs=1)
    return fit(cfg, feats, manifest, split, feature_params=params, progress=False)


def test_fit_trains_merges_and_reports(hrf_run, synthetic_features, split):
    m = hrf_run.metrics
    assert m["merge_max_abs_diff"] < 1e-4
    assert m["test"]["ua"] == m["test_merged"]["ua"]
    assert m["params_deployed"] == m["params_plain"] < m["params_train"]
    assert list(hrf_run.history.columns[:2]) == ["epoch", "loss"]
    assert "val_ua" in hrf_run.history and len(hrf_run.history) == 3
    assert m["test"]["n"] == len(split.test)
    # QAT tuned a copy of the merged model: same layers, other weights, its own test figures.
    deployed = hrf_run.deployed
    assert [type(a) for a in deployed.layers] == [type(b) for b in hrf_run.merged.layers]
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(deployed.get_weights(), hrf_run.merged.get_weights(), strict=True)
    )
    assert m["test_deployed"]["n"] == len(split.test) and len(m["qat_history"]["loss"]) == 1
    # Normaliser comes from the training split only.
    feats = synthetic_features[0]
    np.testing.assert_allclose(
        hrf_run.normalizer.mean, feats[split.train].mean(axis=(0, 1)), rtol=1e-4, atol=1e-4
    )


def test_same_seed_same_weights(synthetic_features, split, tiny):
    feats, manifest, params = synthetic_features
    cfg = TrainConfig(epochs=1, model_overrides=tiny, seed=5)
    a = fit(cfg, feats, manifest, split, feature_params=params, progress=False)
    b = fit(cfg, feats, manifest, split, feature_params=params, progress=False)
    for wa, wb in zip(a.model.get_weights(), b.model.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_run_folder_round_trip(hrf_run, tmp_path):
    out = runs.save_run(hrf_run, tmp_path / "run")
    for name in (
        "model.keras",
        "model_merged.keras",
        "model_deployed.keras",
        "history.csv",
        "metrics.json",
        "confusion.png",
        "curves.png",
        "config.json",
        "REPORT.md",
        "device/model_int8.tflite",
        "device/model_meta.json",
    ):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["int8"]["agreement_with_float"] <= 1
    loaded = runs.load_run(out)
    x = hrf_run.predictions["x_test"][:4]
    np.testing.assert_allclose(
        loaded.merged.predict(x, verbose=0), hrf_run.merged.predict(x, verbose=0), atol=1e-6
    )
    assert loaded.labels == hrf_run.labels
    # The device files come from the deployed (QAT-tuned) model.
    np.testing.assert_allclose(
        loaded.deployed.predict(x, verbose=0), hrf_run.deployed.predict(x, verbose=0), atol=1e-6
    )
    assert "QAT-tuned" in (out / "REPORT.md").read_text()
    assert not list(tmp_path.glob(".run.tmp-*"))  # no leftovers of the atomic write


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
    from keras_hrf.qat import QATConfig
    from keras_hrf.quant_study import quantization_study

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


def test_metrics_against_hand_computed_values():
    m = classification_metrics([0, 0, 0, 1], [0, 0, 1, 1], ["a", "b", "c"])
    assert m["wa"] == 0.75 and m["ua"] == pytest.approx((2 / 3 + 1) / 2)
    assert m["confusion"] == [[2, 1, 0], [0, 1, 0], [0, 0, 0]]
    v = participant_vote(["p", "p", "p", "q"], [1, 1, 1, 0], [1, 0, 1, 1], ["no", "yes"])
    assert v["participants"] == 2 and v["wa"] == 0.5


def test_config_and_label_errors():
    with pytest.raises(ValueError, match="unknown model family"):
        TrainConfig(family="lstm")
    with pytest.raises(ValueError, match="unknown site"):
        TrainConfig(hrf={"sites": ["conv"]})
    import pandas as pd

    with pytest.raises(ValueError, match="not among the classes"):
        encode_labels(pd.Series(["happy", "bored"]), ["happy", "sad"])
