"""experiments: variant names with options (the ablation), paired statistics, the summary and its
report."""

import json

import numpy as np
import pandas as pd
import pytest

from keras_hrf.experiments import reproduction as experiment
from keras_hrf.experiments import statistics, variants
from keras_hrf.training import TrainConfig


def test_variant_names_with_hrf_options():
    v = variants.parse_variant("light")
    assert (v.size, v.hrf, v.model) == ("light", None, {})
    v = variants.parse_variant("light+qhrf")
    assert (v.size, v.hrf) == ("light", {"quantize_merged": True})
    v = variants.parse_variant(
        "light+hrf:sites=ffn_in/ffn_out,expansion=4,factor_init=identity,factor_lr_scale=0.3"
    )
    assert v.size == "light"
    assert v.hrf == {
        "sites": ["ffn_in", "ffn_out"],
        "expansion": 4,
        "factor_init": "identity",
        "factor_lr_scale": 0.3,
    }
    assert variants.parse_variant("light+qhrf:depth=3").hrf == {
        "quantize_merged": True,
        "depth": 3,
    }
    name = variants.variant_dirname("light+hrf:sites=ffn_in/ffn_out,expansion=4")
    assert name == "light_hrf_sites-ffn_in-ffn_out_expansion-4"
    # Base HRF options (e.g. --hrf-expansion) apply to every HRF variant, the variant's on top.
    base = TrainConfig(hrf={"expansion": 3, "depth": 3})
    cfg = variants.variant_config(base, "light+hrf:expansion=4")
    assert cfg.hrf == {"expansion": 4, "depth": 3} and cfg.size == "light"
    assert variants.variant_config(base, "light").hrf is None


