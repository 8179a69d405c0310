"""``keras-hrf check``: an int8 ``.tflite`` under LiteRT and TFLite Micro (and, per layer, the
int8 error against the float model)."""

from __future__ import annotations

import sys
from pathlib import Path

from keras_hrf.cli.common import add_parser

EPILOG = """
    examples:
      keras-hrf check device/model_int8.tflite
      keras-hrf check runs/x/device/model_int8.tflite --layers   # per-layer int8 error
      keras-hrf check model_int8.tflite --layers --keras model_merged.keras --data rep.npy
      keras-hrf check export/model_int8.tflite --device m4 --device m55   # real firmware:
                # TFLM + CMSIS-NN, run in QEMU: outputs vs Python TFLM, flash, RAM, instructions
    """


def check_command_parser(sub):
    p = add_parser(
        sub, "check", "run an int8 .tflite under LiteRT and TFLite Micro and report", EPILOG
    )
    p.add_argument("tflite", help="a .tflite file")
    p.add_argument("--samples", default=None, help=".npy of normalised features to feed")
    p.add_argument(
        "--layers",
        action="store_true",
        help="also report the int8 error of every layer against the float Keras model "
        "(TFLite's QuantizationDebugger), worst first, by op type",
    )
    p.add_argument(
        "--keras",
        default=None,
        help="with --layers: the float model (default: model_deployed.keras or "
        "model_merged.keras of the run folder that holds device/)",
    )
    p.add_argument(
        "--data",
        default=None,
        help="with --layers: .npy of normalised features to measure on (default: the run's "
        "representative.npy, which also calibrates the rebuilt int8 model)",
    )
    p.add_argument(
        "--layers-out",
        default=None,
        help="with --layers: also write quant_layers.md / .png / .json into this folder",
    )
    fw = p.add_argument_group("firmware (--device)")
    fw.add_argument(
        "--device",
        action="append",
        default=[],
        choices=["host", "m4", "m55"],
        help="build the real firmware for this target and run it (repeatable): host (TFLM "
        "reference kernels), m4 (Cortex-M4F, QEMU mps2-an386), m55 (Cortex-M55, QEMU "
        "mps3-an547), both with CMSIS-NN; needs make, g++ / arm-none-eabi-gcc, qemu-system-arm",
    )
    fw.add_argument(
        "--tflm-tree",
        default=None,
        help="TFLM tree (create_tflm_tree.py) for the host (default $KERAS_HRF_TFLM_TREE)",
    )
    fw.add_argument(
        "--tflm-tree-cortex-m",
        default=None,
        help="TFLM tree with CMSIS-NN for Cortex-M (default $KERAS_HRF_TFLM_TREE_CORTEX_M)",
    )
    fw.add_argument(
        "--inputs",
        type=int,
        default=32,
        help="with --device: how many inputs the firmware runs (default 32)",
    )
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    import numpy as np

    from keras_hrf import export

    path = Path(args.tflite)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    trees = _trees(args) if args.device else None  # missing tools fail before any work
    samples = np.load(args.samples) if args.samples else None
    report = export.check(path.read_bytes(), samples)
    print(report.to_markdown())
    if args.layers_out and not args.layers:
        raise ValueError("--layers-out needs --layers")
    if args.layers:
        layer_report = _layer_report(path, args.keras, args.data)
        print(layer_report.to_markdown())
        if args.layers_out:
            from keras_hrf import reports

            out = Path(args.layers_out)
            out.mkdir(parents=True, exist_ok=True)
            reports.atomic_write_text(out / "quant_layers.md", layer_report.to_markdown())
            reports.atomic_write_json(out / "quant_layers.json", layer_report.to_dict())
            layer_report.plot(out / "quant_layers.png")
            print(f"per-layer report written to {out}")
    if args.device:
        return _device_check(path, samples, args, trees)
    return 0


def _trees(args):
    """The trees of ``--device``, with every target checked before any work."""
    from keras_hrf.device import firmware

    env = firmware.Trees.from_env()
    trees = firmware.Trees(
        host=Path(args.tflm_tree) if args.tflm_tree else env.host,
        cortex_m=Path(args.tflm_tree_cortex_m) if args.tflm_tree_cortex_m else env.cortex_m,
        cmsis_dsp=env.cmsis_dsp,
    )
    if args.inputs < 1:
        raise ValueError(f"--inputs must be >= 1, got {args.inputs}")
    for target in dict.fromkeys(args.device):
        why = firmware.missing(target, trees)
        if why is not None:
            raise ValueError(f"--device {target}: {why}")
    return trees


