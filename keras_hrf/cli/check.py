"""``keras-hrf check``: an int8 ``.tflite`` under LiteRT and TFLite Micro (and, per layer, the
int8 error against the float model)."""

from __future__ import annotations

from pathlib import Path

from keras_hrf.cli.common import add_parser

EPILOG = """
    examples:
      keras-hrf check device/model_int8.tflite
      keras-hrf check runs/x/device/model_int8.tflite --layers   # per-layer int8 error
      keras-hrf check model_int8.tflite --layers --keras model_merged.keras --data rep.npy
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
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    import numpy as np

    from keras_hrf import export

    path = Path(args.tflite)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
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
