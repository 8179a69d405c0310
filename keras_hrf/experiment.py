"""The main job (``demo``) and the paper's comparison (``reproduce``), as library functions.

``demo``: corpus (the built-in synthetic one by default) -> features -> train light, light+HRF
(and large) -> merge and verify -> int8 -> TFLM check -> one comparison report.

``reproduce``: for each family, light vs light+HRF vs large over speaker folds x seeds, every run
saved in its own folder (so a restart skips finished runs), then a summary with mean ± std and a
paired test of light+HRF against light.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from data_prep import load_corpus, splits, synthetic
from data_prep.features import FeatureParams, extract
from keras_hrf import models, reports
from keras_hrf.runs import add_device_export, save_run
from keras_hrf.train import TrainConfig, encode_labels, fit

#: Variants of the paper's comparison: name -> (size, hrf). Every preset name of
#: :data:`keras_hrf.models.BUDGETS` (and ``large``) makes the same three: ``<size>``,
#: ``<size>+hrf`` and ``<size>+qhrf``.
VARIANTS = {
    f"{size}{suffix}": (size, hrf)
    for size in ("light", "tiny", "large")
    for suffix, hrf in (("", None), ("+hrf", {}), ("+qhrf", {"quantize_merged": True}))
}


@dataclasses.dataclass(frozen=True)
class Variant:
    """What a variant name asks for (see :func:`parse_variant`).

    Attributes:
        name: The name as given.
        size: The preset.
        hrf: ``None`` (plain) or :class:`~keras_hrf.models.HRFConfig` fields.
        model: Preset hyper-parameters to override (e.g. ``{"stem": "conv1d"}``).
    """

    name: str
    size: str
    hrf: dict | None
    model: dict


def load_features(
    corpus: str,
    root: str | Path,
    cache_dir: str | Path,
    params: FeatureParams | None = None,
    progress: bool = True,
    folds_file: str | Path | None = None,
) -> tuple[np.ndarray, pd.DataFrame, FeatureParams]:
    """Manifest and cached features of a corpus (bad files reported and skipped).

    With ``folds_file``, the fold file is checked against the manifest *before* any feature is
    computed (unknown speakers, a speaker in two folds or in none, an empty fold).
    """
    params = params or FeatureParams()
    manifest = load_corpus(corpus, root)
    if folds_file is not None:
        splits.folds_from_file(manifest, folds_file)
    feats, manifest = extract(manifest, params, cache_dir=cache_dir, progress=progress)
    return feats, manifest, params


def make_folds(
    manifest: pd.DataFrame, n_folds: int = 6, folds_file: str | Path | None = None
) -> tuple[list[splits.Split], str]:
    """The folds of an experiment and a sentence that says what they are.

    ``folds_file`` (published test speakers, :func:`data_prep.splits.read_fold_file`) wins over
    ``n_folds`` (:func:`data_prep.splits.speaker_kfold` with seed 0).
    """
    if folds_file is not None:
        ff = splits.read_fold_file(folds_file)
        about = (
            f"the {ff.n_folds} published folds of `{Path(folds_file).name}` (every speaker "
            "tested once; validation speakers drawn from each fold's training speakers)"
        )
        if ff.description:
            about += f". {ff.description}"
        return splits.predefined_folds(manifest, ff), about
    about = (
        f"speaker {n_folds}-fold cross-validation (`speaker_kfold`, seed 0; every speaker tested "
        "once)"
    )
    return splits.speaker_kfold(manifest, n_folds=n_folds, seed=0), about


def parse_variant(variant: str) -> Variant:
    """The :class:`Variant` a name asks for.

    A name is one of :data:`VARIANTS`, optionally followed by ``:KEY=VALUE,...`` options: keys
    of :class:`~keras_hrf.models.HRFConfig` (an HRF ablation, on HRF variants only) or preset
    hyper-parameters of the families (``keras_hrf.models.hyper_parameters``), e.g.
    ``light+hrf:expansion=4``, ``light+hrf:sites=ffn_in/ffn_out,factor_init=identity``,
    ``light:stem=conv1d``, ``light+hrf:stem_strides=4x2/2x2``. Values: numbers, ``true`` /
    ``false``, ``/`` separates list items, ``AxB`` is a pair of integers. HRF options are checked
    by building the HRFConfig and model keys against the families, so a typo is an error before
    any training starts (whether a family has the key is checked when its runs are configured).

    Raises:
        ValueError: Unknown base name, HRF options on a variant without HRF, a malformed or
            unknown option.
    """
    from keras_hrf import models
    from keras_hrf.models.hrf_config import HRFConfig

    name, _, options = variant.partition(":")
    if name not in VARIANTS:
        raise ValueError(
            f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}, optionally with "
            "options, e.g. light+hrf:expansion=4 or light:stem=conv1d"
        )
    size, hrf = VARIANTS[name]
    hrf = None if hrf is None else dict(hrf)
    model: dict = {}
    hrf_keys = {f.name for f in dataclasses.fields(HRFConfig)}
    model_keys = set().union(*(models.hyper_parameters(f) for f in models.FAMILIES))
    for item in options.split(",") if options else []:
        key, eq, value = item.partition("=")
        if not eq or not key or not value:
            raise ValueError(f"variant {variant!r}: expected KEY=VALUE options, got {item!r}")
        if key in hrf_keys:
            if hrf is None:
                raise ValueError(
                    f"variant {variant!r}: {name!r} has no HRF layers to set {key!r} on"
                )
            hrf[key] = _option_value(key, value)
        elif key in model_keys:
            model[key] = _option_value(key, value)
        else:
            raise ValueError(
                f"variant {variant!r}: unknown option {key!r}; HRF options: "
                f"{', '.join(sorted(hrf_keys))}; model options: {', '.join(sorted(model_keys))}"
            )
    if hrf:
        HRFConfig.from_any(hrf)  # validates values now, not after hours of other runs
    return Variant(variant, size, hrf, model)


def _option_value(key: str, value: str):
    if "/" in value or key == "sites":
        return [_scalar(v) for v in value.split("/")]
    return _scalar(value)


def _scalar(value: str):
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if re.fullmatch(r"\d+x\d+", value):
        return [int(v) for v in value.split("x")]
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def variant_dirname(variant: str) -> str:
    """Folder name of a variant's runs (``light+hrf:expansion=4`` -> ``light_hrf_expansion-4``)."""
    table = str.maketrans({"+": "_", ":": "_", ",": "_", "=": "-", "/": "-"})
    return variant.translate(table)


