"""``keras-hrf merge``: deHRF a ``.keras`` model (every HRF layer into its plain layer)."""

from __future__ import annotations

from pathlib import Path

from keras_hrf.cli.common import add_parser

EPILOG = """
    examples:
      keras-hrf merge runs/x/model.keras --out model_merged.keras
    """


def merge_command_parser(sub):
    p = add_parser(
        sub, "merge", "merge the HRF layers of a .keras model into plain layers (deHRF)", EPILOG
    )
    p.add_argument("model", help="a .keras model with HRF layers")
    p.add_argument("--out", required=True, help="the merged .keras file")
    p.set_defaults(handler=run)
    return p


def load_keras(path):
    """A ``.keras`` file as a model (``safe_mode``), or a one-line user error."""
    import keras

    if not Path(path).is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ValueError(
            f"cannot read {path} as a Keras model ({exc}); pass a .keras file written by keras-hrf"
        ) from exc


def run(args) -> int:
    from keras_hrf import models, reparam

    model = load_keras(args.model)
    if not reparam.has_hrf(model):
        print(f"note: {args.model} has no HRF layers; writing an equivalent copy")
    merged = reparam.merge(model)
    merged.save(args.out)
    print(
        f"merged: {model.count_params():,} -> {merged.count_params():,} parameters, "
        f"{models.count_macs(model):,} -> {models.count_macs(merged):,} MACs; wrote {args.out}"
    )
    return 0