def _export_of(folder: Path, flat: bytes) -> bool:
    """Whether ``folder`` is the export whose C sources hold ``flat`` (model_meta.json's hash)."""
    import hashlib
    import json

    from keras_hrf.device.meta import FILES, META_NAME

    try:
        meta = json.loads((folder / META_NAME).read_text())
        digest = meta["sha256"][FILES["int8"]]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    needed = ("c_source", "c_header", "op_resolver", "example_input")
    return digest == hashlib.sha256(flat).hexdigest() and all(
        (folder / FILES[r]).is_file() for r in needed
    )


def _device_check(path: Path, samples, args, trees) -> int:
    """``--device``: the real firmware on each target, against the Python TFLM interpreter."""
    import json
    import tempfile

    import numpy as np

    from data_prep import int8 as quant
    from keras_hrf.device import firmware
    from keras_hrf.device.meta import META_NAME
    from keras_hrf.device.runtimes import run_tflm
    from keras_hrf.export import firmware_report, flatbuffer, min_tflm_arena, slim

    flat = path.read_bytes()
    info = flatbuffer.parse(flat)
    if info.input.dtype != "INT8":
        raise ValueError(f"--device needs an int8 model; {path} takes {info.input.dtype}")
    if samples is None:
        shape = (args.inputs,) + tuple(info.input.shape[1:])
        samples = np.random.default_rng(0).standard_normal(shape).astype("float32")
    x = flatbuffer.as_input_batch(np.asarray(samples, "float32")[: args.inputs], info.input.shape)
    q = quant.quantize(x, *flatbuffer.quantization_params(info.input))
    reference, _ = run_tflm(flat, q, min_tflm_arena(flat))
    export_dir = path.parent
    # What the firmware flashes: the C array, slimmed for TFLM as an export writes it (an export
    # made with micro_slim=False holds the flatbuffer itself).
    micro = slim.micro_flatbuffer(flat)
    with tempfile.TemporaryDirectory(prefix="keras-hrf-check-") as tmp:
        # The export folder's C sources if they are of this very flatbuffer; else made here.
        if _export_of(export_dir, flat):
            meta = json.loads((export_dir / META_NAME).read_text())
            if meta.get("sizes", {}).get("micro_bytes") != len(micro):
                micro = flat
        else:
            example = int(np.argmax(reference.max(axis=-1)))
            export_dir = firmware_report.write_sources(
                flat, tmp, q[example], int(reference[example].argmax())
            )
        try:
            report = firmware_report.measure(
                export_dir,
                q,
                reference,
                targets=list(dict.fromkeys(args.device)),
                trees=trees,
                weight_bytes=info.weight_bytes,
                flatbuffer=slim.size_breakdown(micro),
            )
        except firmware.FirmwareError as exc:
            print(f"keras-hrf check: {exc}", file=sys.stderr)
            return 1
    print(report.to_markdown())
    if not report.ok:
        print(
            "keras-hrf check: the firmware's outputs differ from the Python TFLM interpreter's",
            file=sys.stderr,
        )
        return 1
    return 0


def _layer_report(path: Path, keras_path: str | None, data_path: str | None):
    """``keras-hrf check --layers``: the float model and data from the run folder or options."""
    import numpy as np

    from keras_hrf import export
    from keras_hrf.cli.merge import load_keras

    run_dir = path.resolve().parent.parent if path.resolve().parent.name == "device" else None
    if keras_path is None:
        found = [
            run_dir / name
            for name in ("model_deployed.keras", "model_merged.keras")
            if run_dir is not None and (run_dir / name).is_file()
        ]
        if not found:
            raise FileNotFoundError(
                f"--layers needs the float Keras model: no model_merged.keras in the run folder "
                f"of {path}; pass --keras PATH"
            )
        keras_path = found[0]
    rep_path = run_dir / "representative.npy" if run_dir is not None else None
    rep_path = rep_path if rep_path is not None and rep_path.is_file() else None
    data_path = data_path or rep_path
    if data_path is None:
        raise FileNotFoundError(
            f"--layers needs normalised features: no representative.npy in the run folder of "
            f"{path}; pass --data FILE.npy"
        )

    def load(p):
        if not Path(p).is_file():
            raise FileNotFoundError(f"{p} does not exist")
        try:
            return np.load(p)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read {p} as a .npy array ({exc})") from exc

    data = load(data_path)
    return export.quant_report(
        load_keras(keras_path),
        data,
        representative_data=load(rep_path) if rep_path is not None else data,
        int8_model=path.read_bytes(),
    )