def _variant_config(base: TrainConfig, variant: str) -> TrainConfig:
    """``base`` for one variant; HRF options and model overrides of ``base`` (e.g.
    ``--hrf-expansion``) apply to every variant, the variant's own options on top."""
    v = parse_variant(variant)
    hrf = v.hrf
    if hrf is not None and base.hrf:
        hrf = {**base.hrf, **hrf}
    overrides = {**base.model_overrides, **v.model}
    return dataclasses.replace(base, size=v.size, hrf=hrf, model_overrides=overrides)


def _row(family: str, variant: str, run_dir: Path) -> dict:
    m = json.loads((run_dir / "metrics.json").read_text())
    int8 = m.get("int8", {})
    return {
        "family": family,
        "variant": variant,
        "run": run_dir.name,
        "wa": m["test"]["wa"],
        "ua": m["test"]["ua"],
        "macro_f1": m["test"]["macro_f1"],
        "val_ua": m["val"]["ua"],
        "merged_ua": m["test_merged"]["ua"],
        "merge_max_abs_diff": m["merge_max_abs_diff"],
        "params_train": m["params_train"],
        "params_deployed": m["params_deployed"],
        "macs_deployed": m["macs_deployed"],
        "int8_ua": int8.get("test", {}).get("ua"),
        "int8_agreement": int8.get("agreement_with_float"),
        "flatbuffer_bytes": int8.get("flatbuffer_bytes"),
        "arena_bytes": int8.get("arena_recommended"),
        "seconds": m["seconds"],
        "path": str(run_dir),
    }


