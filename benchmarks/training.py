"""Training cost: seconds per epoch of the old and the new training setting, and of the training
options that could make epochs faster, as ratios measured in one run.

Usage::

    python benchmarks/training.py [--root RAVDESS_ROOT] [--families ...] [--epochs 5]
        [--rounds 2]

Uses RAVDESS features (``--root`` or ``KERAS_HRF_RAVDESS``) when given, otherwise a generated
synthetic corpus. For every light preset (and ds_cnn) it trains, on the same split, with one
TensorFlow thread:

- ``old``: the light preset and recipe of the first landing (commit 51ca6f4: the Conv1D/linear
  stem at the input's 10 ms frames, the presets of that commit, no EMA, mixup or time shift);
- ``new``: today's preset (Conv2D stem for the Transformers) and ``TrainConfig``'s defaults;
- ``new b64``: the same with batch 64 (half the optimiser steps per epoch);
- ``new xla``: the new setting with XLA (``jit_compile=True``): Keras refuses it while
  TensorFlow's op determinism is on (``keras.src.trainers.trainer.model_supports_jit``), which
  ``fit`` turns on so that a seed gives the same weights, so for this setting only the benchmark
  turns determinism off (:func:`xla_without_determinism`);
- ``new+hrf`` and ``large`` with ``--variants`` (HRF's and the large preset's cost).

The first epoch (graph tracing) is reported separately and the median of the remaining epochs is
the steady-state time (with 5 epochs, XLA's second compiling epoch is one of four and the median
leaves it out). Settings are interleaved family by family, and every setting runs once per
round (``--rounds``), so that machine load affects them alike; the figure kept is the median over
rounds. Prints a Markdown table and writes ``benchmarks/results/training.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

#: The light presets of commit 51ca6f4 (what the first benchmark measured), as model options.
OLD_PRESETS = {
    "conv_transformer": dict(d_model=64, num_heads=4, ffn_dim=128, num_blocks=2, stem="conv1d"),
    "conformer": dict(d_model=48, num_heads=4, ffn_dim=96, num_blocks=2, stem="conv1d"),
    "speechformer": dict(dims=(32, 32, 48, 48), blocks=(1, 1, 1, 1), num_heads=4),
    "ds_cnn": {},  # the peer arrived later; its "old" is the old recipe only
}
#: The recipe of commit 51ca6f4 (recipe v1) where it differs from TrainConfig's defaults.
OLD_RECIPE = dict(
    ema=0.0,
    mixup=0.0,
    time_shift=0,
    selection="best",
    weight_decay=0.0,
    label_smoothing=0.0,
    warmup_epochs=0,
)


def settings(family: str, with_variants: bool) -> list[tuple[str, dict]]:
    """(name, TrainConfig fields) of every setting measured for ``family``."""
    out = [
        ("old", dict(model_overrides=OLD_PRESETS[family], **OLD_RECIPE)),
        ("new", {}),
        ("new b64", dict(batch_size=64)),
        ("new xla", {}),
    ]
    if with_variants:
        out += [("new+hrf", dict(hrf={})), ("large", dict(size="large"))]
    return out


@contextlib.contextmanager
def xla_without_determinism():
    """Within: every ``model.compile`` asks for XLA, and op determinism is off (and ``fit``'s
    call that turns it on does nothing). Only for measuring: the weights of a seed are then no
    longer guaranteed to repeat."""
    from unittest import mock

    import keras
    import tensorflow as tf
    from tensorflow.python.framework import config as tf_config

    compile_ = keras.Model.compile

    def compile_with_xla(self, *args, **kwargs):
        return compile_(self, *args, **{**kwargs, "jit_compile": True})

    tf_config.disable_op_determinism()
    with (
        mock.patch.object(tf.config.experimental, "enable_op_determinism", lambda: None),
        mock.patch.object(keras.Model, "compile", compile_with_xla),
    ):
        yield


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=os.environ.get("KERAS_HRF_RAVDESS"))
    parser.add_argument("--families", nargs="+", default=list(OLD_PRESETS))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument(
        "--rounds", type=int, default=2, help="every setting once per round, rounds alternating"
    )
    parser.add_argument(
        "--variants", action="store_true", help="also light+HRF and large (new setting)"
    )
    parser.add_argument("--cache", default=".cache/features")
    parser.add_argument("--out", default="benchmarks/results/training.json")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    from data_prep import load_features, splits, synthetic
    from keras_hrf import reports
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

    rows: dict[tuple[str, str], dict] = {}
    for round_ in range(args.rounds):
        for family in args.families:
            for name, fields in settings(family, args.variants):
                cfg = TrainConfig(family=family, epochs=args.epochs, patience=0, **fields)
                timer = EpochTimer()
                timer.times = []
                xla = (
                    xla_without_determinism() if name.endswith("xla") else contextlib.nullcontext()
                )
                with xla:
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
                row = rows.setdefault(
                    (family, name),
                    {
                        "family": family,
                        "setting": name,
                        "fields": {k: v for k, v in fields.items()},
                        "params_train": result.metrics.params_train,
                        "params_deployed": result.metrics.params_deployed,
                        "train_examples": int(len(split.train)),
                        "rounds": [],
                    },
                )
                row["rounds"].append(
                    {
                        "first_epoch_s": timer.times[0],
                        "epoch_s": steady,
                        "epoch_times_s": timer.times,
                    }
                )
                print(
                    f"round {round_ + 1}/{args.rounds} {family} {name}: {steady:.2f} s/epoch",
                    file=sys.stderr,
                    flush=True,
                )
    # The figure kept per setting: the median over rounds (each round's own median epoch).
    for row in rows.values():
        row["first_epoch_s"] = statistics.median(x["first_epoch_s"] for x in row["rounds"])
        row["epoch_s"] = statistics.median(x["epoch_s"] for x in row["rounds"])
    rows = list(rows.values())
    for r in rows:
        old = next(x for x in rows if x["family"] == r["family"] and x["setting"] == "old")
        new = next(x for x in rows if x["family"] == r["family"] and x["setting"] == "new")
        r["ratio_vs_old"] = r["epoch_s"] / old["epoch_s"]
        r["ratio_vs_new"] = r["epoch_s"] / new["epoch_s"]
    table = reports.markdown_table(
        ["family", "setting", "params train / deployed", "first epoch s", "s / epoch", "x old",
         "x new"],
        [
            [
                r["family"],
                r["setting"],
                f"{r['params_train']:,} / {r['params_deployed']:,}",
                f"{r['first_epoch_s']:.1f}",
                f"{r['epoch_s']:.2f}",
                f"{r['ratio_vs_old']:.2f}",
                f"{r['ratio_vs_new']:.2f}",
            ]
            for r in rows
        ],
    )  # fmt: skip
    print(f"{corpus}: {len(split.train)} training utterances per epoch, 1 thread\n")
    print(table)
    out = {
        "corpus": corpus,
        "epochs": args.epochs,
        "rounds": args.rounds,
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
