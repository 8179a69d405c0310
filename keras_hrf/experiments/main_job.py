"""The main job (``keras-hrf demo``): corpus (the built-in synthetic one by default) -> features ->
train light, light+HRF (and large) -> merge and verify -> int8 -> TFLM check -> one report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_prep import load_features, splits, synthetic
from data_prep.prepare import DataSpec
from keras_hrf import reports
from keras_hrf.experiments.reproduction import data_about, make_folds, run_row
from keras_hrf.experiments.variants import variant_config, variant_dirname
from keras_hrf.export.runs import save_run
from keras_hrf.training import TrainConfig, fit


def demo(
    out: str | Path,
    *,
    quick: bool = False,
    corpus: str | DataSpec | None = None,
    root: str | Path | None = None,
    family: str = "ds_cnn",
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
        corpus: Corpus name, or a :class:`data_prep.prepare.DataSpec` (several corpora, a label
            map); ``None`` generates the built-in synthetic corpus into ``out/data``.
        root: The corpus root (required with a corpus name).
        family: Model family; default ``ds_cnn``, the best deployable light model per byte on
            the RAVDESS EmoBox folds (``results/ravdess/REPORT.md``).
        seed: Seed of data generation, split, initialisation and training.
        epochs: Override the number of epochs.
        model_overrides: Preset hyper-parameters to change for every variant (e.g. a tiny
            ``{"d_model": 16, "num_blocks": 1}`` for a smoke run).
        qat: Train the HRF variant quantization-aware (``light+qhrf``, see ``VARIANTS``).
        qat_epochs: Quantization-aware fine-tuning epochs of every merged model before export
            (:func:`keras_hrf.training.fine_tune`); the report's int8 columns are then those of
            the tuned model.
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
        if folds_file is not None:
            raise ValueError("--folds-file needs --corpus and --root (the folds name speakers)")
    elif root is None and not isinstance(corpus, DataSpec):
        raise ValueError(f"--root is required with --corpus {corpus}")
    spec = corpus if isinstance(corpus, DataSpec) else DataSpec.single(corpus, root)
    feats, manifest, params = load_features(
        spec, cache_dir=out / "cache", progress=progress, folds_file=folds_file
    )
    if folds_file is not None or spec.multi:
        split = make_folds(manifest, 6, folds_file, spec)[0][0]
    else:
        n_speakers = manifest["speaker"].nunique()
        n_folds = max(3, min(6, n_speakers // 2))
        split = splits.speaker_kfold(manifest, n_folds=n_folds, seed=seed)[0]
    base = TrainConfig(
        family=family,
        # ds_cnn (the default family) is still at chance after 12 epochs of the quick corpus
        # (UA 25 % of 4 classes; 51.6 % after 24, measured): the Transformers learn sooner.
        epochs=epochs or (24 if quick else 40),
        patience=0 if quick else 15,
        seed=seed,
        model_overrides=dict(model_overrides or {}),
        qat_epochs=qat_epochs,
    )
    variants = ["light", "light+qhrf" if qat else "light+hrf"] + ([] if quick else ["large"])
    rows = []
    for variant in variants:
        cfg = variant_config(base, variant)
        result = fit(
            cfg,
            feats,
            manifest,
            split,
            feature_params=params,
            progress=progress,
            data=spec.to_dict(),
        )
        run_dir = save_run(result, out / "runs" / variant_dirname(variant))
        rows.append(run_row(family, variant, run_dir))
    table = pd.DataFrame(rows)
    report = demo_report(table, data_about(manifest), manifest, split, base)
    reports.atomic_write_text(out / "REPORT.md", report)
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