#: TrainConfig fields that the protocol paragraph of a report states.
_PROTOCOL_FIELDS = (
    "epochs",
    "patience",
    "batch_size",
    "learning_rate",
    "schedule",
    "warmup_epochs",
    "weight_decay",
    "label_smoothing",
    "time_masks",
    "time_mask_max",
    "freq_masks",
    "freq_mask_max",
    "class_balance",
    "exclude_floor",
)


def protocol_values(run_dirs) -> dict[str, dict]:
    """``{field: {value: number of runs}}`` of the training settings the runs were made with,
    read from each run's ``config.json`` (so a report describes the runs, not its own
    command line)."""
    out: dict[str, dict] = {f: {} for f in _PROTOCOL_FIELDS}
    for run_dir in run_dirs:
        train = json.loads((Path(run_dir) / "config.json").read_text())["train"]
        for f in _PROTOCOL_FIELDS:
            value = train.get(f, getattr(TrainConfig, f, None))
            out[f][value] = out[f].get(value, 0) + 1
    return out


def protocol_text(values: dict[str, dict]) -> str:
    """The protocol paragraph for :func:`protocol_values`; a setting that differs between runs is
    given with its run counts."""

    def v(field: str) -> str:
        seen = values.get(field) or {}
        if len(seen) == 1:
            return str(next(iter(seen)))
        return "/".join(f"{k} ({n} runs)" for k, n in sorted(seen.items(), key=str)) or "-"

    return (
        f"Training (from the runs' config.json): up to {v('epochs')} epochs, early stopping on "
        f"validation UA (patience {v('patience')}, best weights restored), batch "
        f"{v('batch_size')}, learning rate {v('learning_rate')} ({v('schedule')}, warm-up "
        f"{v('warmup_epochs')} epochs), weight decay {v('weight_decay')}, label smoothing "
        f"{v('label_smoothing')}, SpecAugment {v('time_masks')}x time <= {v('time_mask_max')} "
        f"frames and {v('freq_masks')}x frequency <= {v('freq_mask_max')} bands, class balance: "
        f"{v('class_balance')}, normaliser without the log floor: {v('exclude_floor')}. "
        "Validation speakers are taken from the training folds. int8: full-integer post-training "
        "quantization of the merged model, evaluated with LiteRT."
    )


