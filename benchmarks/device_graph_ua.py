"""int8 accuracy of the device-graph cuts on trained runs: the graph as trained against today's.

Usage::

    python benchmarks/device_graph_ua.py RUN_DIR [RUN_DIR ...] [--root RAVDESS_ROOT]

``benchmarks/device_cost.py`` measures what the export's graph rewrites save on Cortex-M; they
keep the float function, but the int8 model is calibrated and rounded anew, so this measures
what they cost in accuracy. Each run folder (e.g. ``results/ravdess/runs/ds_cnn/light/*``) is
converted twice from its merged weights and its own calibration data (``representative.npy``):

- *as trained*: the merged model as saved (ds_cnn's global pool a MEAN), its stem converted as
  one strided CONV_2D (``space_to_depth=False``);
- *today*: the same weights in the graph ``keras_hrf.models.build`` makes now (the pool an
  AVERAGE_POOL_2D), converted with the default rewrites (the space-to-depth stem).

Both run under LiteRT on the run's test speakers (``config.json``; features from the cache,
``--root`` or ``KERAS_HRF_RAVDESS``). Per run: int8 UA, agreement of the two int8 models; then the
paired difference over the runs. Prints a Markdown table and writes
``benchmarks/results/device_graph_ua.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _todays_graph(run, config: dict):
    """The run's merged weights in the graph ``models.build`` makes today (same layer names).

    Raises:
        SystemExit: a layer of either model without its counterpart (another architecture).
    """
    from keras_hrf import models

    train = config["train"]
    model = models.build(
        train["family"],
        train["size"],
        input_shape=tuple(run.merged.inputs[0].shape[1:]),
        num_classes=len(run.labels),
        **(train.get("model_overrides") or {}),
    )
    old = {layer.name: layer for layer in run.merged.layers if layer.weights}
    new = {layer.name: layer for layer in model.layers if layer.weights}
    if set(old) != set(new):
        sys.exit(
            f"device_graph_ua.py: {run.path}: layers with weights differ from today's "
            f"{train['family']} {train['size']}: {sorted(set(old) ^ set(new))}"
        )
    for name, layer in new.items():
        layer.set_weights(old[name].get_weights())
    return model


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--root", default=os.environ.get("KERAS_HRF_RAVDESS"))
    parser.add_argument("--cache", default=".cache/features")
    parser.add_argument("--out", default="benchmarks/results/device_graph_ua.json")
    args = parser.parse_args(argv)
    for run in args.runs:
        if not (run / "metrics.json").is_file():
            sys.exit(f"device_graph_ua.py: {run} is not a finished run folder (no metrics.json)")
    if not args.root:
        sys.exit("device_graph_ua.py: give --root (the RAVDESS folder) or set KERAS_HRF_RAVDESS")

    import numpy as np
    import pandas as pd

    from data_prep import encode_labels, load_features
    from data_prep.int8 import quantize
    from keras_hrf import reports
    from keras_hrf.device import runtimes
    from keras_hrf.experiments.statistics import paired_difference
    from keras_hrf.export import convert
    from keras_hrf.export.flatbuffer import as_input_batch, parse
    from keras_hrf.training import load_run
    from keras_hrf.training.metrics import classification_metrics

    feats, manifest, _ = load_features("ravdess", args.root, args.cache, progress=False)
    y_all, _ = encode_labels(manifest["emotion"])
    rows = []
    for i, run_dir in enumerate(args.runs):
        run = load_run(run_dir)
        config = json.loads((run_dir / "config.json").read_text())
        test = manifest["speaker"].astype(str).isin(config["split"]["test_speakers"]).to_numpy()
        x, y = run.normalizer.transform(feats[test]), y_all[test]
        representative = np.load(run_dir / "representative.npy")
        graphs = {
            "as_trained": convert(run.merged, representative, space_to_depth=False),
            "today": convert(_todays_graph(run, config), representative),
        }
        row = {"run": str(run_dir)}
        preds = {}
        for name, flat in graphs.items():
            detail = runtimes.litert_interpreter(flat).get_input_details()[0]
            x_int8 = quantize(as_input_batch(x, detail["shape"]), *detail["quantization"])
            preds[name] = runtimes.run_litert(flat, x_int8)[0].argmax(-1)
            row[name] = {
                "ops": sorted(set(parse(flat).op_names)),
                "int8_ua": classification_metrics(y, preds[name], run.labels)["ua"],
            }
        row["argmax_agreement"] = float(np.mean(preds["as_trained"] == preds["today"]))
        rows.append(row)
        print(
            f"[{i + 1}/{len(args.runs)}] {run_dir}: int8 UA "
            f"{100 * row['as_trained']['int8_ua']:.1f} -> {100 * row['today']['int8_ua']:.1f}, "
            f"agreement {100 * row['argmax_agreement']:.1f} %",
            file=sys.stderr,
            flush=True,
        )
    print(
        reports.markdown_table(
            ["run", "int8 UA as trained -> today", "argmax agreement"],
            [
                [
                    r["run"],
                    f"{100 * r['as_trained']['int8_ua']:.1f} -> {100 * r['today']['int8_ua']:.1f}",
                    f"{100 * r['argmax_agreement']:.1f} %",
                ]
                for r in rows
            ],
        )
    )
    ua = {
        name: pd.Series([r[name]["int8_ua"] for r in rows], index=[r["run"] for r in rows])
        for name in ("as_trained", "today")
    }
    paired = paired_difference(ua["as_trained"], ua["today"])
    summary = {
        "runs": len(rows),
        "paired_int8_ua_today_minus_as_trained": paired,
        "mean_argmax_agreement": float(np.mean([r["argmax_agreement"] for r in rows])),
    }
    print(
        f"\ntoday minus as trained over {len(rows)} runs: int8 UA "
        f"{100 * paired['mean_diff']:+.2f} points (95 % CI [{100 * paired['ci95'][0]:+.2f}, "
        f"{100 * paired['ci95'][1]:+.2f}]), argmax agreement "
        f"{100 * summary['mean_argmax_agreement']:.1f} %"
    )
    reports.atomic_write_json(args.out, {"summary": summary, "runs": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
