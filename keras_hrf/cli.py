"""The ``keras-hrf`` command line.

User errors (a missing folder, an unknown corpus or family, an unreadable model, bad audio) are
printed as one line with what to do, and exit with status 2; ``--verbose`` shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import textwrap
from pathlib import Path

EXIT_USAGE = 2

EPILOGS = {
    "demo": """
        examples:
          keras-hrf demo --quick                      # ~1 minute, synthetic corpus
          keras-hrf demo --out demo_out               # light, light+HRF and large
          keras-hrf demo --corpus ravdess --root ../shared/data/ravdess_speech_16k \\
              --folds-file ../shared/data/ravdess_speech_16k/folds_emobox.json
        """,
    "train": """
        examples:
          keras-hrf train --corpus ravdess --root DATA --family conformer --size light \\
              --hrf --out runs/conformer_hrf
          keras-hrf train --corpus synthetic --root demo_out/data --hrf-expansion 4 \\
              --hrf-sites ffn_in ffn_out --out runs/x
        """,
    "evaluate": """
        examples:
          keras-hrf evaluate runs/conformer_hrf --corpus ravdess --root DATA
        """,
    "reproduce": """
        examples:
          keras-hrf reproduce --corpus ravdess --root DATA --seeds 3 --folds 6 --out results/x
          keras-hrf reproduce --corpus ravdess --root DATA --folds-file DATA/folds_emobox.json \\
              --families ds_cnn --variants light light+hrf --out results/x
          keras-hrf reproduce --corpus ravdess --root DATA --families conv_transformer \\
              --variants light light+hrf --out results/x     # resumable: run it again
          keras-hrf reproduce --corpus ravdess --root DATA --families conv_transformer \
              --variants light+hrf:expansion=4 light+hrf:sites=ffn_in/ffn_out \
              light+hrf:factor_init=identity --out results/x   # an HRF ablation
        """,
    "quantization": """
        examples:
          keras-hrf reproduce --corpus ravdess --root DATA --variants light+hrf light+qhrf \
              --out results/x                                   # the runs it compares
          keras-hrf quantization --corpus ravdess --root DATA --out results/x --seeds 1
        """,
    "prepare": """
        examples:
          keras-hrf prepare --corpus ravdess --root DATA --cache .cache/features
          keras-hrf prepare --synthetic data/synthetic --speakers 8 --per-class 12
        """,
    "merge": """
        examples:
          keras-hrf merge runs/x/model.keras --out model_merged.keras
        """,
    "convert": """
        examples:
          keras-hrf convert runs/x --out device/          # a run folder: everything known
          keras-hrf convert model_merged.keras --data rep.npy --meta-from runs/x --out device/
          keras-hrf convert runs/conformer --out device/ --layer-norm l2   # LayerNorm as
                                                    # L2_NORMALIZATION: better int8 (conformer)
        """,
    "check": """
        examples:
          keras-hrf check device/model_int8.tflite
          keras-hrf check runs/x/device/model_int8.tflite --layers   # per-layer int8 error
          keras-hrf check model_int8.tflite --layers --keras model_merged.keras --data rep.npy
        """,
    "models": """
        examples:
          keras-hrf models
        """,
    "stream": """
        examples:
          keras-hrf stream meeting.wav --model runs/x/device
          keras-hrf stream call.flac --model device/ --hop 0.25 --smooth 5
          keras-hrf stream call.flac --model device/ --smoothing ema --precision q15
        """,
}


def _add_corpus_args(p, required=True):
    p.add_argument("--corpus", required=required, help="corpus name (see 'keras-hrf models')")
    p.add_argument("--root", required=required, help="the corpus' top folder")


def _add_train_args(p):
    p.add_argument(
        "--family",
        default="conv_transformer",
        help="conv_transformer | conformer | speechformer | ds_cnn",
    )
    p.add_argument("--epochs", type=int, default=None, help="maximum epochs")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--patience", type=int, default=15, help="early stopping on validation UA")
    p.add_argument("--hrf-expansion", type=float, default=None, help="HRF inner width / d")
    p.add_argument(
        "--hrf-sites",
        nargs="+",
        default=None,
        help="HRF sites: ffn_in ffn_out attention merge (default ffn_in)",
    )
    p.add_argument("--hrf-depth", type=int, default=None, help="factors per HRF layer")
    p.add_argument("--hrf-init", choices=["glorot", "identity"], default=None)
    p.add_argument(
        "--hrf-lr-scale", type=float, default=None, help="learning-rate multiplier of the factors"
    )
    p.add_argument("--hrf-weight-decay", type=float, default=None, help="L2 penalty on the factors")
    p.add_argument(
        "--qat",
        action="store_true",
        help="quantization-aware HRF: fake-quantize the merged kernel in training",
    )
    p.add_argument(
        "--qat-epochs",
        type=int,
        default=0,
        help="quantization-aware fine-tuning of the merged model for N epochs before export",
    )
    p.add_argument(
        "--exclude-floor",
        action="store_true",
        help="fit the normaliser without log-floor (digital silence) values",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-hrf",
        description="Train HRF lightweight Transformers for speech emotion recognition, merge "
        "them (deHRF) and export int8 TFLite for TFLite Micro and LiteRT.",
    )
    parser.add_argument("--verbose", action="store_true", help="show tracebacks of errors")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for TensorFlow (1 per process is fastest when running runs in "
        "parallel, one per core)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, help_):
        return sub.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=textwrap.dedent(EPILOGS[name]),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    p = add(
        "demo",
        "the main job: synthetic (or real) corpus -> light vs light+HRF (vs large) "
        "-> merge -> int8 -> TFLM check -> report",
    )
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--quick", action="store_true", help="small corpus, few epochs, no large")
    _add_corpus_args(p, required=False)
    p.add_argument("--family", default="conv_transformer")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--folds-file",
        default=None,
        help="published folds: JSON with the test speakers of each fold (e.g. EmoBox's "
        "folds_emobox.json beside the RAVDESS copy); replaces --folds",
    )
    p.add_argument(
        "--qat",
        action="store_true",
        help="train the HRF variant quantization-aware (light+qhrf instead of light+hrf)",
    )
    p.add_argument(
        "--qat-epochs",
        type=int,
        default=0,
        help="quantization-aware fine-tuning of every merged model before export",
    )

    p = add("train", "train one model on a speaker-independent split and write a run folder")
    _add_corpus_args(p)
    _add_train_args(p)
    p.add_argument("--size", default="light", help="light | tiny | large (see keras-hrf models)")
    p.add_argument("--hrf", action="store_true", help="train with HRF (the paper's default)")
    p.add_argument("--folds", type=int, default=6, help="speaker folds of the split")
    p.add_argument(
        "--folds-file",
        default=None,
        help="published folds: JSON with the test speakers of each fold (e.g. EmoBox's "
        "folds_emobox.json beside the RAVDESS copy); replaces --folds",
    )
    p.add_argument("--fold", type=int, default=0, help="which fold is the test part")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=".cache/features", help="feature cache folder")
    p.add_argument("--no-export", action="store_true", help="skip the int8 device artefacts")
    p.add_argument("--out", required=True, help="run folder to write")

    p = add("evaluate", "evaluate a run folder: float, merged float and int8 (LiteRT) side by side")
    p.add_argument("run", help="run folder (from train/demo)")
    _add_corpus_args(p)
    p.add_argument("--cache", default=".cache/features")

    p = add(
        "quantization",
        "int8 fidelity of the reproduction's light+HRF runs: PTQ vs QAT vs quantization-aware HRF",
    )
    _add_corpus_args(p)
    p.add_argument("--out", required=True, help="the reproduction's output folder")
    p.add_argument(
        "--families", nargs="+", default=["conv_transformer", "conformer", "speechformer"]
    )
    p.add_argument("--seeds", type=int, default=1, help="number of seeds (0..N-1)")
    p.add_argument("--folds", type=int, default=6, help="speaker folds")
    p.add_argument("--only-folds", type=int, nargs="+", default=None)
    p.add_argument("--qat-epochs", type=int, default=5)
    p.add_argument("--qat-lr", type=float, default=1e-4)
    p.add_argument("--cache", default=None, help="feature cache folder (default OUT/cache)")
    p.add_argument(
        "--control",
        action="store_true",
        help="also fine-tune without fake quantization (then PTQ): what more epochs alone give",
    )
    p.add_argument(
        "--l2",
        action="store_true",
        help="also convert each merged model with LayerNorm as L2_NORMALIZATION (method ptq_l2)",
    )
    p.add_argument(
        "--report-only", action="store_true", help="fine-tune nothing: summarise what exists"
    )

    p = add("reproduce", "the paper's comparison over speaker folds x seeds (resumable)")
    _add_corpus_args(p)
    _add_train_args(p)
    p.add_argument(
        "--families", nargs="+", default=["conv_transformer", "conformer", "speechformer"]
    )
    p.add_argument(
        "--variants",
        nargs="+",
        default=["light", "light+hrf", "large"],
        help="light | light+hrf | light+qhrf | large; HRF options after ':' for an ablation, "
        "e.g. light+hrf:expansion=4,factor_lr_scale=0.3 (keys of HRFConfig; '/' separates sites)",
    )
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1)")
    p.add_argument("--folds", type=int, default=6, help="speaker folds")
    p.add_argument(
        "--folds-file",
        default=None,
        help="published folds: JSON with the test speakers of each fold (e.g. EmoBox's "
        "folds_emobox.json beside the RAVDESS copy); replaces --folds",
    )
    p.add_argument(
        "--only-folds", type=int, nargs="+", default=None, help="run only these fold indices"
    )
    p.add_argument(
        "--only-seeds",
        type=int,
        nargs="+",
        default=None,
        help="run only these seeds (e.g. one seed over every fold first, the next later)",
    )
    p.add_argument("--cache", default=None, help="feature cache folder (default OUT/cache)")
    p.add_argument(
        "--no-export",
        action="store_true",
        help="skip int8 export per run (a later run without it back-fills them)",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: summarise the runs that have finished",
    )
    p.add_argument("--out", required=True)

    p = add("prepare", "write a corpus manifest and its cached features (or a synthetic corpus)")
    _add_corpus_args(p, required=False)
    p.add_argument("--synthetic", default=None, help="generate the synthetic corpus here")
    p.add_argument("--speakers", type=int, default=8)
    p.add_argument("--per-class", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=".cache/features")

    p = add("merge", "merge the HRF layers of a .keras model into plain Dense layers (deHRF)")
    p.add_argument("model", help="a .keras model with HRF layers")
    p.add_argument("--out", required=True, help="the merged .keras file")

    p = add("convert", "convert a run folder (or merged .keras) to int8 TFLite + device files")
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
        choices=["rsqrt", "l2"],
        default=None,
        help="TFLite form of every LayerNorm (same float function): rsqrt (as trained) or l2 "
        "(L2_NORMALIZATION, precise on quiet frames; better int8 for the conformer)",
    )
    p.add_argument("--overwrite", action="store_true")

    p = add("check", "run an int8 .tflite under LiteRT and TFLite Micro and report")
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

    add("models", "list model families and presets with parameters and MACs, and the corpora")

    p = add(
        "stream",
        "emotion timeline of a long recording: sliding windows through the device front-end "
        "(CMSIS-DSP) and the int8 model under TFLite Micro",
    )
    p.add_argument("audio", help="an audio file (any format and rate libsndfile reads)")
    p.add_argument("--model", required=True, help="export folder (model_int8.tflite + meta)")
    p.add_argument("--hop", type=float, default=0.5, help="seconds between windows (default 0.5)")
    p.add_argument(
        "--smooth", type=int, default=3, help="windows of posterior smoothing (1 = none)"
    )
    p.add_argument(
        "--smoothing",
        choices=["median", "ema"],
        default="median",
        help="centred running median (default) or the firmware's causal moving average",
    )
    p.add_argument(
        "--precision",
        choices=["f32", "q15"],
        default="f32",
        help="device front-end: arm_mfcc_f32 (default) or the fixed-point arm_mfcc_q15",
    )
    return parser


def _train_config(args, **extra):
    from keras_hrf.train import TrainConfig

    hrf = None
    if (
        getattr(args, "hrf", False)
        or any(
            getattr(args, k, None) is not None
            for k in (
                "hrf_expansion",
                "hrf_sites",
                "hrf_depth",
                "hrf_init",
                "hrf_lr_scale",
                "hrf_weight_decay",
            )
        )
        or args.qat
    ):
        hrf = {}
        if args.hrf_expansion is not None:
            hrf["expansion"] = args.hrf_expansion
        if args.hrf_sites is not None:
            hrf["sites"] = list(args.hrf_sites)
        if args.hrf_depth is not None:
            hrf["depth"] = args.hrf_depth
        if args.hrf_init is not None:
            hrf["factor_init"] = args.hrf_init
        if args.hrf_lr_scale is not None:
            hrf["factor_lr_scale"] = args.hrf_lr_scale
        if args.hrf_weight_decay is not None:
            hrf["factor_weight_decay"] = args.hrf_weight_decay
        if args.qat:
            hrf["quantize_merged"] = True
    kw = dict(
        family=args.family,
        hrf=hrf,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing,
        patience=args.patience,
        exclude_floor=args.exclude_floor,
        qat_epochs=args.qat_epochs,
    )
    if args.epochs is not None:
        kw["epochs"] = args.epochs
    kw.update(extra)
    return TrainConfig(**kw)


def _cmd_demo(args):
    from keras_hrf.experiment import demo

    table = demo(
        args.out,
        quick=args.quick,
        corpus=args.corpus,
        root=args.root,
        family=args.family,
        seed=args.seed,
        epochs=args.epochs,
        qat=args.qat,
        qat_epochs=args.qat_epochs,
        folds_file=args.folds_file,
    )
    print()
    print((Path(args.out) / "REPORT.md").read_text())
    print(f"report: {Path(args.out) / 'REPORT.md'}; runs: {Path(args.out) / 'runs'}")
    return 0 if len(table) else 1


def _cmd_train(args):
    from keras_hrf.experiment import load_features, make_folds
    from keras_hrf.runs import save_run
    from keras_hrf.train import fit

    feats, manifest, params = load_features(
        args.corpus, args.root, args.cache, folds_file=args.folds_file
    )
    folds, _ = make_folds(manifest, args.folds, args.folds_file)
    if not 0 <= args.fold < len(folds):
        raise ValueError(f"--fold must be in 0..{len(folds) - 1}")
    cfg = _train_config(args, size=args.size, seed=args.seed)
    result = fit(cfg, feats, manifest, folds[args.fold], feature_params=params)
    out = save_run(result, args.out, export=not args.no_export)
    print((out / "REPORT.md").read_text())
    return 0


def _cmd_evaluate(args):
    import numpy as np

    from keras_hrf import reports, tflite
    from keras_hrf.experiment import load_features
    from keras_hrf.metrics import classification_metrics
    from keras_hrf.runs import load_run
    from keras_hrf.train import encode_labels

    run = load_run(args.run)
    feats, manifest, _ = load_features(args.corpus, args.root, args.cache, run.feature_params)
    y, _ = encode_labels(manifest["emotion"], run.labels)
    x = run.normalizer.transform(feats)
    preds = {
        "Keras float (trained)": run.model.predict(x, verbose=0, batch_size=256),
        "Keras float (merged)": run.merged.predict(x, verbose=0, batch_size=256),
    }
    int8_path = run.path / "device" / "model_int8.tflite"
    if int8_path.is_file():
        preds["int8 (LiteRT)"] = tflite.predict_int8(int8_path.read_bytes(), x)
    rows = []
    for name, logits in preds.items():
        m = classification_metrics(y, logits.argmax(-1), run.labels)
        rows.append([name, reports.pct(m["wa"]), reports.pct(m["ua"]), reports.pct(m["macro_f1"])])
    agree = np.mean(preds["Keras float (merged)"].argmax(-1) == list(preds.values())[-1].argmax(-1))
    print(
        f"{len(y)} utterances of {args.corpus} (all of them: the corpus may overlap the run's "
        "training speakers)"
    )
    print(reports.markdown_table(["model", "WA %", "UA %", "macro-F1 %"], rows))
    print(f"argmax agreement merged float vs last row: {100 * agree:.1f} %")
    return 0


def _cmd_quantization(args):
    from keras_hrf.qat import QATConfig
    from keras_hrf.quant_study import quantization_study

    quantization_study(
        args.corpus,
        args.root,
        args.out,
        families=args.families,
        seeds=range(args.seeds),
        folds=args.only_folds,
        n_folds=args.folds,
        qat_config=QATConfig(epochs=args.qat_epochs, learning_rate=args.qat_lr),
        cache_dir=args.cache,
        run_qat=not args.report_only,
        control=args.control,
        layer_norm_l2=args.l2,
    )
    print((Path(args.out) / "QUANT.md").read_text())
    return 0


def _cmd_reproduce(args):
    from keras_hrf.experiment import reproduce

    base = _train_config(args)
    reproduce(
        args.corpus,
        args.root,
        args.out,
        families=args.families,
        variants=args.variants,
        seeds=range(args.seeds) if args.only_seeds is None else args.only_seeds,
        n_folds=args.folds,
        folds=args.only_folds,
        base=base,
        cache_dir=args.cache,
        export=not args.no_export,
        report_only=args.report_only,
        command="keras-hrf " + shlex.join(args.argv),
        folds_file=args.folds_file,
    )
    print((Path(args.out) / "REPORT.md").read_text())
    return 0


def _cmd_prepare(args):
    from data_prep import synthetic
    from keras_hrf.experiment import load_features

    if args.synthetic:
        path = synthetic.generate(
            args.synthetic, speakers=args.speakers, per_class=args.per_class, seed=args.seed
        )
        print(f"synthetic corpus written to {path}")
        if not args.corpus:
            args.corpus, args.root = "synthetic", path
    if not args.corpus or not args.root:
        raise ValueError("prepare needs --corpus and --root (or --synthetic DIR)")
    feats, manifest, params = load_features(args.corpus, args.root, args.cache)
    bad = manifest.attrs.get("bad_files", [])
    counts = {k: int(v) for k, v in manifest["emotion"].value_counts().items()}
    print(
        f"{len(manifest)} utterances, {manifest['speaker'].nunique()} speakers, emotions: "
        f"{counts}; features {feats.shape} cached in "
        f"{args.cache}; {len(bad)} file(s) skipped"
    )
    return 0


def _cmd_merge(args):
    from keras_hrf import models, reparam

    model = _load_keras(args.model)
    if not reparam.has_hrf(model):
        print(f"note: {args.model} has no HRF layers; writing an equivalent copy")
    merged = reparam.merge(model)
    merged.save(args.out)
    print(
        f"merged: {model.count_params():,} -> {merged.count_params():,} parameters, "
        f"{models.count_macs(model):,} -> {models.count_macs(merged):,} MACs; wrote {args.out}"
    )
    return 0


def _load_keras(path):
    import keras

    if not Path(path).is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        return keras.models.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad file
        raise ValueError(
            f"cannot read {path} as a Keras model ({exc}); pass a .keras file written by keras-hrf"
        ) from exc


def _cmd_convert(args):
    import numpy as np

    from keras_hrf import tflite
    from keras_hrf.runs import load_run

    src = Path(args.model)
    if src.is_dir():
        run = load_run(src)
        model, meta_run = run.merged, run
        rep = np.load(src / "representative.npy")
    else:
        if not args.data or not args.meta_from:
            raise ValueError(
                "a bare .keras model needs --data REP.npy and --meta-from RUN_DIR "
                "(labels, feature parameters and normaliser); or pass a run folder"
            )
        model, meta_run = _load_keras(src), load_run(args.meta_from)
        rep = np.load(args.data)
    result = tflite.export(
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
    )
    print(result.report.to_markdown())
    print(f"device artefacts written to {args.out}")
    return 0


def _cmd_check(args):
    import numpy as np

    from keras_hrf import tflite

    path = Path(args.tflite)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    samples = np.load(args.samples) if args.samples else None
    report = tflite.check(path.read_bytes(), samples)
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

    from keras_hrf import tflite

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
    return tflite.quant_report(
        _load_keras(keras_path),
        data,
        representative_data=load(rep_path) if rep_path is not None else data,
        int8_model=path.read_bytes(),
    )


def _cmd_models(args):
    from data_prep import list_corpora
    from keras_hrf import models, reports

    rows = []
    for fam in models.FAMILIES:
        for size in models.FAMILIES[fam].presets:
            plain = models.build(fam, size)
            hrf = models.build(fam, size, hrf=True)
            rows.append(
                [
                    fam,
                    size,
                    f"{plain.count_params():,}",
                    f"{hrf.count_params():,}",
                    f"{models.count_macs(plain):,}",
                    f"{models.count_macs(hrf):,}",
                ]
            )
    print("Models for 300 x 64 log-Mel input, 8 classes (HRF: default config):")
    print(
        reports.markdown_table(
            [
                "family",
                "size",
                "params",
                "params with HRF (train)",
                "MACs",
                "MACs with HRF (train)",
            ],
            rows,
        )
    )
    print("\nCorpora:")
    for name, desc in list_corpora().items():
        print(f"  {name:12s} {desc}")
    return 0


def _cmd_stream(args):
    from keras_hrf.stream import stream_file

    if not Path(args.audio).is_file():
        raise FileNotFoundError(f"audio file {args.audio} does not exist")
    if not Path(args.model).is_dir():
        raise FileNotFoundError(
            f"model folder {args.model} does not exist; pass an export folder (keras-hrf convert)"
        )
    result = stream_file(
        args.audio,
        args.model,
        hop=args.hop,
        smooth=args.smooth,
        smoothing=args.smoothing,
        precision=args.precision,
    )
    print(
        f"{args.audio}: {result.duration:.2f} s, {len(result.centres)} window(s) of "
        f"{result.window:.2f} s every {result.hop:.2f} s, {result.smoothing} smoothing over "
        f"{result.smooth}, {args.precision} front-end"
    )
    print(result.to_markdown())
    return 0


COMMANDS = {
    "demo": _cmd_demo,
    "train": _cmd_train,
    "evaluate": _cmd_evaluate,
    "reproduce": _cmd_reproduce,
    "quantization": _cmd_quantization,
    "prepare": _cmd_prepare,
    "merge": _cmd_merge,
    "convert": _cmd_convert,
    "check": _cmd_check,
    "models": _cmd_models,
    "stream": _cmd_stream,
}


def _set_threads(n: int) -> None:
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(n)
    except RuntimeError:  # TensorFlow already initialised its thread pools in this process
        print("warning: --threads ignored (TensorFlow already initialised)", file=sys.stderr)


def main(argv=None) -> int:
    """Entry point of the ``keras-hrf`` console script."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # quoted in reports
    if args.threads:
        _set_threads(args.threads)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, TypeError, FileNotFoundError, NotADirectoryError) as exc:
        if args.verbose:
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"keras-hrf {args.command}: error: {msg}", file=sys.stderr)
        print("  (run with --verbose for the traceback)", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted; finished runs and cached features are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["build_parser", "main"]
