"""``keras-hrf train``: one speaker-independent run, written as a run folder."""

from __future__ import annotations

from keras_hrf.cli.common import (
    add_corpus_args,
    add_folds_file,
    add_parser,
    add_train_args,
    data_spec,
    train_config,
)

EPILOG = """
    examples:
      keras-hrf train --corpus ravdess --root DATA --family conformer --size light \\
          --hrf --out runs/conformer_hrf
      keras-hrf train --corpus ravdess --root DATA --folds-file DATA/folds_emobox.json \\
          --fold 2 --family ds_cnn --hrf --out runs/ds_cnn_hrf_fold2
      keras-hrf train --corpus synthetic --root demo_out/data --hrf-expansion 4 \\
          --hrf-sites ffn_in ffn_out --model-option stem=conv1d --out runs/x
    """


def train_command_parser(sub):
    p = add_parser(
        sub,
        "train",
        "train one model on a speaker-independent split and write a run folder",
        EPILOG,
    )
    add_corpus_args(p)
    p.add_argument(
        "--family",
        default="conv_transformer",
        help="conv_transformer | conformer | speechformer | ds_cnn",
    )
    p.add_argument("--size", default="light", help="light | tiny | large (see keras-hrf models)")
    p.add_argument("--hrf", action="store_true", help="train with HRF (the family's default)")
    p.add_argument("--folds", type=int, default=6, help="speaker folds of the split")
    add_folds_file(p)
    p.add_argument("--fold", type=int, default=0, help="which fold is the test part")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=".cache/features", help="feature cache folder")
    p.add_argument("--no-export", action="store_true", help="skip the int8 device artefacts")
    p.add_argument("--out", required=True, help="run folder to write")
    add_train_args(p)
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    from data_prep import load_features
    from keras_hrf.experiments.reproduction import make_folds
    from keras_hrf.export.runs import save_run
    from keras_hrf.training import fit

    # The configuration first: a typo in it fails before any feature is computed.
    cfg = train_config(args, family=args.family, size=args.size, seed=args.seed)
    spec = data_spec(args)
    feats, manifest, params = load_features(spec, cache_dir=args.cache, folds_file=args.folds_file)
    folds, _ = make_folds(manifest, args.folds, args.folds_file, spec)
    if not 0 <= args.fold < len(folds):
        raise ValueError(f"--fold must be in 0..{len(folds) - 1}")
    result = fit(cfg, feats, manifest, folds[args.fold], feature_params=params, data=spec.to_dict())
    out = save_run(result, args.out, export=not args.no_export)
    print((out / "REPORT.md").read_text())
    return 0
