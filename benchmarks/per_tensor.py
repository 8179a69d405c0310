"""Per-tensor vs per-channel int8 weights on trained runs: flatbuffer bytes against int8 accuracy.

Usage::

    python benchmarks/per_tensor.py RUN_DIR [RUN_DIR ...] [--root RAVDESS_ROOT]

Each run folder (e.g. ``results/ravdess/runs/ds_cnn/light/fold*_seed0``) is converted twice from
its merged model and its own calibration data (``representative.npy``), once with the default
per-channel weight scales and once with one scale per weight tensor
(:func:`keras_hrf.export.convert` ``per_channel=False``), tensor names stripped as the export
does (``strict=False``: the export refuses per-tensor models with a 3-D FULLY_CONNECTED, which
CMSIS-NN aborts on; LiteRT runs them). Both run under LiteRT on the run's test speakers (from
its ``config.json``; features from the cache, ``--root`` or ``KERAS_HRF_RAVDESS``). Per run:
flatbuffer bytes, int8 UA, agreement with the float model; then the paired mean difference over
the runs. Prints a Markdown table and writes ``benchmarks/results/per_tensor.json``.
"""

from __future__ import annotations

import os
import sys

import trained_runs

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _p_text(p) -> str:
    """A Wilcoxon p-value, or why there is none (it needs >= 5 pairs)."""
    return "n/a (< 5 pairs)" if p is None else f"{p:.2f}"


def main(argv=None) -> int:
    args = trained_runs.parse_args("per_tensor", __doc__.split("\n")[0], argv)

    import numpy as np

    from keras_hrf import reports
    from keras_hrf.export import convert, slim
    from keras_hrf.training.metrics import classification_metrics

    rows = []
    for run_dir, run, _, x, y in trained_runs.test_splits(args):
        y_float = run.merged.predict(x, verbose=0, batch_size=256).argmax(-1)
        representative = np.load(run_dir / "representative.npy")
        row = {
            "run": str(run_dir),
            "float_ua": classification_metrics(y, y_float, run.labels)["ua"],
        }
        for name, per_channel in (("per_channel", True), ("per_tensor", False)):
            # strict=False: a per-tensor Transformer is refused by the export (CMSIS-NN aborts
            # on its 3-D FULLY_CONNECTED) but runs under LiteRT, which is what is measured here.
            flat = convert(run.merged, representative, per_channel=per_channel, strict=False)
            flat, _ = slim.strip_tensor_names(flat)
            y_int8 = trained_runs.int8_predictions(flat, x)
            breakdown = slim.size_breakdown(flat)
            row[name] = {
                "bytes": len(flat),
                "quantization_bytes": breakdown["quantization"],
                "weights_bytes": breakdown["weights"],
                "int8_ua": classification_metrics(y, y_int8, run.labels)["ua"],
                "agreement_with_float": float(np.mean(y_int8 == y_float)),
            }
        rows.append(row)
        pc, pt = row["per_channel"], row["per_tensor"]
        print(
            f"{run_dir}: {pc['bytes']:,} -> {pt['bytes']:,} B, int8 UA "
            f"{100 * pc['int8_ua']:.1f} -> {100 * pt['int8_ua']:.1f}",
            file=sys.stderr,
            flush=True,
        )
    diff = np.array([r["per_tensor"]["int8_ua"] - r["per_channel"]["int8_ua"] for r in rows])
    agree = np.array(
        [r["per_tensor"]["agreement_with_float"] - r["per_channel"]["agreement_with_float"]
         for r in rows]
    )  # fmt: skip
    table = reports.markdown_table(
        ["run", "bytes per-channel -> per-tensor", "x weights", "int8 UA", "agrees with float"],
        [
            [
                r["run"],
                f"{r['per_channel']['bytes']:,} -> {r['per_tensor']['bytes']:,}",
                f"{r['per_channel']['bytes'] / r['per_channel']['weights_bytes']:.2f} -> "
                f"{r['per_tensor']['bytes'] / r['per_tensor']['weights_bytes']:.2f}",
                f"{100 * r['per_channel']['int8_ua']:.1f} -> "
                f"{100 * r['per_tensor']['int8_ua']:.1f}",
                f"{100 * r['per_channel']['agreement_with_float']:.1f} -> "
                f"{100 * r['per_tensor']['agreement_with_float']:.1f} %",
            ]
            for r in rows
        ],
    )
    print(table)
    import pandas as pd

    from keras_hrf.experiments.statistics import paired_difference

    ua = {
        name: pd.Series([r[name]["int8_ua"] for r in rows], index=[r["run"] for r in rows])
        for name in ("per_channel", "per_tensor")
    }
    paired = paired_difference(ua["per_channel"], ua["per_tensor"])
    summary = {
        "runs": len(rows),
        "paired_int8_ua_per_tensor_minus_per_channel": paired,
        "mean_int8_ua_diff": float(diff.mean()),
        "int8_ua_diffs": diff.tolist(),
        "mean_agreement_diff": float(agree.mean()),
        "mean_bytes_saved": float(
            np.mean([r["per_channel"]["bytes"] - r["per_tensor"]["bytes"] for r in rows])
        ),
    }
    print(
        f"\nper-tensor minus per-channel over {len(rows)} runs: int8 UA "
        f"{100 * summary['mean_int8_ua_diff']:+.2f} points (95 % CI "
        f"[{100 * paired['ci95'][0]:+.2f}, {100 * paired['ci95'][1]:+.2f}], Wilcoxon p "
        f"{_p_text(paired['wilcoxon_p'])}), agreement with float "
        f"{100 * summary['mean_agreement_diff']:+.2f} points, "
        f"{summary['mean_bytes_saved']:,.0f} bytes saved"
    )
    reports.atomic_write_json(args.out, {"summary": summary, "rows": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
