"""The paper's comparison (``keras-hrf reproduce``): light vs light+HRF vs large (and any other
variants) over speaker folds x seeds, every run saved in its own folder (so a restart skips
finished runs), then a summary with mean ± std and paired tests against light."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from data_prep import encode_labels, load_features, splits
from data_prep.prepare import DataSpec, fold_corpus_rows
from keras_hrf import models, reports
from keras_hrf.experiments.executors import GridData, GridRun, LocalExecutor
from keras_hrf.experiments.statistics import (
    ALL_FAMILIES,
    _add_holm,
    _pooled,
    paired_difference,
    verdict,
)
from keras_hrf.experiments.variants import (
    TEACHER_VARIANT,
    parse_variant,
    variant_config,
    variant_dirname,
)
from keras_hrf.export.runs import add_device_export
from keras_hrf.training import TrainConfig, read_metrics

#: How an experiment splits its data: speaker folds, or each corpus tested once.
PROTOCOLS = ("folds", "corpus")


def make_folds(
    manifest: pd.DataFrame,
    n_folds: int = 6,
    folds_file: str | Path | None = None,
    spec: DataSpec | None = None,
    protocol: str = "folds",
) -> tuple[list[splits.Split], str]:
    """The folds of an experiment and a sentence that says what they are.

    ``folds_file`` (published test speakers, :func:`data_prep.splits.read_fold_file`) wins over
    ``n_folds`` (:func:`data_prep.splits.speaker_kfold` with seed 0). With several corpora the
    folds are made of the first corpus' speakers and every other corpus is in every training
    part; ``protocol="corpus"`` tests each corpus once instead (leave-one-corpus-out).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if protocol == "corpus":
        folds = splits.leave_one_corpus_out(manifest)
        names = ", ".join(s.name.removeprefix("corpus_") for s in folds)
        return folds, f"leave-one-corpus-out: each corpus tested once ({names})"
    if spec is not None and spec.multi:
        first = spec.corpora[0].name
        positions = np.flatnonzero(manifest["corpus"].to_numpy() == first)
        others = np.flatnonzero(manifest["corpus"].to_numpy() != first)
        inner, about = make_folds(fold_corpus_rows(manifest, spec), n_folds, folds_file)
        extra = manifest["speaker"].iloc[others].astype(str)
        folds = [splits.embed_split(s, positions, first + "/", others, extra) for s in inner]
        rest = ", ".join(c.name for c in spec.corpora[1:])
        return folds, f"{about}, on the {first} speakers; {rest} only add training data"
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


def data_about(manifest: pd.DataFrame) -> str:
    """The corpora of a manifest with their utterance counts, for report titles."""
    counts = manifest["corpus"].value_counts(sort=False)
    return ", ".join(f"{k} ({v} utterances)" for k, v in counts.items())


def run_row(family: str, variant: str, run_dir: Path) -> dict:
    """One row of ``runs.csv``: a finished run's headline figures (from its RunMetrics)."""
    m = read_metrics(run_dir)
    return {
        "family": family,
        "variant": variant,
        "run": run_dir.name,
        "wa": m.test.wa,
        "ua": m.test.ua,
        "macro_f1": m.test.macro_f1,
        "val_ua": m.val.ua,
        "merged_ua": m.test_merged.ua,
        "merge_max_abs_diff": m.merge_max_abs_diff,
        "params_train": m.params_train,
        "params_deployed": m.params_deployed,
        "macs_deployed": m.macs_deployed,
        "int8_ua": m.int8_ua,
        "int8_agreement": m.int8_agreement,
        "flatbuffer_bytes": m.flatbuffer_bytes,
        "arena_bytes": m.arena_bytes,
        "best_epoch": m.best_epoch,
        "epochs_run": m.epochs_run,
        "seconds": m.seconds,
        "path": str(run_dir),
    }


