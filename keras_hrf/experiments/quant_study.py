"""Does int8 lose anything? PTQ vs QAT vs quantization-aware HRF on the reproduction's folds.

Reads the run folders that :func:`keras_hrf.experiments.reproduce` wrote and compares, on the
same speaker folds and seeds, three ways to get the int8 model of a light+HRF model:

- ``ptq``: the merged model, full-int8 post-training quantization (the reproduction's own
  int8 figures, ``runs/<family>/light_hrf``);
- ``qat``: the same merged model after quantization-aware fine-tuning
  (:mod:`keras_hrf.quantization.qat`), then converted; computed here and saved in
  ``runs/<family>/light_hrf/<run>/qat/`` (resumable: a finished run is skipped);
- ``ft`` (with ``control=True``): the same fine-tuning without fake quantization, then PTQ, in
  ``<run>/ft/``; QAT's gain over PTQ is only QAT's if it exceeds this control's;
- ``qhrf``: light+HRF trained with the merged kernel fake-quantized (``quantize_merged``),
  then PTQ (``runs/<family>/light_qhrf``, trained by ``reproduce --variants light+qhrf``);
- ``ptq_l2`` (with ``layer_norm_l2=True``): PTQ of the same merged model with every LayerNorm
  lowered to TFLite's integer L2_NORMALIZATION (same float function, see
  :mod:`keras_hrf.layers.layer_norm`), in ``<run>/ptq_l2/``.

Writes ``quantization.json`` (per family and method: mean float UA, int8 UA, argmax agreement,
the number of runs and the largest LiteRT-vs-TFLM output difference) and ``QUANT.md``, with
``QUANT_NOTES.md`` (hand-written) appended if it exists.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data_prep import encode_labels, load_features
from data_prep.prepare import DataSpec
from keras_hrf import reports
from keras_hrf.device import runtimes
from keras_hrf.experiments.executors import FolderTask, LocalExecutor, is_finished
from keras_hrf.experiments.reproduction import make_folds
from keras_hrf.training import QATConfig, fine_tune, load_run, read_metrics
from keras_hrf.training.metrics import classification_metrics
from keras_hrf.training.pipeline import sample_weights

METHODS = ("ptq", "ptq_l2", "ft", "qat", "qhrf")
_VARIANT_DIR = {
    "ptq": "light_hrf",
    "ptq_l2": "light_hrf",
    "ft": "light_hrf",
    "qat": "light_hrf",
    "qhrf": "light_qhrf",
}
#: Methods computed here and stored in a sub-folder of the light+HRF run.
_TUNED = ("qat", "ft", "ptq_l2")


def runtime_max_diff(flat: bytes, x: np.ndarray) -> int:
    """Largest LiteRT-vs-TFLM difference of the int8 outputs, in int8 steps, over ``x``.

    Args:
        flat: An int8 flatbuffer.
        x: Normalised float features; quantized with the model's input parameters.
    """
    return _int8_runs(flat, x)[1]


def _int8_runs(flat: bytes, x: np.ndarray) -> tuple[np.ndarray, int]:
    """``(LiteRT int8 outputs, largest LiteRT-vs-TFLM difference in steps)``: one pass each, so
    callers that need the predictions too do not run LiteRT twice (the output scale is
    positive, so the argmax of the int8 outputs is that of the dequantized ones)."""
    from data_prep.int8 import quantize
    from keras_hrf.export.flatbuffer import as_input_batch

    it = runtimes.litert_interpreter(flat)
    detail = it.get_input_details()[0]
    x_int8 = quantize(as_input_batch(x, detail["shape"]), *detail["quantization"])
    a, _ = runtimes.run_litert(flat, x_int8)
    b, _ = runtimes.run_tflm(flat, x_int8, arena_size=4 * 1024 * 1024)
    return a, int(np.abs(a.astype(int) - b.astype(int)).max())


def _qat_run(
    run_dir: Path, feats, y_all, split, qat_config, progress: bool, name: str = "qat"
) -> dict:
    """Fine-tune one run's merged model with QAT, convert it, measure float and int8 UA.

    With ``name="ft"`` and ``qat_config.fake_quant=False`` the same fine-tuning without fake
    quantization (the control), saved in ``<run>/ft/``.
    """
    import keras

    from keras_hrf import export
    from keras_hrf.quantization import qat

    out = run_dir / name
    if (out / "metrics.json").is_file():
        result = json.loads((out / "metrics.json").read_text())
        if "litert_tflm_max_diff" not in result and (out / "model_qat.keras").is_file():
            # Back-fill of runs tuned before the figure was recorded.
            tuned = keras.models.load_model(out / "model_qat.keras", safe_mode=True)
            flat = export.convert(tuned, np.load(run_dir / "representative.npy"))
            x_test = load_run(run_dir).normalizer.transform(feats[split.test])
            result["litert_tflm_max_diff"] = runtime_max_diff(flat, x_test)
            reports.atomic_write_json(out / "metrics.json", result)
        return result
    started = time.perf_counter()
    run = load_run(run_dir)
    norm = run.normalizer
    x_train, x_val, x_test = (
        norm.transform(feats[idx]) for idx in (split.train, split.val, split.test)
    )
    y_train, y_val, y_test = y_all[split.train], y_all[split.val], y_all[split.test]
    weights = sample_weights(y_train, len(run.labels), run.config.class_balance)
    representative = np.load(run_dir / "representative.npy")
    tuned, history = fine_tune(
        run.merged,
        x_train,
        y_train,
        x_val,
        y_val,
        qat_config,
        calibration_data=representative,
        sample_weight=weights,
        progress=progress,
    )
    y_float = tuned.predict(x_test, verbose=0, batch_size=256).argmax(-1)
    flat = export.convert(tuned, representative)
    int8_out, runtime_diff = _int8_runs(flat, x_test)
    y_int8 = int8_out.argmax(-1)
    # How well the fake-quantized model mirrors the int8 flatbuffer (same weights and ranges).
    mirror = qat.prepare(tuned, calibration_data=representative)
    y_fq = mirror.predict(x_test, verbose=0, batch_size=64).argmax(-1)
    y_before = run.merged.predict(x_test, verbose=0, batch_size=256).argmax(-1)
    result = {
        "float": classification_metrics(y_test, y_float, run.labels),
        "int8": classification_metrics(y_test, y_int8, run.labels),
        "agreement": float(np.mean(y_int8 == y_float)),
        "agreement_fake_quant": float(np.mean(y_int8 == y_fq)),
        "agreement_with_untuned_float": float(np.mean(y_int8 == y_before)),
        "litert_tflm_max_diff": runtime_diff,
        "history": history.to_dict("list"),
        "qat_config": dataclasses.asdict(qat_config),
        "seconds": float(time.perf_counter() - started),
    }
    out.mkdir(exist_ok=True)
    tuned.save(out / "model_qat.keras")
    reports.atomic_write_json(out / "metrics.json", result)
    return result


def _relowered_run(run_dir: Path, feats, y_all, split, lowering: str = "l2") -> dict:
    """PTQ of one run's merged model with its LayerNorms lowered to ``lowering``; resumable
    (``<run>/ptq_<lowering>/metrics.json``)."""
    from keras_hrf import export, reparam

    out = run_dir / f"ptq_{lowering}"
    if (out / "metrics.json").is_file():
        return json.loads((out / "metrics.json").read_text())
    started = time.perf_counter()
    run = load_run(run_dir)
    x_test, y_test = run.normalizer.transform(feats[split.test]), y_all[split.test]
    model = reparam.set_layer_norm_lowering(run.merged, lowering)
    y_float = model.predict(x_test, verbose=0, batch_size=256).argmax(-1)
    flat = export.convert(model, np.load(run_dir / "representative.npy"))
    int8_out, runtime_diff = _int8_runs(flat, x_test)
    y_int8 = int8_out.argmax(-1)
    result = {
        "layer_norm": lowering,
        "float": classification_metrics(y_test, y_float, run.labels),
        "int8": classification_metrics(y_test, y_int8, run.labels),
        "agreement": float(np.mean(y_int8 == y_float)),
        "litert_tflm_max_diff": runtime_diff,
        "seconds": float(time.perf_counter() - started),
    }
    out.mkdir(exist_ok=True)
    reports.atomic_write_json(out / "metrics.json", result)
    return result


def _row(method: str, run_dir: Path, qat_metrics: dict | None) -> dict | None:
    if method in _TUNED:
        if qat_metrics is None:
            return None
        return {
            "float_ua": qat_metrics["float"]["ua"],
            "int8_ua": qat_metrics["int8"]["ua"],
            "agreement": qat_metrics["agreement"],
            "litert_tflm_max_diff": qat_metrics.get("litert_tflm_max_diff"),
            "agreement_fake_quant": qat_metrics.get("agreement_fake_quant"),
        }
    if not (run_dir / "metrics.json").is_file():
        return None
    m = read_metrics(run_dir)
    if m.int8 is None:
        return None
    return {
        "float_ua": m.test_merged.ua,
        "int8_ua": m.int8_ua,
        "agreement": m.int8_agreement,
        "litert_tflm_max_diff": m.int8.get("litert_tflm_max_diff"),
    }


def quantization_study(
    corpus: str | DataSpec,
    root: str | Path | None,
    out: str | Path,
    *,
    families: Sequence[str] = ("conv_transformer", "conformer", "speechformer"),
    seeds: Sequence[int] = (0,),
    folds: Sequence[int] | None = None,
    n_folds: int = 6,
    qat_config=None,
    cache_dir: str | Path | None = None,
    run_qat: bool = True,
    control: bool = False,
    layer_norm_l2: bool = False,
    progress: bool = True,
    folds_file: str | Path | None = None,
    executor=None,
) -> dict:
    """Compare PTQ, QAT and quantization-aware HRF on the reproduction's runs (see module doc).

    Args:
        corpus: Corpus name (as given to ``reproduce``).
        root: Corpus folder.
        out: The reproduction's output folder (``runs/`` inside it).
        families: Model families.
        seeds: Seeds whose runs are compared.
        folds: Fold indices (default all ``n_folds``).
        n_folds: Folds of the speaker split (as in the reproduction).
        qat_config: :class:`keras_hrf.training.QATConfig` of the fine-tuning.
        cache_dir: Feature cache (default ``out/cache``).
        run_qat: Fine-tune missing QAT runs (``False`` only summarises what exists).
        control: Also fine-tune each model the same way *without* fake quantization, then PTQ
            (method ``ft``): separates what QAT gains from what more epochs gain.
        layer_norm_l2: Also convert each merged model with the ``"l2"`` LayerNorm lowering
            (method ``ptq_l2``; no training, ~1 minute per run).
        progress: Progress bars.
        folds_file: The published folds the reproduction used (replaces ``n_folds``).
        executor: Who runs the missing fine-tunings (:func:`keras_hrf.experiments.executors.
            make_executor`): default this process; ``"ray"``'s workers get the run folder's
            files and return the ``qat/`` (``ft/``) folder, which this process writes.

    Returns:
        The summary written to ``quantization.json``.
    """
    out = Path(out)
    qat_config = qat_config or QATConfig()
    control_config = dataclasses.replace(qat_config, fake_quant=False)
    spec = corpus if isinstance(corpus, DataSpec) else DataSpec.single(corpus, root)
    feats, manifest, _ = load_features(
        spec,
        cache_dir=out / "cache" if cache_dir is None else cache_dir,
        progress=progress,
        folds_file=folds_file,
    )
    y_all, _ = encode_labels(manifest["emotion"])
    all_splits, _ = make_folds(manifest, n_folds, folds_file, spec)
    n_folds = len(all_splits)
    fold_ids = list(range(n_folds)) if folds is None else list(folds)
    # The missing fine-tunings first, through the executor; the loop below then reads them.
    tasks = []
    for family, fold, seed in itertools.product(families, fold_ids, seeds):
        base = out / "runs" / family / _VARIANT_DIR["qat"] / f"fold{fold}_seed{seed}"
        for method, cfg in (("qat", qat_config), ("ft", control_config)):
            wanted = run_qat and (method == "qat" or control)
            if wanted and is_finished(base) and not is_finished(base / method):
                fn = functools.partial(
                    _qat_run, split=all_splits[fold], qat_config=cfg, progress=False, name=method
                )
                label = f"{family} {method} fold {fold} seed {seed}"
                tasks.append(FolderTask(label, base, method, fn))
    failures = (executor or LocalExecutor()).run_folder_tasks(
        tasks, {"feats": feats, "y_all": y_all}, progress=progress
    )
    failed = {f.run.run_dir for f in failures}
    for f in failures:
        print(f"quantization: {f.run.name} failed: {f.error}")
    rows = []
    for family in families:
        for fold in fold_ids:
            for seed in seeds:
                name = f"fold{fold}_seed{seed}"
                base = out / "runs" / family / _VARIANT_DIR["qat"] / name
                tuned = {}
                if (base / "metrics.json").is_file():
                    for method, cfg in (("qat", qat_config), ("ft", control_config)):
                        wanted = run_qat and (method == "qat" or control)
                        if base / method in failed:
                            continue
                        if wanted or (base / method / "metrics.json").is_file():
                            tuned[method] = _qat_run(
                                base, feats, y_all, all_splits[fold], cfg, progress, method
                            )
                    if layer_norm_l2 or (base / "ptq_l2" / "metrics.json").is_file():
                        tuned["ptq_l2"] = _relowered_run(base, feats, y_all, all_splits[fold])
                for method in METHODS:
                    row = _row(
                        method,
                        out / "runs" / family / _VARIANT_DIR[method] / name,
                        tuned.get(method),
                    )
                    if row is not None:
                        rows.append(dict(row, family=family, method=method, fold=fold, seed=seed))
    summary = summarize(rows)
    reports.atomic_write_json(out / "quantization.json", summary)
    report = quant_report_md(summary, rows)
    if (out / "QUANT_NOTES.md").is_file():
        # Hand-written notes (commands, reading of the numbers) survive regeneration.
        report += "\n" + (out / "QUANT_NOTES.md").read_text()
    reports.atomic_write_text(out / "QUANT.md", report)
    return summary


def summarize(rows: list[dict]) -> dict:
    """``{family: {method: {float_ua, int8_ua, int8_loss, agreement, n, paired_with_ptq}}}``."""
    summary: dict = {}
    for family in sorted({r["family"] for r in rows}):
        summary[family] = {}
        for method in METHODS:
            sel = [r for r in rows if r["family"] == family and r["method"] == method]
            if not sel:
                continue
            f = np.array([r["float_ua"] for r in sel])
            i = np.array([r["int8_ua"] for r in sel])
            a = np.array([r["agreement"] for r in sel])
            summary[family][method] = {
                "float_ua": float(f.mean()),
                "int8_ua": float(i.mean()),
                "int8_ua_std": float(i.std(ddof=1)) if len(i) > 1 else 0.0,
                "int8_loss": float((f - i).mean()),
                "agreement": float(a.mean()),
                "agreement_min": float(a.min()),
                "n": len(sel),
                "runs": sorted(f"fold{r['fold']}_seed{r['seed']}" for r in sel),
            }
            ptq = {
                (r["fold"], r["seed"]): r["int8_ua"]
                for r in rows
                if r["family"] == family and r["method"] == "ptq"
            }
            paired = [
                r["int8_ua"] - ptq[r["fold"], r["seed"]]
                for r in sel
                if (r["fold"], r["seed"]) in ptq
            ]
            if method != "ptq" and paired:
                summary[family][method]["int8_ua_minus_ptq"] = float(np.mean(paired))
                summary[family][method]["pairs_with_ptq"] = len(paired)
            diffs = [
                r["litert_tflm_max_diff"] for r in sel if r.get("litert_tflm_max_diff") is not None
            ]
            if diffs:
                summary[family][method]["litert_tflm_max_diff"] = int(max(diffs))
            mirror = [
                r["agreement_fake_quant"] for r in sel if r.get("agreement_fake_quant") is not None
            ]
            if mirror:
                summary[family][method]["agreement_fake_quant"] = float(np.mean(mirror))
    return summary


def quant_report_md(summary: dict, rows: list[dict]) -> str:
    """The ``QUANT.md`` table: one row per family and method."""
    p = reports.pct
    table = []
    for family, methods in summary.items():
        for method, s in methods.items():
            table.append(
                [
                    family,
                    method,
                    str(s["n"]),
                    p(s["float_ua"]),
                    f"{p(s['int8_ua'])} ± {p(s['int8_ua_std'])}",
                    f"{100 * s['int8_loss']:+.2f}",
                    f"{p(s['agreement'])} (min {p(s['agreement_min'])})",
                    "-"
                    if "int8_ua_minus_ptq" not in s
                    else f"{100 * s['int8_ua_minus_ptq']:+.2f} ({s['pairs_with_ptq']})",
                    str(s.get("litert_tflm_max_diff", "-")),
                ]
            )
    return "\n".join(
        [
            "# int8 fidelity: PTQ vs QAT vs quantization-aware HRF",
            "",
            "Test UA of the light+HRF model (merged) in float and as full-int8 (LiteRT), on the",
            "reproduction's speaker folds; `int8 loss` is float UA minus int8 UA in points",
            "(mean over runs; each method's float UA is its own float model's); `int8 UA vs ptq`",
            "is the mean paired difference of int8 UA to PTQ's on the same (fold, seed).",
            "`ptq_l2` is PTQ of the same merged model with every LayerNorm converted to TFLite's",
            "integer L2_NORMALIZATION instead of MEAN/RSQRT (same float function).",
            "",
            reports.markdown_table(
                [
                    "family",
                    "method",
                    "runs",
                    "float UA %",
                    "int8 UA %",
                    "int8 loss (pts)",
                    "int8/float agreement %",
                    "int8 UA vs ptq (pairs)",
                    "LiteRT vs TFLM, max steps",
                ],
                table,
            ),
            "",
        ]
    )
