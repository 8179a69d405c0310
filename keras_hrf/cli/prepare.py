"""``keras-hrf prepare``: a corpus' manifest and cached features (or a synthetic corpus)."""

from __future__ import annotations

from keras_hrf.cli.common import add_corpus_args, add_parser

EPILOG = """
    examples:
      keras-hrf prepare --corpus ravdess --root DATA --cache .cache/features
      keras-hrf prepare --synthetic data/synthetic --speakers 8 --per-class 12
    """


def prepare_command_parser(sub):
    p = add_parser(
        sub,
        "prepare",
        "write a corpus manifest and its cached features (or a synthetic corpus)",
        EPILOG,
    )
    add_corpus_args(p, required=False)
    p.add_argument("--synthetic", default=None, help="generate the synthetic corpus here")
    p.add_argument("--speakers", type=int, default=8)
    p.add_argument("--per-class", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=".cache/features")
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    from data_prep import load_features, synthetic

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