def demo(
    out: str | Path,
    *,
    quick: bool = False,
    corpus: str | None = None,
    root: str | Path | None = None,
    family: str = "conv_transformer",
    seed: int = 0,
    epochs: int | None = None,
    model_overrides: dict | None = None,
    qat: bool = False,
    qat_epochs: int = 0,
    progress: bool = True,
    folds_file: str | Path | None = None,
) -> pd.DataFrame:
    """Run the main job and write ``out/REPORT.md``; returns the comparison table.

    Args:
        out: Output folder (data, cache, one run folder per variant, the report).
        quick: Smaller corpus, fewer epochs and no large model (about a minute on 2 cores).
        corpus: Corpus name; ``None`` generates the built-in synthetic corpus into ``out/data``.
        root: The corpus root (required with ``corpus``).
        family: Model family.
        seed: Seed of data generation, split, initialisation and training.
        epochs: Override the number of epochs.
        model_overrides: Preset hyper-parameters to change for every variant (e.g. a tiny
            ``{"d_model": 16, "num_blocks": 1}`` for a smoke run).
        qat: Train the HRF variant quantization-aware (``light+qhrf``, see ``VARIANTS``).
        qat_epochs: Quantization-aware fine-tuning epochs of every merged model before export
            (:mod:`keras_hrf.qat`); the report's int8 columns are then those of the tuned model.
        folds_file: Published folds of ``corpus`` (:func:`data_prep.splits.read_fold_file`);
            the demo tests on the first.
    """
    out = Path(out)
    if corpus is None:
        root = out / "data"
        if not (root / "synthetic.json").is_file():
            synthetic.generate(
                root, speakers=6 if quick else 8, per_class=8 if quick else 12, seed=seed
            )
        corpus = "synthetic"
    elif root is None:
        raise ValueError(f"--root is required with --corpus {corpus}")
    if folds_file is not None and corpus == "synthetic" and root == out / "data":
        raise ValueError("--folds-file needs --corpus and --root (the folds name its speakers)")
    feats, manifest, params = load_features(
        corpus, root, out / "cache", progress=progress, folds_file=folds_file
    )
    if folds_file is not None:
        split = splits.folds_from_file(manifest, folds_file, seed=seed)[0]
    else:
        n_speakers = manifest["speaker"].nunique()
        n_folds = max(3, min(6, n_speakers // 2))
        split = splits.speaker_kfold(manifest, n_folds=n_folds, seed=seed)[0]
    base = TrainConfig(
        family=family,
        epochs=epochs or (12 if quick else 40),
        patience=0 if quick else 15,
        seed=seed,
        model_overrides=dict(model_overrides or {}),
        qat_epochs=qat_epochs,
    )
    variants = ["light", "light+qhrf" if qat else "light+hrf"] + ([] if quick else ["large"])
    rows = []
    for variant in variants:
        cfg = _variant_config(base, variant)
        result = fit(cfg, feats, manifest, split, feature_params=params, progress=progress)
        run_dir = save_run(result, out / "runs" / variant_dirname(variant))
        rows.append(_row(family, variant, run_dir))
    table = pd.DataFrame(rows)
    reports.atomic_write_text(out / "REPORT.md", demo_report(table, corpus, manifest, split, base))
    return table


def demo_report(table: pd.DataFrame, corpus: str, manifest, split, base: TrainConfig) -> str:
    """The demo's comparison report."""
    p = reports.pct
    rows = [
        [
            r.variant,
            p(r.wa),
            p(r.ua),
            p(r.macro_f1),
            p(r.int8_ua),
            p(r.int8_agreement),
            f"{r.params_train:,} / {r.params_deployed:,}",
            f"{r.macs_deployed:,}",
            f"{r.flatbuffer_bytes:,}",
            f"{r.arena_bytes:,}",
            f"{r.merge_max_abs_diff:.1e}",
        ]
        for r in table.itertuples()
    ]
    return "\n".join(
        [
            f"# keras-hrf demo: {base.family} on {corpus}",
            "",
            f"{len(manifest)} utterances, {manifest['speaker'].nunique()} speakers, "
            f"{manifest['emotion'].nunique()} classes; speaker-independent split: "
            f"{len(split.train)} train / {len(split.val)} validation / {len(split.test)} test "
            f"utterances. Up to {base.epochs} epochs, seed {base.seed}. Test-split figures.",
            "",
            reports.markdown_table(
                [
                    "variant",
                    "WA %",
                    "UA %",
                    "macro-F1 %",
                    "int8 UA %",
                    "int8 = float %",
                    "params train / deployed",
                    "MACs deployed",
                    "int8 bytes",
                    "TFLM arena",
                    "merge max diff",
                ],
                rows,
            ),
            "",
            "`params deployed` is the merged (deHRF) model: HRF costs nothing on the device. "
            "`int8 = float` is the share of test utterances on which the int8 model (LiteRT) "
            "predicts the float model's class. Per-run details: `runs/<variant>/REPORT.md`.",
            "",
        ]
    )


def reproduce(
    corpus: str,
    root: str | Path,
    out: str | Path,
    *,
    families: Sequence[str] = ("conv_transformer", "conformer", "speechformer"),
    variants: Sequence[str] = ("light", "light+hrf", "large"),
    seeds: Sequence[int] = (0, 1, 2),
    n_folds: int = 6,
    folds: Sequence[int] | None = None,
    base: TrainConfig | None = None,
    cache_dir: str | Path | None = None,
    export: bool = True,
    command: str | None = None,
    report_only: bool = False,
    progress: bool = True,
    folds_file: str | Path | None = None,
) -> pd.DataFrame:
    """The paper's comparison over speaker folds x seeds; resumable.

    Every (family, variant, fold, seed) run is saved to
    ``out/runs/<family>/<variant>/fold<F>_seed<S>``; a run whose folder exists is skipped, so
    the experiment can be stopped and resumed. Writes ``out/REPORT.md``, ``out/runs.csv`` and
    ``out/summary.json``. Features are cached in ``cache_dir`` (default ``out/cache``).
    With ``export`` (default) every run also gets its int8 device artefacts and int8 test
    figures; runs saved earlier without them are back-filled on the next call.

    The loop runs (family, fold, seed, variant) in that order, so paired runs finish together.
    ``command`` (the command line that ran it) is quoted in the report, and ``out/NOTES.md``
    (hand-written notes), if present, is appended to it. ``report_only``
    trains and exports nothing: it summarises the runs that have finished (e.g. while another
    process is still running the rest). ``folds_file`` replaces the ``n_folds`` speaker folds by
    published ones (:func:`make_folds`); it is checked before any feature is computed.
    """
    out = Path(out)
    base = base or TrainConfig()
    configs = {}
    for variant in variants:
        for family in families:
            # A typo or a key a family lacks fails now, not after hours of other runs.
            cfg = dataclasses.replace(_variant_config(base, variant), family=family)
            models.preset_params(cfg.family, cfg.size, **cfg.model_overrides)
            configs[family, variant] = cfg
    cache = out / "cache" if cache_dir is None else cache_dir
    feats, manifest, params = load_features(
        corpus, root, cache, progress=progress, folds_file=folds_file
    )
    all_splits, folds_about = make_folds(manifest, n_folds, folds_file)
    n_folds = len(all_splits)
    fold_ids = list(range(n_folds)) if folds is None else list(folds)
    bad = [f for f in fold_ids if not 0 <= f < n_folds]
    if bad:
        raise ValueError(f"fold(s) {bad} do not exist: the experiment has folds 0..{n_folds - 1}")
    rows = []
    y_all, _ = encode_labels(manifest["emotion"])
    for family, fold, seed, variant in itertools.product(families, fold_ids, seeds, variants):
        run_dir = out / "runs" / family / variant_dirname(variant) / f"fold{fold}_seed{seed}"
        split = all_splits[fold]
        if report_only and not (run_dir / "metrics.json").is_file():
            continue
        if not (run_dir / "metrics.json").is_file():
            cfg = dataclasses.replace(configs[family, variant], seed=seed)
            result = fit(cfg, feats, manifest, split, feature_params=params, progress=progress)
            save_run(result, run_dir, export=export)
        elif (
            export
            and not report_only
            and "int8" not in json.loads((run_dir / "metrics.json").read_text())
        ):
            add_device_export(run_dir, feats[split.test], y_all[split.test])
        row = _row(family, variant, run_dir)
        row.update(fold=fold, seed=seed)
        rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(out / "runs.csv", index=False)
    summary = summarize(table)
    reports.atomic_write_json(out / "summary.json", summary)
    report = reproduce_report(
        summary, corpus, n_folds, base, command, folds_about=folds_about, runs=table
    )
    if (out / "NOTES.md").is_file():
        # Hand-written notes (how the runs were made, the reading of the numbers) are kept in
        # NOTES.md and appended, so regenerating the report never loses them.
        report += "\n" + (out / "NOTES.md").read_text()
    reports.atomic_write_text(out / "REPORT.md", report)
    return table


def summarize(table: pd.DataFrame) -> dict:
    """Mean ± std per (family, variant) and the paired comparisons against light.

    Every variant is paired with ``light`` by (fold, seed); HRF option variants (an ablation,
    see :func:`parse_variant`) are also paired with the default ``light+hrf``.
    """
    groups = {}
    for (family, variant), g in table.groupby(["family", "variant"], sort=False):
        entry = {"runs": int(len(g))}
        for col in ("wa", "ua", "macro_f1", "int8_ua", "int8_agreement"):
            vals = g[col].dropna().astype(float)
            entry[col] = {
                "mean": float(vals.mean()) if len(vals) else None,
                "std": float(vals.std(ddof=1)) if len(vals) > 1 else None,
            }
        for col in (
            "params_train",
            "params_deployed",
            "macs_deployed",
            "flatbuffer_bytes",
            "arena_bytes",
        ):
            entry[col] = None if g[col].isna().all() else int(g[col].iloc[0])
        groups[f"{family}/{variant}"] = entry
    paired: dict = {}
    paired_q: dict = {}
    ablation: dict = {}
    ua = {
        key: g.set_index(["fold", "seed"])["ua"]
        for key, g in table.groupby(["family", "variant"], sort=False)
    }
    for (family, variant), b in ua.items():
        light = ua.get((family, "light"))
        if variant == "light" or light is None:
            continue
        entry = paired_difference(light, b)
        if entry is None:
            continue
        if variant == "light+hrf":
            paired[family] = entry
        elif variant == "light+qhrf":
            paired_q[family] = entry
        v = parse_variant(variant)
        default = ua.get((family, "light+hrf"))
        is_option = v.size == "light" and v.hrf is not None and variant != "light+hrf"
        vs_default = paired_difference(default, b) if is_option and default is not None else None
        ablation.setdefault(family, {})[variant] = {**entry, "vs_default": vs_default}
    # Several families (and many ablation rows) are tested at once: a p below 0.05 in one of
    # them is expected by chance, so each table also carries Holm's family-wise adjustment.
    for table_ in (paired, paired_q):
        _add_holm(table_.values())
    _add_holm([p for variants in ablation.values() for p in variants.values()])
    for variant, table_ in (("light+hrf", paired), ("light+qhrf", paired_q)):
        if len(table_) > 1:
            table_[ALL_FAMILIES] = _pooled(ua, variant)
    out = {"groups": groups, "paired_ua_hrf_minus_light": paired}
    if paired_q:
        out["paired_ua_qhrf_minus_light"] = paired_q
    if any(set(v) - {"light+hrf", "light+qhrf"} for v in ablation.values()):
        out["ablation_ua_minus_light"] = ablation
    return out


#: Key of the pooled row of a paired table: every family's (fold, seed) pairs tested together.
ALL_FAMILIES = "all families"


def _pooled(ua: dict, variant: str) -> dict | None:
    """``variant - light`` over the pairs of every family together (pairs keyed by family)."""
    light, other = [], []
    for (family, v), series in ua.items():
        if v in ("light", variant):
            s = series.copy()
            s.index = pd.MultiIndex.from_tuples([(family, *i) for i in s.index])
            (light if v == "light" else other).append(s)
    return paired_difference(pd.concat(light), pd.concat(other))


def holm_adjust(pvalues: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of p-values for testing them together (``None`` kept).

    The adjusted p of the i-th smallest of m p-values is ``max_{j <= i} min(1, (m - j + 1) p_j)``;
    rejecting where the adjusted p is below alpha keeps the family-wise error rate at alpha.
    """
    present = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(present)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def _add_holm(entries) -> None:
    """Set ``holm_p`` and ``tests`` (how many were tested together) on paired entries."""
    entries = list(entries)
    pvalues = [e["wilcoxon_p"] for e in entries]
    tests = sum(p is not None for p in pvalues)
    for entry, adj in zip(entries, holm_adjust(pvalues), strict=True):
        entry["holm_p"], entry["tests"] = adj, tests


def paired_difference(a: pd.Series, b: pd.Series) -> dict | None:
    """``b - a`` on the (fold, seed) pairs both have: mean, std, wins/losses, Wilcoxon p.

    Args:
        a, b: UA (fraction) indexed by ``(fold, seed)``.

    Returns:
        ``None`` when no pair is common; the Wilcoxon signed-rank p-value needs >= 5 pairs with
        at least one non-zero difference (``None`` otherwise).
    """
    from scipy import stats

    common = a.index.intersection(b.index)
    if len(common) == 0:
        return None
    d = (b.loc[common] - a.loc[common]).to_numpy(dtype=float)
    entry = {
        "pairs": int(d.size),
        "mean_diff": float(d.mean()),
        "std_diff": float(d.std(ddof=1)) if d.size > 1 else None,
        "wins": int((d > 0).sum()),
        "losses": int((d < 0).sum()),
        "ties": int((d == 0).sum()),
        "wilcoxon_p": None,
    }
    if d.size >= 5 and np.any(d != 0):
        entry["wilcoxon_p"] = float(stats.wilcoxon(d).pvalue)
    return entry


def verdict(p: dict) -> str:
    """One honest sentence on a paired light+HRF - light comparison.

    With ``holm_p`` in ``p`` (the comparison was one of several families tested together), a
    p below 0.05 is only called an effect when it survives Holm's adjustment.
    """
    diff = 100 * p["mean_diff"]
    if p["wilcoxon_p"] is None:
        n = p["pairs"]
        return f"mean difference {diff:+.2f} UA points over {n} pair(s): too few pairs to test"
    if p["wilcoxon_p"] < 0.05:
        word = "helped" if diff > 0 else "hurt"
        said = (
            f"{diff:+.2f} UA points on average, {p['wins']} wins / {p['losses']} "
            f"losses, Wilcoxon p = {p['wilcoxon_p']:.3f} (< 0.05)"
        )
        holm, tests = p.get("holm_p"), p.get("tests", 1)
        if holm is not None and tests > 1:
            if holm >= 0.05:
                return (
                    f"HRF nominally {word}: {said}, but not after Holm's adjustment for the "
                    f"{tests} families tested (adjusted p = {holm:.3f}): not conclusive"
                )
            return f"HRF {word}: {said}; Holm-adjusted for {tests} families p = {holm:.3f}"
        return f"HRF {word}: {said}"
    return (
        f"no detectable effect: {diff:+.2f} UA points on average, {p['wins']} wins / "
        f"{p['losses']} losses, Wilcoxon p = {p['wilcoxon_p']:.3f} (not below 0.05), i.e. within "
        "the run-to-run noise"
    )


def reproduce_report(
    summary: dict,
    corpus: str,
    n_folds: int,
    base: TrainConfig | None = None,
    command: str | None = None,
    folds_about: str | None = None,
    runs: pd.DataFrame | None = None,
) -> str:
    """``REPORT.md`` of a reproduction.

    The protocol paragraph is read from the ``config.json`` of the summarised ``runs`` (with a
    ``path`` column); without them, from ``base``.
    """

    def ms(v):
        if v is None or v["mean"] is None:
            return "-"
        sd = "" if v["std"] is None else f" ± {100 * v['std']:.1f}"
        return f"{100 * v['mean']:.1f}{sd}"

    rows = [
        [
            key,
            g["runs"],
            ms(g["wa"]),
            ms(g["ua"]),
            ms(g["macro_f1"]),
            ms(g["int8_ua"]),
            ms(g["int8_agreement"]),
            f"{g['params_train']:,} / {g['params_deployed']:,}",
            f"{g['macs_deployed']:,}",
            "-" if g["flatbuffer_bytes"] is None else g["flatbuffer_bytes"],
            "-" if g["arena_bytes"] is None else g["arena_bytes"],
        ]
        for key, g in summary["groups"].items()
    ]

    def paired_cells(p: dict) -> list:
        return [
            p["pairs"],
            f"{100 * p['mean_diff']:+.2f}",
            "-" if p["std_diff"] is None else f"{100 * p['std_diff']:.2f}",
            f"{p['wins']}/{p['losses']}/{p['ties']}",
            "-" if p["wilcoxon_p"] is None else f"{p['wilcoxon_p']:.3f}",
            "-" if p.get("holm_p") is None else f"{p['holm_p']:.3f}",
        ]

    def paired_rows(paired: dict) -> list[list]:
        return [[fam, *paired_cells(p)] for fam, p in paired.items()]

    paired_head = [
        "family",
        "pairs",
        "mean diff",
        "std diff",
        "wins/losses/ties",
        "Wilcoxon p",
        "Holm p",
    ]
    prow = paired_rows(summary["paired_ua_hrf_minus_light"])
    qhrf = summary.get("paired_ua_qhrf_minus_light", {})
    qhrf_section = (
        [
            "## Paired: quantization-aware light+HRF (light+qhrf) minus light, test UA (points)",
            "",
            *[f"- **{fam}**: {verdict(p)}." for fam, p in qhrf.items()],
            "",
            reports.markdown_table(paired_head, paired_rows(qhrf)),
            "",
        ]
        if qhrf
        else []
    )
    ablation = summary.get("ablation_ua_minus_light", {})
    ablation_rows = [
        [
            fam,
            variant,
            *paired_cells(p),
            "-" if not p["vs_default"] else f"{100 * p['vs_default']['mean_diff']:+.2f}",
            "-" if not p["vs_default"] else f"{p['vs_default']['pairs']}",
        ]
        for fam, variants in ablation.items()
        for variant, p in variants.items()
    ]
    ablation_section = (
        [
            "## Every variant minus light (HRF ablation, large): test UA (points), paired by "
            "(fold, seed)",
            "",
            "Each variant against the plain light model on the runs both have; HRF option "
            "variants also against the default light+HRF on the runs both have (`vs light+hrf`). "
            "Options follow the `:` of the variant name (keys of `HRFConfig`). `Holm p` adjusts "
            "the Wilcoxon p-values for all the comparisons of this table tested together.",
            "",
            reports.markdown_table(
                ["family", "variant", *paired_head[1:], "vs light+hrf", "pairs"], ablation_rows
            ),
            "",
        ]
        if ablation
        else []
    )
    if runs is not None and len(runs) and "path" in runs:
        protocol = protocol_text(protocol_values(runs["path"]))
    elif base is not None:
        protocol = protocol_text({f: {getattr(base, f): 1} for f in _PROTOCOL_FIELDS})
    else:
        protocol = None
    about = folds_about or f"speaker {n_folds}-fold cross-validation (every speaker tested once)"
    return "\n".join(
        [
            f"# Reproduction on {corpus}: light vs light+HRF vs large",
            "",
            f"{about[0].upper() + about[1:]}; x seeds; test figures as mean ± std over runs (%).",
            "",
            reports.markdown_table(
                [
                    "family/variant",
                    "runs",
                    "WA",
                    "UA",
                    "macro-F1",
                    "int8 UA",
                    "int8 = float",
                    "params train / deployed",
                    "MACs",
                    "int8 bytes",
                    "arena",
                ],
                rows,
            ),
            "",
            "## Paired: light+HRF minus light, test UA (points), paired by (fold, seed)",
            "",
            *[
                f"- **{fam}**: {verdict(p)}."
                for fam, p in summary["paired_ua_hrf_minus_light"].items()
            ],
            "",
            reports.markdown_table(paired_head, prow),
            "",
            *(
                [
                    "`Holm p`: the families' Wilcoxon p-values adjusted for being tested "
                    f"together (Holm); `{ALL_FAMILIES}`: every family's pairs in one test.",
                    "",
                ]
                if len(summary["paired_ua_hrf_minus_light"]) > 1
                else []
            ),
            *qhrf_section,
            *ablation_section,
            "## Protocol",
            "",
            *([protocol, ""] if protocol else []),
            *([f"Command: `{command}`", ""] if command else []),
        ]
    )
