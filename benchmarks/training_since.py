"""Training cost against an older commit: seconds per epoch of each light preset with the code,
preset and recipe of ``--commit`` and with this checkout's, measured in one run.

Usage::

    python benchmarks/training_since.py [--commit f15f862] [--root RAVDESS_ROOT]
        [--families ...] [--epochs 3] [--rounds 2]

``benchmarks/training.py`` compares settings (the old presets and recipe, batch 64) on today's
code, so what the code itself gained since does not show there. This script checks the commit
out into a temporary git worktree and trains, for every family, the light preset with that
tree's code and defaults and then with this checkout's (each in a fresh interpreter with one
TensorFlow thread, the same RAVDESS split: fold 0 of a 6-fold speaker k-fold, seed 0),
alternating them for ``--rounds`` rounds so that machine load affects both alike. The first
epoch (tracing) is reported apart; the steady-state time is the median of the later epochs, and
the figure kept per side is the median over rounds.

The default commit, f15f862, is the one whose ``benchmarks/results/training.json`` the issue
"Training that converges and stays put" quotes (light ConvTransformer 4.6 s/epoch); its API
(``keras_hrf.train``, ``keras_hrf.experiment.load_features``) is the one the driver below calls
for an old tree. Writes ``benchmarks/results/training_since.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: One training run; ``{api}`` picks the imports of an old (``keras_hrf.train``) or a current
#: (``keras_hrf.training``) tree. Prints one JSON line.
DRIVER = """
import json, os, statistics, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras, tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
from data_prep import splits
if {api!r} == "old":
    from keras_hrf.experiment import load_features
    from keras_hrf.train import TrainConfig, fit
else:
    from data_prep import load_features
    from keras_hrf.training import TrainConfig, fit
feats, manifest, params = load_features("ravdess", {root!r}, {cache!r}, progress=False)
split = splits.speaker_kfold(manifest, n_folds=6, seed=0)[0]

class EpochTimer(keras.callbacks.Callback):
    times = []
    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()
    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self.t0)

timer = EpochTimer()
cfg = TrainConfig(family={family!r}, epochs={epochs}, patience=0)
result = fit(cfg, feats, manifest, split, feature_params=params, progress=False,
             callbacks=[timer])
m = result.metrics
params_train = m["params_train"] if isinstance(m, dict) else m.params_train
print("RESULT " + json.dumps({{"first_epoch_s": timer.times[0],
                              "epoch_s": statistics.median(timer.times[1:]),
                              "params_train": params_train,
                              "train_examples": int(len(split.train))}}))
"""


def _run(tree: Path, api: str, family: str, args) -> dict:
    code = DRIVER.format(
        api=api, root=str(args.root), cache=str(args.cache / api), family=family,
        epochs=args.epochs,
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"{api} {family} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[len("RESULT ") :])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--commit", default="f15f862")
    parser.add_argument("--root", type=Path, default=os.environ.get("KERAS_HRF_RAVDESS"))
    parser.add_argument(
        "--families", nargs="+", default=["conv_transformer", "conformer", "speechformer"]
    )
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--cache", type=Path, default=REPO / ".cache" / "training_since",
        help="feature caches, one per side (the old tree's cache layout may differ)",
    )  # fmt: skip
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/training_since.json"))
    args = parser.parse_args(argv)
    if not args.root or not Path(args.root).is_dir():
        parser.error("needs RAVDESS: --root DIR or KERAS_HRF_RAVDESS")
    sha = subprocess.run(
        ["git", "rev-parse", args.commit], cwd=REPO, capture_output=True, text=True
    )
    if sha.returncode != 0:
        parser.error(f"{args.commit!r} is not a commit of {REPO}")
    sys.path.insert(0, str(REPO))
    from keras_hrf import reports

    with tempfile.TemporaryDirectory() as tmp:
        old_tree = Path(tmp) / "old"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(old_tree), args.commit],
            cwd=REPO, check=True,
        )  # fmt: skip
        try:
            runs: dict = {}
            for r in range(args.rounds):
                for family in args.families:
                    for side, tree, api in (("old", old_tree, "old"), ("new", REPO, "new")):
                        res = _run(tree, api, family, args)
                        runs.setdefault((family, side), []).append(res)
                        print(
                            f"round {r + 1}/{args.rounds} {family} {side}: "
                            f"{res['epoch_s']:.2f} s/epoch",
                            file=sys.stderr, flush=True,
                        )  # fmt: skip
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(old_tree)], cwd=REPO, check=False
            )
    rows = []
    for family in args.families:
        old, new = runs[(family, "old")], runs[(family, "new")]
        med = lambda rs, k: statistics.median(x[k] for x in rs)  # noqa: E731
        rows.append(
            {
                "family": family,
                "old_epoch_s": med(old, "epoch_s"),
                "new_epoch_s": med(new, "epoch_s"),
                "old_epoch_s_rounds": [x["epoch_s"] for x in old],
                "new_epoch_s_rounds": [x["epoch_s"] for x in new],
                "old_first_epoch_s": med(old, "first_epoch_s"),
                "new_first_epoch_s": med(new, "first_epoch_s"),
                "old_params_train": old[0]["params_train"],
                "new_params_train": new[0]["params_train"],
                "train_examples": new[0]["train_examples"],
                "ratio": med(new, "epoch_s") / med(old, "epoch_s"),
            }
        )
    table = reports.markdown_table(
        ["family", "params old / new", f"s/epoch at {args.commit}", "s/epoch now", "ratio",
         "first epoch s old / new"],
        [
            [
                r["family"],
                f"{r['old_params_train']:,} / {r['new_params_train']:,}",
                f"{r['old_epoch_s']:.2f}",
                f"{r['new_epoch_s']:.2f}",
                f"{r['ratio']:.2f}x",
                f"{r['old_first_epoch_s']:.1f} / {r['new_first_epoch_s']:.1f}",
            ]
            for r in rows
        ],
    )  # fmt: skip
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    print(f"light presets, {args.commit} vs {head}: RAVDESS fold 0, 1 thread, median of "
          f"{args.rounds} rounds\n")  # fmt: skip
    print(table)
    out = {
        "commit_old": sha.stdout.strip(),
        "commit_new": head,
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
