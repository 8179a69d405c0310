"""How closely does the QAT fake-quant twin mirror the int8 flatbuffer, layer by layer?

Usage::

    python benchmarks/qat_mirror.py \
        --run results/ravdess/speaker_kfold/runs/conformer/light_hrf/fold0_seed0 \
        [--layer-norm l2] [--out benchmarks/results/qat_mirror.json]

For one trained run folder: prepares the QAT twin of its merged model
(:func:`keras_hrf.quantization.qat.prepare`, calibrated on the run's representative data, as
the converter calibrates), then for a few layers
(the first, every LayerNorm, the logits) converts the model truncated at that layer to full int8
(same calibration data) and measures, on ``--examples`` representative examples, the mean and
max distance to the int8 output (LiteRT) of the float model and of the twin, in int8 steps of
that layer's output. A twin that mirrors the int8 graph is much closer to it than the float
model is. Prints a Markdown table and writes ``benchmarks/results/qat_mirror.json``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="a run folder of a reproduction")
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument(
        "--layer-norm", choices=["rsqrt", "l2"], default=None, help="relower the LayerNorms first"
    )
    parser.add_argument("--out", default="benchmarks/results/qat_mirror.json")
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from data_prep import int8 as quant
    from keras_hrf import reparam, reports, tflite
    from keras_hrf.device import runtimes as check
    from keras_hrf.layers import LayerNorm
    from keras_hrf.quantization import qat
    from keras_hrf.training import load_run

    run_dir = Path(args.run)
    model = load_run(run_dir).merged
    if args.layer_norm:
        model = reparam.set_layer_norm_lowering(model, args.layer_norm)
    data = np.load(run_dir / "representative.npy")
    x = data[np.random.default_rng(0).permutation(len(data))[: args.examples]]
    twin = qat.prepare(model, calibration_data=data)
    layers = [lyr for lyr in model.layers if not isinstance(lyr, keras.layers.InputLayer)]
    picked = [layers[0]] + [lyr for lyr in layers if isinstance(lyr, LayerNorm)] + [layers[-1]]
    rows = []
    for layer in picked:
        sub = keras.Model(model.inputs[0], layer.output)
        sub_twin = keras.Model(twin.inputs[0], twin.get_layer(layer.name).output)
        flat = tflite.convert(sub, data, strict=False)
        it = check.litert_interpreter(flat)
        scale, zero = it.get_output_details()[0]["quantization"]
        out, _ = check.run_litert(
            flat, quant.quantize(x, *it.get_input_details()[0]["quantization"])
        )
        int8 = (out.astype(np.float64) - zero) * scale
        steps = {}
        for name, m in (("float", sub), ("twin", sub_twin)):
            y = keras.ops.convert_to_numpy(m(x, training=False)).reshape(int8.shape)
            d = np.abs(y - int8) / scale
            steps[name] = (float(d.mean()), float(d.max()))
        rows.append(
            {
                "layer": layer.name,
                "scale": float(scale),
                "float_mean_steps": steps["float"][0],
                "float_max_steps": steps["float"][1],
                "twin_mean_steps": steps["twin"][0],
                "twin_max_steps": steps["twin"][1],
            }
        )
        r = rows[-1]
        print(
            f"{r['layer']:24s} float {r['float_mean_steps']:.2f} (max {r['float_max_steps']:.0f})"
            f"  twin {r['twin_mean_steps']:.2f} (max {r['twin_max_steps']:.0f}) steps",
            flush=True,
        )
    table = reports.markdown_table(
        ["layer", "float vs int8, mean (max) steps", "twin vs int8, mean (max) steps"],
        [
            [
                r["layer"],
                f"{r['float_mean_steps']:.2f} ({r['float_max_steps']:.0f})",
                f"{r['twin_mean_steps']:.2f} ({r['twin_max_steps']:.0f})",
            ]
            for r in rows
        ],
    )
    print(table)
    result = {"run": str(run_dir), "layer_norm": args.layer_norm or "as trained", "rows": rows}
    reports.atomic_write_json(Path(args.out), result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
