"""What the benchmarks that re-convert trained RAVDESS runs share (``per_tensor.py``,
``device_graph_ua.py``): their command line, each run's test speakers, and int8 predictions in
LiteRT. Imported by those scripts from this folder (``python benchmarks/<name>.py``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path


def parse_args(script: str, description: str, argv=None) -> argparse.Namespace:
    """``RUN_DIR ... [--root] [--cache] [--out]``, checked before anything heavy is imported:
    every run folder finished (``metrics.json``), a RAVDESS root given. ``--out`` defaults to
    ``benchmarks/results/<script>.json``; errors name ``<script>.py``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--root", default=os.environ.get("KERAS_HRF_RAVDESS"))
    parser.add_argument("--cache", default=".cache/features")
    parser.add_argument("--out", default=f"benchmarks/results/{script}.json")
    args = parser.parse_args(argv)
    for run in args.runs:
        if not (run / "metrics.json").is_file():
            sys.exit(f"{script}.py: {run} is not a finished run folder (no metrics.json)")
    if not args.root:
        sys.exit(f"{script}.py: give --root (the RAVDESS folder) or set KERAS_HRF_RAVDESS")
    return args


def test_splits(args) -> Iterator[tuple]:
    """Per run folder of ``args.runs``: ``(run_dir, run, config, x, y)``, the loaded run
    (:func:`keras_hrf.training.load_run`), its ``config.json`` and its test speakers' normalised
    features and labels (features from the cache, read once for all runs)."""
    from data_prep import encode_labels, load_features
    from keras_hrf.training import load_run

    feats, manifest, _ = load_features("ravdess", args.root, args.cache, progress=False)
    y_all, _ = encode_labels(manifest["emotion"])
    for run_dir in args.runs:
        run = load_run(run_dir)
        config = json.loads((run_dir / "config.json").read_text())
        test = manifest["speaker"].astype(str).isin(config["split"]["test_speakers"]).to_numpy()
        yield run_dir, run, config, run.normalizer.transform(feats[test]), y_all[test]


def int8_predictions(flat: bytes, x):
    """Class predictions of an int8 flatbuffer in LiteRT for normalised float features ``x``."""
    from data_prep.int8 import quantize
    from keras_hrf.device import runtimes
    from keras_hrf.export.flatbuffer import as_input_batch

    detail = runtimes.litert_interpreter(flat).get_input_details()[0]
    x_int8 = quantize(as_input_batch(x, detail["shape"]), *detail["quantization"])
    return runtimes.run_litert(flat, x_int8)[0].argmax(-1)
