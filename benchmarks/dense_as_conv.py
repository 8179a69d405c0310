"""Per-frame Dense layers as FULLY_CONNECTED or as 1x1 CONV_2D: which does CMSIS-NN run faster?

Usage::

    python benchmarks/dense_as_conv.py [--targets m4 m55]

The Transformers spend 40-45 % of their Cortex-M4 instructions in FULLY_CONNECTED over the
frames of a sequence (``benchmarks/device_cost.py``). CMSIS-NN's fully connected kernel runs
one frame at a time (``arm_nn_vec_mat_mult_t_s8``), its 1x1 convolution a matrix product over
all of them, so the same linears written as 1x1 ``Conv2D`` over a ``(T, 1, d)`` view might be
cheaper. Two models with the light presets' shapes (75 frames; a 256 -> 48 projection, then
48 -> 96 -> 48 -> 96 -> 48 with ReLU) differ only in that: ``fc`` (``Dense``) and ``conv``
(``Conv2D`` 1x1 between two RESHAPEs; the projection stays a Dense in both). Each is exported
with the firmware measured (:func:`keras_hrf.export.export`, untrained weights: instruction
counts do not depend on their values); the script prints instructions per MAC of the four
linears per target and writes ``benchmarks/results/dense_as_conv.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FRAMES, WIDTHS = 75, (96, 48, 96, 48)


def _model(kind: str, frames: int, bands: int):
    import keras

    inp = keras.Input((frames, bands))
    h = keras.layers.Reshape((FRAMES, frames * bands // FRAMES))(inp)
    h = keras.layers.Dense(48, name="proj")(h)
    if kind == "conv":
        h = keras.layers.Reshape((FRAMES, 1, 48))(h)
    for i, units in enumerate(WIDTHS):
        kw = {"activation": "relu", "name": f"linear{i}"}
        if kind == "conv":
            h = keras.layers.Conv2D(units, 1, **kw)(h)
        else:
            h = keras.layers.Dense(units, **kw)(h)
    if kind == "conv":
        h = keras.layers.Reshape((FRAMES, 48))(h)
    h = keras.layers.GlobalAveragePooling1D()(h)
    return keras.Model(inp, keras.layers.Dense(8, name="logits")(h))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", nargs="+", default=["m4", "m55"])
    parser.add_argument("--out", default="benchmarks/results/dense_as_conv.json")
    args = parser.parse_args(argv)

    import numpy as np

    from data_prep.features import FeatureParams, Normalizer
    from keras_hrf import reports
    from keras_hrf.device import firmware
    from keras_hrf.export import export

    trees = firmware.Trees.from_env()
    for target in args.targets:
        reason = firmware.missing(target, trees, "harness")
        if reason is not None:
            sys.exit(f"dense_as_conv.py: cannot build for {target}: {reason}")
    params = FeatureParams()
    x = np.random.default_rng(0).standard_normal((32, params.frames, params.n_mels))
    ones = np.ones(params.n_mels, "float32")
    widths = (48, *WIDTHS)
    macs = FRAMES * sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    tmp = Path(tempfile.mkdtemp(prefix="dense-as-conv-"))
    rows = {}
    for kind, op in (("fc", "FULLY_CONNECTED"), ("conv", "CONV_2D")):
        result = export(
            _model(kind, params.frames, params.n_mels),
            tmp / kind,
            representative_data=x.astype("float32"),
            labels=[f"class{i}" for i in range(8)],
            feature_params=params,
            normalizer=Normalizer(0 * ones, ones),
            num_samples=16,
            firmware=args.targets,
            firmware_inputs=1,
        )
        fw = result.firmware.to_dict()
        rows[kind] = {}
        for target, f in fw["targets"].items():
            ops = f["op_instructions"]
            # The projection and the classifier are FULLY_CONNECTED in both models.
            linear = ops.get(op, 0.0) if kind == "conv" else None
            rows[kind][target] = {"op_instructions": {k: round(v) for k, v in ops.items()},
                                  "instructions": f["instructions"]}  # fmt: skip
            if linear is not None:
                rows[kind][target]["linears_per_mac"] = round(linear / macs, 2)
    for target in args.targets:
        fc_total = rows["fc"][target]["instructions"]
        conv_total = rows["conv"][target]["instructions"]
        # fc: the four linears are what FULLY_CONNECTED costs beyond the conv model's.
        fc_linear = (
            rows["fc"][target]["op_instructions"]["FULLY_CONNECTED"]
            - rows["conv"][target]["op_instructions"]["FULLY_CONNECTED"]
        )
        rows["fc"][target]["linears_per_mac"] = round(fc_linear / macs, 2)
        print(
            f"{target}: the four linears ({macs:,} MACs) as FULLY_CONNECTED "
            f"{rows['fc'][target]['linears_per_mac']} instructions per MAC, as 1x1 CONV_2D "
            f"{rows['conv'][target]['linears_per_mac']}; whole models {fc_total / 1e6:.2f} M "
            f"vs {conv_total / 1e6:.2f} M instructions"
        )
    reports.atomic_write_json(args.out, {"macs_of_the_linears": macs, "models": rows})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
