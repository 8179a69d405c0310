"""Training cost: seconds per epoch of light vs light+HRF vs large, as ratios measured in one run.

Usage::

    python benchmarks/training.py [--root RAVDESS_ROOT] [--families ...] [--epochs 3]

Uses RAVDESS features (``--root`` or ``KERAS_HRF_RAVDESS``) when given, otherwise a generated
synthetic corpus. Each variant is trained for ``--epochs`` epochs on the same split with one
TensorFlow thread; the first epoch (graph tracing) is reported separately and the median of the
remaining epochs is the steady-state time. Variants are interleaved family by family so that
machine load affects them alike. Prints a Markdown table and writes
``benchmarks/results/training.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=os.environ.get("KERAS_HRF_RAVDESS"))
    parser.add_argument(
        "--families", nargs="+", default=["conv_transformer", "conformer", "speechformer"]
    )
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--cache", default=".cache/features")
    parser.add_argument("--out", default="benchmarks/results/training.json")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    from data_prep import load_features, splits, synthetic
    from keras_hrf import reports
    from keras_hrf.experiments.variants import VARIANTS
    from keras_hrf.training import TrainConfig, fit

    if args.root:
        corpus, root = "ravdess", args.root
    else:
        corpus, root = "synthetic", Path(tempfile.mkdtemp()) / "synthetic"
        synthetic.generate(root, speakers=8, per_class=12, seed=0)
    feats, manifest, params = load_features(corpus, root, args.cache, progress=False)
    split = splits.speaker_kfold(manifest, n_folds=6 if corpus == "ravdess" else 4, seed=0)[0]

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.t0)

    rows = []
    for family in args.families:
        for variant in ("light", "light+hrf", "large"):
            size, hrf = VARIANTS[variant]
            cfg = TrainConfig(family=family, size=size, hrf=hrf, epochs=args.epochs, patience=0)
            timer = EpochTimer()
            timer.times = []
            result = fit(
                cfg,
                feats,
                manifest,
                split,
                feature_params=params,
                progress=False,
                callbacks=[timer],
            )
            steady = statistics.median(timer.times[1:]) if len(timer.times) > 1 else None
            rows.append(
                {
                    "family": family,
                    "variant": variant,
                    "params_train": result.metrics.params_train,
                    "params_deployed": result.metrics.params_deployed,
                    "first_epoch_s": timer.times[0],
                    "epoch_s": steady,
                    "train_examples": int(len(split.train)),
                }
            )
            print(f"{family} {variant}: {steady:.2f} s/epoch", file=sys.stderr)
    for r in rows:
        light = next(x for x in rows if x["family"] == r["family"] and x["variant"] == "light")
        r["ratio_vs_light"] = r["epoch_s"] / light["epoch_s"]
    table = reports.markdown_table(
        ["family", "variant", "params train / deployed", "first epoch s", "s / epoch", "x light"],
        [
            [
                r["family"],
                r["variant"],
                f"{r['params_train']:,} / {r['params_deployed']:,}",
                f"{r['first_epoch_s']:.1f}",
                f"{r['epoch_s']:.2f}",
                f"{r['ratio_vs_light']:.2f}",
            ]
            for r in rows
        ],
    )
    print(f"{corpus}: {len(split.train)} training utterances per epoch, batch 32, 1 thread\n")
    print(table)
    out = {
        "corpus": corpus,
        "epochs": args.epochs,
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_after": os.getloadavg()[0],
        "rows": rows,
    }
    reports.atomic_write_json(args.out, out)
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