@pytest.mark.parametrize(
    "variant, match",
    [
        ("medium", "unknown variant"),
        ("light:expansion=4", "no HRF layers"),
        ("light+hrf:expansion", "KEY=VALUE"),
        ("light+hrf:expanson=4", "unknown option"),
        ("light+hrf:expansion=0.5", "expansion must be >= 1"),
        ("light+hrf:sites=ffn_in/fnn", "unknown site"),
        ("light+hrf:factor_lr_scale=0", "factor_lr_scale"),
    ],
)
def test_bad_variant_names_are_refused_before_training(variant, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        variants.parse_variant(variant)
    with pytest.raises(ValueError, match=match):  # before any corpus is read
        experiment.reproduce("synthetic", tmp_path / "missing", tmp_path, variants=[variant])


def _runs(effects: dict[str, float], pairs: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    base = rng.uniform(0.4, 0.5, pairs)
    rows = []
    for variant, effect in effects.items():
        noise = rng.normal(0, 0.005, pairs) if variant != "light" else 0
        for i, ua in enumerate(base + effect + noise):
            rows.append(dict(family="conformer", variant=variant, fold=i, seed=0, ua=ua))
    table = pd.DataFrame(rows)
    for col in ("wa", "macro_f1", "int8_ua", "int8_agreement"):
        table[col] = table["ua"]
    for col in ("params_train", "params_deployed", "macs_deployed"):
        table[col] = 1000
    table["flatbuffer_bytes"] = table["arena_bytes"] = 100
    exported = table.variant != "light+hrf:expansion=4"  # an ablation run without int8 export
    table["flatbuffer_bytes"] = table["flatbuffer_bytes"].where(exported)
    table["arena_bytes"] = table["arena_bytes"].where(exported)
    return table


def test_ablation_is_paired_with_light_and_with_the_default_hrf():
    effects = {"light": 0.0, "light+hrf": 0.01, "light+hrf:expansion=4": 0.05, "large": 0.1}
    summary = experiment.summarize(_runs(effects))
    ablation = summary["ablation_ua_minus_light"]["conformer"]
    assert set(ablation) == {"light+hrf", "light+hrf:expansion=4", "large"}
    assert ablation["large"]["mean_diff"] == pytest.approx(0.1, abs=0.01)
    assert ablation["large"]["vs_default"] is None  # not an HRF option
    wide = ablation["light+hrf:expansion=4"]
    assert (
        wide["pairs"] == 6
        and wide["wins"] == 6
        and wide["mean_diff"] == pytest.approx(0.05, abs=0.01)
    )
    assert wide["vs_default"]["mean_diff"] == pytest.approx(0.04, abs=0.01)
    assert ablation["light+hrf"]["vs_default"] is None
    assert summary["paired_ua_hrf_minus_light"]["conformer"]["mean_diff"] == pytest.approx(
        0.01, abs=0.01
    )
    report = experiment.reproduce_report(summary, "ravdess", 6)
    assert "## Every variant minus light" in report and "None" not in report
    assert "| conformer | light+hrf:expansion=4 | 6 | +" in report
    # Without option variants there is no ablation section.
    plain = experiment.summarize(_runs({"light": 0.0, "light+hrf": 0.01}))
    assert "ablation_ua_minus_light" not in plain
    assert "## Every variant minus light" not in experiment.reproduce_report(plain, "ravdess", 6)


def test_holm_adjustment_matches_the_step_down_definition():
    # m = 3: sorted 0.01, 0.03, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.03), max(0.06, 1 * 0.04).
    assert statistics.holm_adjust([0.04, None, 0.01, 0.03]) == pytest.approx(
        [0.06, None, 0.03, 0.06]
    )
    assert statistics.holm_adjust([0.9, 0.8]) == [1.0, 1.0]  # capped at 1
    assert statistics.holm_adjust([]) == []


def test_families_tested_together_are_holm_adjusted_and_pooled():
    # Each family: 6 wins of 6, exact Wilcoxon p = 1/32 < 0.05, but not after adjusting for the
    # two families (2/32); the 12 pooled pairs are conclusive.
    effects = {"light": 0.0, "light+hrf": 0.02}
    table = pd.concat([_runs(effects), _runs(effects).assign(family="speechformer")])
    paired = experiment.summarize(table)["paired_ua_hrf_minus_light"]
    assert set(paired) == {"conformer", "speechformer", statistics.ALL_FAMILIES}
    one = paired["conformer"]
    assert one["wilcoxon_p"] == pytest.approx(1 / 32) and one["holm_p"] == pytest.approx(2 / 32)
    assert "nominally helped" in statistics.verdict(one) and "2 families" in statistics.verdict(one)
    pooled = paired[statistics.ALL_FAMILIES]
    assert pooled["pairs"] == 12 and pooled["wins"] == 12 and pooled["wilcoxon_p"] < 0.01
    assert statistics.verdict(pooled).startswith("HRF helped")
    report = experiment.reproduce_report(experiment.summarize(table), "ravdess", 6)
    assert "| all families | 12 | +" in report and "| Holm p |" in report


def test_variants_take_model_options_checked_per_family_before_any_corpus_read(tmp_path):
    v = variants.parse_variant("light+hrf:stem=conv1d,expansion=3,stem_strides=4x2/2x2")
    assert v.hrf == {"expansion": 3}
    assert v.model == {"stem": "conv1d", "stem_strides": [[4, 2], [2, 2]]}
    assert variants.parse_variant("tiny+hrf").size == "tiny"
    cfg = variants.variant_config(TrainConfig(), "light:stem=conv1d")
    assert cfg.model_overrides == {"stem": "conv1d"} and cfg.hrf is None
    # ds_cnn has no stem option: refused before the (missing) corpus is read.
    with pytest.raises(ValueError, match="unknown hyper-parameter"):
        experiment.reproduce(
            "synthetic",
            tmp_path / "missing",
            tmp_path,
            families=["ds_cnn"],
            variants=["light:stem=conv1d"],
        )


def _fake_run(path, **train):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"train": TrainConfig(**train).to_dict()}))
    return str(path)


