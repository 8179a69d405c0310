"""PTQ calibration: how many representative examples does full-int8 conversion need?

Usage::

    python benchmarks/calibration_size.py \\
        --runs results/ravdess/speaker_kfold/runs/conformer/light_hrf/fold0_seed0 [--sizes 50 200 0]

For each trained run folder (from ``keras-hrf reproduce``), converts its merged model to full
int8 with ``N`` representative examples drawn from the run's own training split (``0`` = all of
them), and measures on the run's test split: float UA, int8 UA (LiteRT) and int8-vs-float argmax
agreement. Prints a Markdown table and writes ``benchmarks/results/calibration_size.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", required=True, help="run folders of a reproduction")
    parser.add_argument("--sizes", nargs="+", type=int, default=[50, 200, 0])
    parser.add_argument("--root", default=os.environ.get("KERAS_HRF_RAVDESS"))
    parser.add_argument("--corpus", default="ravdess")
    parser.add_argument("--cache", default=".cache/features")
    parser.add_argument("--folds", type=int, default=6, help="speaker folds of the reproduction")
    parser.add_argument("--out", default="benchmarks/results/calibration_size.json")
    args = parser.parse_args(argv)
    if not args.root:
        print("error: pass --root or set KERAS_HRF_RAVDESS", file=sys.stderr)
        return 2

    import numpy as np

    from data_prep import encode_labels, load_features, splits
    from keras_hrf import reports, tflite
    from keras_hrf.training import load_run
    from keras_hrf.training.metrics import unweighted_accuracy

    feats, manifest, _ = load_features(args.corpus, args.root, args.cache, progress=False)
    y_all, _ = encode_labels(manifest["emotion"])
    all_splits = splits.speaker_kfold(manifest, n_folds=args.folds, seed=0)
    rows = []
    for run_dir in map(Path, args.runs):
        match = re.fullmatch(r"fold(\d+)_seed\d+", run_dir.name)
        if match is None:
            print(f"error: {run_dir} is not a reproduce run folder (foldF_seedS)", file=sys.stderr)
            return 2
        split = all_splits[int(match.group(1))]
        run = load_run(run_dir)
        x_train = run.normalizer.transform(feats[split.train])
        x_test = run.normalizer.transform(feats[split.test])
        y_test = y_all[split.test]
        y_float = run.merged.predict(x_test, verbose=0, batch_size=128).argmax(-1)
        for n in args.sizes:
            n = n or len(x_train)
            flat = tflite.convert(run.merged, x_train, num_samples=n)
            y_int8 = tflite.predict_int8(flat, x_test).argmax(-1)
            rows.append(
                {
                    "run": str(run_dir),
                    "representative": n,
                    "float_ua": unweighted_accuracy(y_test, y_float),
                    "int8_ua": unweighted_accuracy(y_test, y_int8),
                    "agreement": float(np.mean(y_int8 == y_float)),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    table = reports.markdown_table(
        ["run", "representative examples", "float UA %", "int8 UA %", "agreement %"],
        [
            [
                r["run"].split("runs/")[-1],
                r["representative"],
                reports.pct(r["float_ua"]),
                reports.pct(r["int8_ua"]),
                reports.pct(r["agreement"]),
            ]
            for r in rows
        ],
    )
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    reports.atomic_write_json(
        args.out,
        {
            "command": "python benchmarks/calibration_size.py " + " ".join(argv or sys.argv[1:]),
            "rows": rows,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
