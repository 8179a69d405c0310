"""int8 accuracy of the device-graph cuts on trained runs: the graph as trained against today's.

Usage::

    python benchmarks/device_graph_ua.py RUN_DIR [RUN_DIR ...] [--root RAVDESS_ROOT]

``benchmarks/device_cost.py`` measures what the export's graph rewrites save on Cortex-M; they
keep the float function, but the int8 model is calibrated and rounded anew, so this measures
what they cost in accuracy. Each run folder (e.g. ``results/ravdess/runs/ds_cnn/light/*``) is
converted twice from its merged weights and its own calibration data (``representative.npy``):

- *as trained*: the merged model as saved (ds_cnn's global pool a MEAN), its convolutions
  converted as they are (``space_to_depth=False, one_channel_depthwise=False``);
- *today*: the same weights in the graph ``keras_hrf.models.build`` makes now (ds_cnn's pool an
  AVERAGE_POOL_2D), converted with the default rewrites (ds_cnn's space-to-depth stem, the
  Transformers' one-channel convolution as a depthwise one).

Both run under LiteRT on the run's test speakers (``config.json``; features from the cache,
``--root`` or ``KERAS_HRF_RAVDESS``). Per run: int8 UA, agreement of the two int8 models; then the
paired difference over the runs. Prints a Markdown table and writes
``benchmarks/results/device_graph_ua.json``.
"""

from __future__ import annotations

import os
import sys

import trained_runs

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
    args = trained_runs.parse_args("device_graph_ua", __doc__.split("\n")[0], argv)

    import numpy as np
    import pandas as pd

    from keras_hrf import reports
    from keras_hrf.experiments.statistics import paired_difference
    from keras_hrf.export import convert
    from keras_hrf.export.flatbuffer import parse
    from keras_hrf.training.metrics import classification_metrics

    rows = []
    for i, (run_dir, run, config, x, y) in enumerate(trained_runs.test_splits(args)):
        representative = np.load(run_dir / "representative.npy")
        graphs = {
            "as_trained": convert(
                run.merged, representative, space_to_depth=False, one_channel_depthwise=False
            ),
            "today": convert(_todays_graph(run, config), representative),
        }
        row = {"run": str(run_dir)}
        preds = {}
        for name, flat in graphs.items():
            preds[name] = trained_runs.int8_predictions(flat, x)
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
