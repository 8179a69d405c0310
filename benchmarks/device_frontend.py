"""End to end: the int8 model fed by the device front-end vs by the training features.

For each given run folder (``model_merged.keras``, ``config.json``, ``representative.npy`` as
written by :func:`keras_hrf.training.save_run`) of a RAVDESS run ``.../fold{F}_seed{S}``:

1. rebuilds the run's test fold (``data_prep.splits.speaker_kfold(manifest, 6, seed=0)[F]``) and
   checks it against the run's recorded test size;
2. exports the merged model (``keras_hrf.tflite.export`` into a temporary folder, calibrated on
   the run's ``representative.npy``) unless the run has a ``device/`` export already;
3. computes every test utterance's input three ways: the training features
   (``data_prep.features``, librosa) through the exporter's quantization
   (``ModelMeta.features_to_input``), and the device front-end
   (``data_prep.device_frontend``: ``arm_mfcc_f32``, and ``arm_mfcc_q15``) through the folded
   normaliser + quantization that the firmware uses;
4. runs the int8 model on all three under the TFLite Micro interpreter (the reference kernels a
   microcontroller runs) and reports WA / UA, top-1 agreement, and the feature and int8 parity.

Usage::

    python benchmarks/device_frontend.py --root /path/to/ravdess_speech_16k \\
        results/ravdess/speaker_kfold/runs/conv_transformer/light/fold0_seed0 \\
        results/ravdess/speaker_kfold/runs/conv_transformer/light_hrf/fold0_seed0

Writes ``benchmarks/results/device_frontend.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from data_prep import splits  # noqa: E402 - after the sys.path fix for direct runs
from data_prep.audio import load_audio  # noqa: E402
from data_prep.corpora import load_corpus  # noqa: E402
from data_prep.device_frontend import DeviceFrontend  # noqa: E402
from data_prep.features import fix_length, log_mel  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "device_frontend.json"
N_FOLDS = 6
_RUN_NAME = re.compile(r"fold(\d+)_seed(\d+)$")


def _test_fold(run_dir: Path, root: Path):
    match = _RUN_NAME.search(run_dir.name)
    if not match:
        raise SystemExit(f"{run_dir}: expected a run folder named fold<F>_seed<S>")
    fold = int(match.group(1))
    manifest = load_corpus("ravdess", root)
    split = splits.speaker_kfold(manifest, n_folds=N_FOLDS, seed=0)[fold]
    return fold, int(match.group(2)), manifest.iloc[split.test].reset_index(drop=True), split


def _export(run, tmp: Path) -> Path:
    from keras_hrf import tflite

    existing = run.path / "device"
    if (existing / "model_meta.json").is_file() and (existing / "model_int8.tflite").is_file():
        return existing
    out = Path(tempfile.mkdtemp(dir=tmp)) / "device"  # run folders share names (fold0_seed0)
    tflite.export(
        run.merged,
        out,
        representative_data=np.load(run.path / "representative.npy"),
        labels=run.labels,
        feature_params=run.feature_params,
        normalizer=run.normalizer,
        origin={"family": run.config.family, "size": run.config.size, "hrf": run.config.hrf},
    )
    return out


def evaluate_run(run_dir: Path, root: Path, tmp: Path) -> dict:
    """All figures of one run (see the module docstring)."""
    from data_prep import encode_labels
    from keras_hrf import tflite
    from keras_hrf.device.runtimes import run_tflm
    from keras_hrf.training import load_run
    from keras_hrf.training.metrics import classification_metrics

    t0 = time.perf_counter()
    run = load_run(run_dir)
    fold, seed, test, split = _test_fold(run_dir, root)
    recorded_n = run.metrics.test.n
    if len(test) != recorded_n:
        raise SystemExit(f"{run_dir}: rebuilt test fold has {len(test)} rows, run had {recorded_n}")
    y, _ = encode_labels(test["emotion"], run.labels)
    export_dir = _export(run, tmp)
    meta = tflite.load_meta(export_dir)
    params = meta.feature_params
    f32 = DeviceFrontend.from_meta(meta, "f32")
    q15 = DeviceFrontend.from_meta(meta, "q15")

    inputs = {"training features": [], "device f32": [], "device q15": []}
    f32_diff, q15_err, feature_seconds = [], [], {"librosa": 0.0, "f32": 0.0, "q15": 0.0}
    for path in test["path"]:
        signal = load_audio(path, params.sample_rate, min_duration=params.min_duration)
        t = time.perf_counter()
        ref = fix_length(log_mel(signal, params), params)
        feature_seconds["librosa"] += time.perf_counter() - t
        t = time.perf_counter()
        dev = f32.features(signal)
        feature_seconds["f32"] += time.perf_counter() - t
        t = time.perf_counter()
        dev_q = q15.features(signal)
        feature_seconds["q15"] += time.perf_counter() - t
        f32_diff.append(float(np.abs(dev - ref).max()))
        q15_err.append(np.abs(dev_q - ref).ravel())
        inputs["training features"].append(meta.features_to_input(ref)[0])
        inputs["device f32"].append(f32.to_input(dev)[0])
        inputs["device q15"].append(q15.to_input(dev_q)[0])
    inputs = {k: np.stack(v) for k, v in inputs.items()}
    q15_err = np.concatenate(q15_err)

    flat = (export_dir / "model_int8.tflite").read_bytes()
    preds, metrics = {}, {}
    for name, x in inputs.items():
        out, _ = run_tflm(flat, x, meta.arena_bytes)
        preds[name] = out.astype(np.int32).argmax(-1)
        metrics[name] = classification_metrics(y, preds[name], run.labels)
    ref_in = inputs["training features"].astype(np.int32)
    int8 = {}
    for name in ("device f32", "device q15"):
        d = np.abs(inputs[name].astype(np.int32) - ref_in)
        int8[name] = {
            "values_differing": float(np.mean(d > 0)),
            "max_steps": int(d.max()),
            "mean_abs_steps": float(d.mean()),
        }
    base = preds["training features"]
    return {
        "run": str(run_dir),
        "family": run.config.family,
        "variant": run.config.variant,
        "fold": fold,
        "seed": seed,
        "test_speakers": list(split.test_speakers),
        "n_test": len(test),
        "export": "run's device/" if export_dir == run_dir / "device" else "fresh (temporary)",
        "recorded_float_test_ua": run.metrics.test.ua,
        "recorded_int8": run.metrics.get("int8"),
        "ua": {k: m["ua"] for k, m in metrics.items()},
        "wa": {k: m["wa"] for k, m in metrics.items()},
        "top1_agreement_with_training_features": {
            k: float(np.mean(p == base)) for k, p in preds.items() if k != "training features"
        },
        "features": {
            "f32_max_abs_diff": float(max(f32_diff)),
            "f32_median_of_per_file_max": float(np.median(f32_diff)),
            "q15_median_abs_err": float(np.median(q15_err)),
            "q15_p99_abs_err": float(np.percentile(q15_err, 99)),
            "q15_max_abs_err": float(q15_err.max()),
        },
        "int8_inputs_vs_training_features": int8,
        "feature_seconds": feature_seconds,
        "seconds": time.perf_counter() - t0,
    }


def markdown(rows: list[dict]) -> str:
    from keras_hrf.reports import markdown_table, pct

    table = []
    for r in rows:
        ua, agree = r["ua"], r["top1_agreement_with_training_features"]
        f32, q15 = (r["int8_inputs_vs_training_features"][k] for k in ("device f32", "device q15"))
        feats = r["features"]
        table.append(
            [
                f"{r['family']} {r['variant']} fold{r['fold']} seed{r['seed']}",
                r["n_test"],
                pct(ua["training features"]),
                pct(ua["device f32"]),
                pct(ua["device q15"]),
                f"{pct(agree['device f32'])} / {pct(agree['device q15'])}",
                f"{feats['f32_max_abs_diff']:.1e}",
                f"{100 * f32['values_differing']:.3f} % (max {f32['max_steps']})",
                f"{feats['q15_median_abs_err']:.3f} / {feats['q15_p99_abs_err']:.2f}",
                f"{100 * q15['values_differing']:.1f} %",
            ]
        )
    return markdown_table(
        [
            "run",
            "test utts",
            "int8 UA %, training features",
            "int8 UA %, device f32",
            "int8 UA %, device q15",
            "top-1 agreement % f32 / q15",
            "max abs feature diff f32",
            "int8 values differing, f32",
            "q15 abs err median / p99",
            "int8 values differing, q15",
        ],
        table,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (fold<F>_seed<S>)")
    parser.add_argument("--root", default=os.environ.get("KERAS_HRF_RAVDESS"), help="RAVDESS root")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not args.root:
        parser.error("--root (or KERAS_HRF_RAVDESS) is required")
    import cmsisdsp.version

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for run_dir in args.runs:
            print(f"{run_dir} ...", file=sys.stderr)
            rows.append(evaluate_run(run_dir, Path(args.root), Path(tmp)))
    doc = {
        "description": "int8 model (TFLM host interpreter) on the run's RAVDESS test fold, fed "
        "by the training features (librosa, exporter quantization) vs the device front-end "
        "(CMSIS-DSP arm_mfcc_f32 / arm_mfcc_q15 via cmsisdsp, folded quantization)",
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "cmsisdsp": cmsisdsp.version.__version__,
        "runs": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(markdown(rows))
    print(f"\nwritten: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
