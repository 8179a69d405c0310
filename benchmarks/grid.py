"""The experiment grid on Ray vs the local executor: wall time of the same grid, and Ray's cost.

Usage::

    python benchmarks/grid.py [--folds 4] [--epochs 3]

Runs one grid (a generated synthetic corpus; a small ConvTransformer, light and light+HRF, every
fold, one seed, no device export) three ways, each as the ``keras-hrf reproduce`` command a user
types, in a fresh output folder and on the same features cache (built first, not timed):

- ``local``: the default executor, one process, the runs one after the other;
- ``ray``: ``--executor ray`` without ``--address``: a local Ray instance with the machine's CPUs,
  one run per CPU (the instance's start-up is included, as the user waits for it too).

From the ``ray`` grid's run logs (``trained ... in S s``, measured inside the task) it derives
Ray's overhead per run: the worker time not spent training, ``(workers * wall - sum(S)) / runs``
(worker start-up and TensorFlow import, object-store transfers, returning the files, the driver's
writes, idle workers at the end of the grid). It also times empty tasks on a fresh local
instance (scheduling alone). Prints a Markdown table and writes ``benchmarks/results/grid.json``.

The machine should be otherwise idle: the ratio of a 2-worker grid to a 1-process one is only
meaningful when both CPUs are free.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = ["--model-option", "d_model=16", "--model-option", "ffn_dim=32",
         "--model-option", "num_heads=2", "--model-option", "num_blocks=1"]  # fmt: skip


def _reproduce(root: Path, cache: Path, out: Path, folds: int, epochs: int, *extra) -> list[str]:
    return [
        sys.executable, "-m", "keras_hrf.cli", "--threads", "1", "reproduce",
        "--corpus", "synthetic", "--root", str(root), "--cache", str(cache), "--out", str(out),
        "--families", "conv_transformer", "--variants", "light", "light+hrf", "--seeds", "1",
        "--folds", str(folds), "--epochs", str(epochs), "--no-export", *MODEL, *extra,
    ]  # fmt: skip


def _timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"grid.py: {' '.join(cmd[3:6])} failed:\n{proc.stderr[-3000:]}")
    return seconds


def _empty_task_ms(workers: int, n: int = 200) -> float:
    """Milliseconds per empty task (submit to result, ``workers`` in flight) on a fresh local
    instance."""
    import ray

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:

        @ray.remote(num_cpus=1)
        def nothing(i):
            return i

        ray.get([nothing.remote(i) for i in range(workers * 4)])  # start the workers
        started = time.perf_counter()
        ray.get([nothing.remote(i) for i in range(n)])
        return (time.perf_counter() - started) / n * 1000
    finally:
        ray.shutdown()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/grid.json")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

    from data_prep import synthetic

    tmp = Path(tempfile.mkdtemp(prefix="grid-bench-"))
    root, cache = tmp / "synthetic", tmp / "cache"
    synthetic.generate(root, speakers=8, per_class=10, seed=0)
    prepare = [sys.executable, "-m", "keras_hrf.cli", "prepare", "--corpus", "synthetic",
               "--root", str(root), "--cache", str(cache)]  # fmt: skip
    subprocess.run(prepare, check=True, capture_output=True)
    runs = args.folds * 2
    workers = len(os.sched_getaffinity(0))  # what data_prep.cluster gives a local instance

    local = _timed(_reproduce(root, cache, tmp / "local", args.folds, args.epochs))
    ray_out = tmp / "ray"
    ray_cmd = _reproduce(root, cache, ray_out, args.folds, args.epochs, "--executor", "ray")
    started = time.perf_counter()
    proc = subprocess.run(ray_cmd, capture_output=True, text=True)
    ray_wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"grid.py: the ray grid failed:\n{proc.stderr[-3000:]}")
    trained = [
        float(m.group(1))
        for log in ray_out.glob("runs/*/*/*/log.txt")
        for m in [re.search(r"in ([0-9.]+) s", log.read_text())]
        if m
    ]
    if len(trained) != runs:
        sys.exit(f"grid.py: expected {runs} run logs from the ray grid, found {len(trained)}")
    overhead = (workers * ray_wall - sum(trained)) / runs
    empty_ms = _empty_task_ms(workers)

    result = {
        "grid": {
            "runs": runs,
            "folds": args.folds,
            "variants": ["light", "light+hrf"],
            "epochs": args.epochs,
            "model": "conv_transformer d16 ffn32 1 block, synthetic corpus",
        },
        "workers": workers,
        "local_wall_s": round(local, 1),
        "ray_wall_s": round(ray_wall, 1),
        "speedup_local_over_ray": round(local / ray_wall, 2),
        "ray_mean_train_s_per_run": round(sum(trained) / runs, 2),
        "ray_overhead_s_per_run": round(overhead, 2),
        "ray_empty_task_ms": round(empty_ms, 2),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    print(
        f"| grid | local wall | Ray wall ({workers} workers) | speed-up | train s / run (in task) "
        "| Ray overhead s / run | empty task |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {runs} runs x {args.epochs} epochs | {local:.1f} s | {ray_wall:.1f} s | "
        f"x{local / ray_wall:.2f} | {sum(trained) / runs:.1f} | {overhead:.1f} | "
        f"{empty_ms:.1f} ms |"
    )
    from keras_hrf import reports

    reports.atomic_write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
