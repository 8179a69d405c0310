"""Device cost of the light models on emulated Cortex-M: instructions, flash, RAM, flatbuffer.

Usage::

    python benchmarks/device_cost.py [--targets m4 m55] [--inputs 2] [--models LABEL ...]
    # the batch-norm Transformers (benchmarks/results/device_cost_batch_norm.json):
    python benchmarks/device_cost.py --models "conformer light batch-norm" \
        "conv_transformer light batch-norm" "speechformer light batch-norm" \
        --out benchmarks/results/device_cost_batch_norm.json

Needs the firmware tools and trees (``keras-hrf check --device`` says what is missing):
``KERAS_HRF_TFLM_TREE`` / ``KERAS_HRF_TFLM_TREE_CORTEX_M``, ``arm-none-eabi-g++``,
``qemu-system-arm``. Each model (untrained, seed 0: instruction counts do not depend on the
weights' values) is exported with :func:`keras_hrf.export.export` exactly as a run's export is,
which builds the real firmware and runs it under QEMU (``-icount shift=0``: one instruction per
virtual nanosecond, so SysTick ticks count instructions). Per model and target it reports
instructions per inference and per MAC, the five costliest op types, the ``main.cc`` firmware's
flash and RAM (GNU ld map) and the arena; per model the flatbuffer against its weights.

The flatbuffer figures are those of the C array the firmware flashes (``model_data.cc``: the
copy slimmed for TFLM, :func:`keras_hrf.export.slim.micro_flatbuffer`), beside the
``model_int8.tflite`` LiteRT gets. Cuts measured by undoing them on the same export: the tensor
names the export strips and newlib-nano (the firmware linked against the full newlib) on the
first model; the project's own kernels (:data:`keras_hrf.export.csource.PROJECT_KERNELS`: the
harness rebuilt with TFLM's kernels; in total and per op type) on the first model that has
those ops; the space-to-depth stem (exported again with ``space_to_depth=False`` and
``one_channel_depthwise=False``: one strided CONV_2D) and per-tensor weight scales (the
flatbuffer only) on ds_cnn; the one-channel convolution as a depthwise one (exported again with
``one_channel_depthwise=False``) on the first Transformer. Prints Markdown tables and writes
``benchmarks/results/device_cost.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from keras_hrf.export.csource import PROJECT_KERNELS  # noqa: E402

#: (label, family, size, model options): the light presets, the Conformer with ReLU, and the
#: Transformers with ``norm="batch"`` (pre-norm BatchNorms the converter folds into the Dense
#: layers after them: no normalisation op on the device).
MODELS = [
    ("conformer light", "conformer", "light", {}),
    ("conformer light relu", "conformer", "light", {"activation": "relu"}),
    ("ds_cnn light", "ds_cnn", "light", {}),
    ("conv_transformer light", "conv_transformer", "light", {}),
    ("speechformer light", "speechformer", "light", {}),
    ("conformer light batch-norm", "conformer", "light", {"norm": "batch"}),
    ("conv_transformer light batch-norm", "conv_transformer", "light", {"norm": "batch"}),
    ("speechformer light batch-norm", "speechformer", "light", {"norm": "batch"}),
]
#: Flash and RAM budgets of the issue (a Cortex-M4 board with 256 KiB flash and 96 KiB RAM).
FLASH_BUDGET, RAM_BUDGET = 256 * 1024, 96 * 1024


def _export(
    family,
    size,
    options,
    out: Path,
    targets,
    inputs: int,
    strip: bool = True,
    s2d: bool = True,
    depthwise: bool = True,
    per_channel: bool = True,
):
    """Export an untrained model into ``out`` (firmware measured on ``targets``); returns the
    :class:`keras_hrf.export.ExportResult`."""
    import numpy as np

    from data_prep.features import FeatureParams, Normalizer
    from keras_hrf import models
    from keras_hrf.export import export

    params = FeatureParams()
    model = models.build(family, size, num_classes=8, seed=0, **options)
    x = np.random.default_rng(0).standard_normal((64, params.frames, params.n_mels))
    ones = np.ones(params.n_mels, "float32")
    return export(
        model,
        out,
        representative_data=x.astype("float32"),
        labels=[f"class{i}" for i in range(8)],
        feature_params=params,
        normalizer=Normalizer(0 * ones, ones),
        origin={"family": family, "size": size, "options": options, "trained": False},
        num_samples=32,
        firmware=list(targets) or None,
        firmware_inputs=inputs,
        strip_names=strip,
        space_to_depth=s2d,
        one_channel_depthwise=depthwise,
        per_channel=per_channel,
    )


def _run_with_tflm_kernels(out: Path, target: str, trees, inputs: int):
    """The harness run (:class:`keras_hrf.device.firmware.HarnessRun`) of the export in ``out``
    with TFLM's kernels only: built from a copy whose op_resolver.h registers none of the
    project's own."""
    import shutil

    import numpy as np

    from keras_hrf.device import firmware
    from keras_hrf.export import csource, flatbuffer

    copy = out.parent / f"{out.name}_tflm_kernels"
    shutil.copytree(out, copy)
    info = flatbuffer.parse((out / "model_int8.tflite").read_bytes())
    resolver = csource.op_resolver_h(info.op_set, info.int8_ops, project_kernels=False)
    (copy / "op_resolver.h").write_text(resolver, encoding="utf-8")
    shape = info.input.shape[1:]
    x = np.random.default_rng(0).integers(-128, 128, (inputs, *shape)).astype(np.int8)
    return firmware.run_harness(copy, x, target, trees=trees)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", nargs="+", default=["m4", "m55"])
    parser.add_argument("--inputs", type=int, default=2, help="inputs the harness runs")
    parser.add_argument("--models", nargs="+", default=[m[0] for m in MODELS])
    parser.add_argument("--out", default="benchmarks/results/device_cost.json")
    args = parser.parse_args(argv)

    from keras_hrf.device import firmware

    trees = firmware.Trees.from_env()
    for target in args.targets:
        reason = firmware.missing(target, trees, "harness")
        if reason is not None:
            sys.exit(f"device_cost.py: cannot build for {target}: {reason}")
    chosen = [m for m in MODELS if m[0] in args.models]
    if not chosen:
        sys.exit(f"device_cost.py: --models must name some of {[m[0] for m in MODELS]}")

    tmp = Path(tempfile.mkdtemp(prefix="device-cost-"))
    rows, cuts = {}, {}
    for i, (label, family, size, options) in enumerate(chosen):
        print(f"[{i + 1}/{len(chosen)}] {label} ...", flush=True)
        out = tmp / label.replace(" ", "_")
        result = _export(family, size, options, out, args.targets, args.inputs)
        if result.firmware is None or not result.firmware.targets:
            sys.exit(f"device_cost.py: no firmware was measured: {result.firmware}")
        fw = result.firmware.to_dict()
        row = {"macs": fw["macs"], "weight_bytes": fw["weight_bytes"], "targets": {}}
        row["tflite_bytes"] = (out / "model_int8.tflite").stat().st_size
        row["flatbuffer_bytes"] = fw["flatbuffer"]["total"]  # the C array: slimmed for TFLM
        row["flatbuffer_over_weights"] = round(row["flatbuffer_bytes"] / fw["weight_bytes"], 3)
        row["flatbuffer_breakdown"] = fw["flatbuffer"]
        for target, f in fw["targets"].items():
            ops = sorted(f["op_instructions"].items(), key=lambda kv: -kv[1])
            row["targets"][target] = {
                "bit_identical": f["identical"] == f["inputs"],
                "instructions": f["instructions"],
                "instructions_per_mac": round(f["instructions"] / fw["macs"], 2),
                "top_ops": {k: round(v) for k, v in ops[:5]},
                "flash_total": f["flash_total"],
                "ram_total": f["ram_total"],
                "flash": f["flash"],
                "ram": f["ram"],
                "arena_used": f["arena_used"],
                "stack_used": f["stack_used"],
            }
        rows[label] = row
        target = args.targets[0]
        own = set(result.meta.ops) & set(PROJECT_KERNELS)
        if own and "project_kernels_model" not in cuts:
            cuts["project_kernels_model"], cuts["project_kernels_target"] = label, target
            cuts["project_kernels_ops"] = sorted(own)
            cuts["project_kernels_instructions"] = row["targets"][target]["instructions"]
            stock = _run_with_tflm_kernels(out, target, trees, args.inputs)
            cuts["tflm_kernels_instructions"] = stock.instructions_per_inference
            ours = fw["targets"][target]["op_instructions"]
            theirs = stock.op_instructions()
            cuts["kernel_op_instructions"] = {  # per op type: (TFLM's, the project's)
                op: [round(theirs.get(op, 0)), round(ours.get(op, 0))] for op in sorted(own)
            }
        one_channel = family != "ds_cnn"  # the Transformers' first convolution reads 1 channel
        if one_channel and "one_channel_depthwise_model" not in cuts:
            plain = _export(
                family, size, options, tmp / "conv", [target], args.inputs, depthwise=False
            )
            f = plain.firmware.to_dict()["targets"][target]
            cuts["one_channel_depthwise_model"] = label
            cuts["one_channel_depthwise_target"] = target
            cuts["one_channel_depthwise_instructions"] = row["targets"][target]["instructions"]
            cuts["one_channel_conv_instructions"] = f["instructions"]
            cuts["one_channel_depthwise_arena_used"] = row["targets"][target]["arena_used"]
            cuts["one_channel_conv_arena_used"] = f["arena_used"]
        if family == "ds_cnn" and "space_to_depth_model" not in cuts:
            # Against the stem as trained: one strided CONV_2D (not the depthwise rewrite, which
            # would take a one-channel stem that space-to-depth leaves).
            plain = _export(
                family, size, options, tmp / "no_s2d", [target], args.inputs, s2d=False,
                depthwise=False,
            )  # fmt: skip
            f = plain.firmware.to_dict()["targets"][target]
            cuts["space_to_depth_model"], cuts["space_to_depth_target"] = label, target
            cuts["space_to_depth_instructions"] = row["targets"][target]["instructions"]
            cuts["no_space_to_depth_instructions"] = f["instructions"]
            cuts["space_to_depth_flash_total"] = row["targets"][target]["flash_total"]
            cuts["no_space_to_depth_flash_total"] = f["flash_total"]
            cuts["space_to_depth_arena_used"] = row["targets"][target]["arena_used"]
            cuts["no_space_to_depth_arena_used"] = f["arena_used"]
            # Per-tensor weight scales (--per-tensor; ds_cnn only): the C array it flashes.
            tensor = _export(family, size, options, tmp / "per_tensor", [], 1, per_channel=False)
            cuts["per_tensor_model"] = label
            cuts["per_tensor_flatbuffer_bytes"] = tensor.meta.sizes["micro_bytes"]
            cuts["per_tensor_flatbuffer_over_weights"] = round(
                tensor.meta.sizes["micro_bytes"] / row["weight_bytes"], 3
            )
        if i == 0:  # the cuts, undone one at a time on the first model
            flat = (out / "model_int8.tflite").read_bytes()
            names = json.loads((out / "tensor_names.json").read_text())
            _export(family, size, options, tmp / "unstripped", [], 1, strip=False)
            full = (tmp / "unstripped" / "model_int8.tflite").stat().st_size
            cuts["tensor_names_bytes"] = full - len(flat)
            cuts["tensor_names_count"] = sum(len(v) for v in names.values())
            build = tmp / "full_newlib"
            firmware.build(out, target, "main", trees=trees, build_dir=build,
                           make_vars={"LIBC_SPECS": ""})  # fmt: skip
            fp = firmware.read_map(build / target / "main" / "app.map")
            cuts["newlib_nano_target"] = target
            cuts["full_newlib_flash_total"] = fp.flash_total
            cuts["newlib_nano_flash_saved"] = fp.flash_total - row["targets"][target]["flash_total"]
            cuts["full_newlib_ram_total"] = fp.ram_total

    print()
    print("| model | target | instructions | per MAC | top ops (M instructions) | flash | RAM |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, row in rows.items():
        for target, t in row["targets"].items():
            top = ", ".join(f"{k} {v / 1e6:.1f}" for k, v in list(t["top_ops"].items())[:3])
            print(
                f"| {label} | {target} | {t['instructions'] / 1e6:.1f} M | "
                f"{t['instructions_per_mac']} | {top} | {t['flash_total']:,} B | "
                f"{t['ram_total']:,} B |"
            )
    print()
    print("| model | flatbuffer flashed (C array) | model_int8.tflite | weights | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for label, row in rows.items():
        print(
            f"| {label} | {row['flatbuffer_bytes']:,} B | {row['tflite_bytes']:,} B | "
            f"{row['weight_bytes']:,} B | {row['flatbuffer_over_weights']} |"
        )
    print()
    print(f"cuts on {chosen[0][0]}: {json.dumps(cuts)}")
    result = {
        "models": rows,
        "cuts": cuts,
        "budgets": {"flash_bytes": FLASH_BUDGET, "ram_bytes": RAM_BUDGET},
        "inputs_per_target": args.inputs,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    from keras_hrf import reports

    reports.atomic_write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
