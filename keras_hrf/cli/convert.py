"""``keras-hrf convert``: int8 export of a run folder (or a merged ``.keras``) to device files."""

from __future__ import annotations

from pathlib import Path

from keras_hrf.cli.common import add_parser

EPILOG = """
    examples:
      keras-hrf convert runs/x --out device/          # a run folder: everything known
      keras-hrf convert model_merged.keras --data rep.npy --meta-from runs/x --out device/
      keras-hrf convert runs/conformer --out device/ --layer-norm l2   # LayerNorm as
                                                # L2_NORMALIZATION: better int8 (conformer)
      keras-hrf convert runs/ds_cnn --out device/ --per-tensor   # 1.1x the weights in flash
    """


def convert_command_parser(sub):
    p = add_parser(
        sub,
        "convert",
        "convert a run folder (or merged .keras) to int8 TFLite + device files",
        EPILOG,
    )
    p.add_argument("model", help="run folder, or a merged .keras model")
    p.add_argument("--out", required=True, help="output folder for the device artefacts")
    p.add_argument(
        "--data",
        default=None,
        help="representative data (.npy of normalised features) for a bare .keras",
    )
    p.add_argument(
        "--meta-from",
        default=None,
        help="run folder whose labels / feature params / normaliser to use",
    )
    p.add_argument(
        "--layer-norm",
        choices=["rsqrt", "l2", "pool"],
        default=None,
        help="TFLite form of every LayerNorm (same float function): rsqrt (as trained), l2 "
        "(L2_NORMALIZATION, precise on quiet frames) or pool (means as AVERAGE_POOL_2D, "
        "faster with CMSIS-NN)",
    )
    p.add_argument(
        "--per-tensor",
        action="store_true",
        help="one int8 scale per weight tensor instead of per channel: ~18 KB smaller, no "
        "measurable UA loss on RAVDESS (benchmarks/per_tensor.py); ds_cnn only (a Transformer's "
        "3-D FULLY_CONNECTED aborts under CMSIS-NN per-tensor and is refused)",
    )
    p.add_argument(
        "--no-space-to-depth",
        action="store_true",
        help="convert a strided convolution over one channel (ds_cnn's stem) as it is, not as "
        "space-to-depth + stride-1 CONV_2D (same function, 9 %% fewer Cortex-M4 instructions)",
    )
    p.add_argument(
        "--no-one-channel-depthwise",
        action="store_true",
        help="convert a convolution over one input channel (the Transformers' first stem "
        "convolution) as CONV_2D, not as the DEPTHWISE_CONV_2D it equals (same function and "
        "weights, 1.5 M fewer Cortex-M4 instructions for the light Conformer)",
    )
    p.add_argument(
        "--no-micro-slim",
        action="store_true",
        help="model_data.cc holds model_int8.tflite as it is, not the copy slimmed for TFLite "
        "Micro (one zero point per weight tensor, one scale per bias, no names: 16 KB less "
        "flash for the light ds_cnn)",
    )
    p.add_argument(
        "--tflm-kernels-only",
        action="store_true",
        help="op_resolver.h registers TFLM's kernels only, not the project's int8 kernels "
        "(LOGISTIC / SOFTMAX tables, MEAN over adjacent axes, table-rescaled ADD / SUB, "
        "broadcast MUL: the same outputs, about half the Cortex-M4 instructions of the light "
        "Conformer)",
    )
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    import numpy as np

    from keras_hrf import export
    from keras_hrf.cli.merge import load_keras
    from keras_hrf.training import load_run

    src = Path(args.model)
    if src.is_dir():
        run_folder = load_run(src)
        model, meta_run = run_folder.merged, run_folder
        rep = np.load(src / "representative.npy")
    else:
        if not args.data or not args.meta_from:
            raise ValueError(
                "a bare .keras model needs --data REP.npy and --meta-from RUN_DIR "
                "(labels, feature parameters and normaliser); or pass a run folder"
            )
        model, meta_run = load_keras(src), load_run(args.meta_from)
        rep = np.load(args.data)
    result = export.export(
        model,
        args.out,
        representative_data=rep,
        labels=meta_run.labels,
        feature_params=meta_run.feature_params,
        normalizer=meta_run.normalizer,
        origin={
            "family": meta_run.config.family,
            "size": meta_run.config.size,
            "hrf": meta_run.config.hrf,
        },
        overwrite=args.overwrite,
        layer_norm=args.layer_norm,
        per_channel=not args.per_tensor,
        space_to_depth=not args.no_space_to_depth,
        one_channel_depthwise=not args.no_one_channel_depthwise,
        micro_slim=not args.no_micro_slim,
        project_kernels=not args.tflm_kernels_only,
    )
    print(result.report.to_markdown())
    print(f"device artefacts written to {args.out}")
    return 0