#: TrainConfig fields that the protocol paragraph of a report states.
_PROTOCOL_FIELDS = (
    "epochs",
    "selection",
    "patience",
    "ema",
    "mixup",
    "time_shift",
    "kd_weight",
    "kd_temperature",
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

    selection = values.get("selection") or {}
    if set(selection) == {"last"}:
        kept = (
            f"{v('epochs')} epochs, the weights at the end of the schedule kept (no early "
            "stopping: one lucky epoch on a few validation speakers does not pick them)"
        )
    elif set(selection) == {"best"}:
        kept = (
            f"up to {v('epochs')} epochs, early stopping on validation UA (patience "
            f"{v('patience')}, best weights restored)"
        )
    else:
        kept = f"{v('epochs')} epochs, weights kept: {v('selection')} (patience {v('patience')})"
    ema = values.get("ema") or {}
    averaged = (
        "no weight averaging"
        if set(ema) == {0.0}
        else f"an exponential moving average of the weights (decay {v('ema')} per step; "
        "BatchNorm statistics re-estimated for it) is the model evaluated and exported"
    )
    return (
        f"Training (from the runs' config.json): {kept}; {averaged}; batch "
        f"{v('batch_size')}, AdamW, learning rate {v('learning_rate')} ({v('schedule')}, "
        f"warm-up {v('warmup_epochs')} epochs), weight decay {v('weight_decay')}, label "
        f"smoothing {v('label_smoothing')}, mixup alpha {v('mixup')}, time shift <= "
        f"{v('time_shift')} frames, SpecAugment {v('time_masks')}x time <= "
        f"{v('time_mask_max')} frames and {v('freq_masks')}x frequency <= {v('freq_mask_max')} "
        f"bands, class balance: {v('class_balance')}, normaliser without the log floor: "
        f"{v('exclude_floor')}. Distilled variants (+kd) learn from the same fold and seed's "
        f"large run (weight {v('kd_weight')}, temperature {v('kd_temperature')}). Validation "
        "speakers are taken from the training folds. int8: full-integer post-training "
        "quantization of the merged model, evaluated with LiteRT."
    )


def reproduce(
    corpus: str | DataSpec,
    root: str | Path | None,
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
    protocol: str = "folds",
    executor=None,
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
    ``corpus`` may be a :class:`data_prep.prepare.DataSpec` (several corpora, a label map;
    ``root`` then None); ``protocol="corpus"`` tests each of its corpora once.
    ``executor`` trains the missing runs (:mod:`keras_hrf.experiments.executors`): default the
    local one, in this process, in the order above; a :class:`RayExecutor` fans them out over a
    cluster, and a run that fails there is reported and left out of the report.
    """
    out = Path(out)
    base = base or TrainConfig()
    configs = {}
    for variant in variants:
        for family in families:
            # A typo or a key a family lacks fails now, not after hours of other runs (a report
            # over several families leaves out the variants a family cannot have).
            cfg = dataclasses.replace(variant_config(base, variant), family=family)
            try:
                models.preset_params(cfg.family, cfg.size, **cfg.model_overrides)
            except ValueError:
                if report_only:
                    continue
                raise
            configs[family, variant] = cfg
    cache = out / "cache" if cache_dir is None else cache_dir
    spec = corpus if isinstance(corpus, DataSpec) else DataSpec.single(corpus, root)
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    feats, manifest, params = load_features(
        spec, cache_dir=cache, progress=progress, folds_file=folds_file
    )
    all_splits, folds_about = make_folds(manifest, n_folds, folds_file, spec, protocol)
    n_folds = len(all_splits)
    fold_ids = list(range(n_folds)) if folds is None else list(folds)
    bad = [f for f in fold_ids if not 0 <= f < n_folds]
    if bad:
        raise ValueError(f"fold(s) {bad} do not exist: the experiment has folds 0..{n_folds - 1}")
    y_all, _ = encode_labels(manifest["emotion"])
    grid, todo = [], []
    for family, fold, seed, variant in itertools.product(families, fold_ids, seeds, variants):
        if (family, variant) not in configs:
            continue
        run_dir = out / "runs" / family / variant_dirname(variant) / f"fold{fold}_seed{seed}"
        if report_only and not (run_dir / "metrics.json").is_file():
            continue
        grid.append((family, variant, fold, seed, run_dir))
        if not (run_dir / "metrics.json").is_file():
            teacher = None
            if parse_variant(variant).distilled:
                teacher = out / "runs" / family / TEACHER_VARIANT / f"fold{fold}_seed{seed}"
                planned = any(t.run_dir == teacher for t in todo)
                if not (planned or (teacher / "metrics.json").is_file()):
                    raise ValueError(
                        f"{variant} distils the {TEACHER_VARIANT!r} run of the same fold and seed, "
                        f"but {teacher} does not exist: list {TEACHER_VARIANT!r} before "
                        f"{variant!r} in the variants"
                    )
            cfg = dataclasses.replace(configs[family, variant], seed=seed)
            todo.append(
                GridRun(family, variant, fold, seed, cfg, run_dir, all_splits[fold], teacher)
            )
    executor = executor or LocalExecutor()
    failures = executor.run(
        todo,
        GridData(feats, manifest, params, spec.to_dict()),
        export=export,
        progress=progress,
    )
    failed = {f.run.run_dir for f in failures}
    for f in failures:
        print(f"reproduce: {f.run.name} failed: {f.error} (see {f.run.run_dir / 'FAILED.md'})")
    rows = []
    for family, variant, fold, seed, run_dir in grid:
        if run_dir in failed:
            continue
        if export and not report_only and read_metrics(run_dir).int8 is None:
            add_device_export(run_dir, feats[all_splits[fold].test], y_all[all_splits[fold].test])
        row = run_row(family, variant, run_dir)
        row.update(fold=fold, seed=seed)
        rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(out / "runs.csv", index=False)
    summary = summarize(table)
    reports.atomic_write_json(out / "summary.json", summary)
    report = reproduce_report(
        summary, data_about(manifest), n_folds, base, command, folds_about=folds_about, runs=table
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
        # Seed-to-seed noise: the std of test UA over seeds of one fold, averaged over folds.
        per_fold = g.groupby("fold")["ua"].agg(lambda v: v.std(ddof=1) if len(v) > 1 else None)
        per_fold = per_fold.dropna()
        entry["seed_std"] = float(per_fold.mean()) if len(per_fold) else None
        entry["seeds"] = int(g["seed"].nunique())
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
    # The paper's claim: does a light variant come within 1 point of large?
    vs_large: dict = {}
    for (family, variant), b in ua.items():
        large = ua.get((family, "large"))
        if large is None or not parse_variant(variant).size == "light":
            continue
        entry = paired_difference(large, b)
        if entry is not None:
            vs_large.setdefault(family, {})[variant] = entry
    out = {"groups": groups, "paired_ua_hrf_minus_light": paired}
    if vs_large:
        out["paired_ua_minus_large"] = vs_large
    if paired_q:
        out["paired_ua_qhrf_minus_light"] = paired_q
    if any(set(v) - {"light+hrf", "light+qhrf"} for v in ablation.values()):
        out["ablation_ua_minus_light"] = ablation
    return out


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
            f"{g.get('seeds', '-')}"
            + ("" if g.get("seed_std") is None else f" ({100 * g['seed_std']:.1f})"),
        ]
        for key, g in summary["groups"].items()
    ]

    def paired_cells(p: dict) -> list:
        ci = p.get("ci95")
        return [
            p["pairs"],
            f"{100 * p['mean_diff']:+.2f}",
            "-" if ci is None else f"[{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]",
            "-" if p["std_diff"] is None else f"{100 * p['std_diff']:.2f}",
            "-" if p.get("pairs_for_1.5_points") is None else p["pairs_for_1.5_points"],
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
        "95 % CI",
        "std diff",
        "pairs for 1.5",
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
    vs_large = summary.get("paired_ua_minus_large", {})
    large_rows = [
        [
            fam,
            variant,
            *paired_cells(p),
            "yes" if p["mean_diff"] >= -0.01 else "no",
        ]
        for fam, variants in vs_large.items()
        for variant, p in variants.items()
    ]
    large_section = (
        [
            "## Light variants minus large: test UA (points), paired by (fold, seed)",
            "",
            "The paper's claim: a light model trained with HRF (and distilled from large) comes "
            "within 1 point of large. `within 1` is the mean difference >= -1 point; the 95 % "
            "interval says how sure that is.",
            "",
            reports.markdown_table(["family", "variant", *paired_head[1:], "within 1"], large_rows),
            "",
        ]
        if vs_large
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
                    "seeds (seed std)",
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
            "`95 % CI`: t-interval of the mean paired difference; `pairs for 1.5`: pairs a "
            "paired t-test needs to see a 1.5-point effect with power 0.8 (alpha 0.05) at this "
            "std; `seeds (seed std)`: seeds per fold and the mean over folds of the seed-to-seed "
            "std of test UA.",
            "",
            *qhrf_section,
            *large_section,
            *ablation_section,
            "## Protocol",
            "",
            *([protocol, ""] if protocol else []),
            *([f"Command: `{command}`", ""] if command else []),
        ]
    )