def test_report_protocol_describes_the_runs_not_the_command_line(tmp_path):
    """--report-only with default options must not claim 100 epochs for runs trained 30, nor
    early stopping for runs that kept their last epoch."""
    runs = [
        _fake_run(tmp_path / f"r{i}", epochs=30, patience=10, selection="best") for i in range(3)
    ]
    table = pd.DataFrame({"path": runs})
    summary = experiment.summarize(_runs({"light": 0.0, "light+hrf": 0.01}))
    base = TrainConfig()  # 100 epochs, last epoch, EMA: what the command line says
    report = experiment.reproduce_report(summary, "ravdess", 6, base, runs=table)
    assert "up to 30 epochs, early stopping" in report and "patience 10" in report
    assert "100 epochs" not in report
    extra = _fake_run(tmp_path / "r9", epochs=60, patience=10, selection="best")
    report = experiment.reproduce_report(
        summary, "ravdess", 6, base, runs=pd.DataFrame({"path": runs + [extra]})
    )
    assert "up to 30 (3 runs)/60 (1 runs) epochs" in report
    last = [_fake_run(tmp_path / f"l{i}", epochs=80, ema=0.99, mixup=0.2) for i in range(2)]
    report = experiment.reproduce_report(
        summary, "ravdess", 6, base, runs=pd.DataFrame({"path": last})
    )
    assert "80 epochs, the weights at the end of the schedule kept" in report
    assert "early stopping on" not in report and "decay 0.99 per step" in report
    assert "mixup alpha 0.2" in report
    no_ema = [_fake_run(tmp_path / "n0", ema=0.0)]
    report = experiment.reproduce_report(
        summary, "ravdess", 6, base, runs=pd.DataFrame({"path": no_ema})
    )
    assert "no weight averaging" in report


def test_a_bad_fold_file_fails_before_any_feature_is_computed(
    synthetic_root, tmp_path, monkeypatch
):
    import data_prep.features
    from data_prep.splits import SplitError

    def no_extraction(*args, **kwargs):
        raise AssertionError("features were computed before the fold file was checked")

    import data_prep.prepare

    monkeypatch.setattr(data_prep.prepare, "extract", no_extraction)
    monkeypatch.setattr(data_prep.features, "extract", no_extraction)
    bad = tmp_path / "folds.json"
    bad.write_text(json.dumps({"test_speakers": [["nobody"], ["else"]]}))
    with pytest.raises(SplitError, match="not in the manifest"):
        experiment.reproduce("synthetic", synthetic_root, tmp_path / "out", folds_file=bad)


def test_paired_interval_power_and_the_comparison_with_large():
    """The 95 % interval is the t-interval (scipy), the power calculation grows with the noise,
    and each light variant is paired with large (within 1 point or not)."""
    from scipy import stats

    idx = pd.MultiIndex.from_tuples([(f, 0) for f in range(6)], names=["fold", "seed"])
    a = pd.Series([0.50, 0.52, 0.48, 0.55, 0.51, 0.49], index=idx)
    d = np.array([0.01, 0.03, -0.01, 0.02, 0.00, 0.04])
    p = statistics.paired_difference(a, a + d)
    lo, hi = stats.t.interval(0.95, 5, loc=d.mean(), scale=d.std(ddof=1) / np.sqrt(6))
    assert p["ci95"] == pytest.approx([lo, hi])
    assert "95 % CI [" in statistics.verdict(p)
    noisy = statistics.pairs_needed(0.05)
    assert noisy > statistics.pairs_needed(0.02) > 2 and statistics.pairs_needed(None) is None
    # Differences almost always zero (a rewrite that changes one prediction): statsmodels' solver
    # fails there (nan, or its bracket's lower end 2 where 2 pairs have power 0.6); the answer is
    # the smallest t-test that sees the effect, not a crash or a skipped sample size.
    assert statistics.pairs_needed(0.0009) == statistics.pairs_needed(0.0012632) == 2
    assert statistics.pairs_needed(0.002) == 3
    assert statistics.paired_t_power(0.015 / 0.002, 2) < 0.8 <= statistics.paired_t_power(7.5, 3)
    # Where statsmodels' own power is finite the two agree.
    from statsmodels.stats.power import TTestPower

    for size, n in ((0.5, 34), (0.3, 90), (5.0, 3)):
        expected = TTestPower().power(effect_size=size, nobs=n, alpha=0.05)
        assert statistics.paired_t_power(size, n) == pytest.approx(expected, abs=1e-4)
    # sd 5 points, 1.5-point effect: ~90 pairs (normal approximation 8 * (5 / 1.5)^2 = 89).
    assert 85 <= noisy <= 95
    summary = experiment.summarize(_runs({"light": 0.0, "light+hrf": -0.005, "large": 0.03}))
    vs = summary["paired_ua_minus_large"]["conformer"]
    assert set(vs) == {"light", "light+hrf"}
    assert vs["light+hrf"]["mean_diff"] == pytest.approx(-0.035, abs=0.01)
    report = experiment.reproduce_report(summary, "ravdess", 6, TrainConfig())
    assert "## Light variants minus large" in report and "| no |" in report
    assert summary["groups"]["conformer/light"]["seed_std"] is None  # one seed
