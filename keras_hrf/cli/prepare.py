"""``keras-hrf prepare``: check a corpus' parse and cache its features (or make a synthetic
corpus); prints utterances per label and per speaker, total duration and the bad files."""

from __future__ import annotations

from keras_hrf.cli.common import add_corpus_args, add_executor_args, add_parser

EPILOG = """
    examples:
      keras-hrf prepare --corpus ravdess --root DATA --cache .cache/features
      keras-hrf prepare --corpus folder --root my_corpus \\
          --corpus-option 'speaker_regex=^(spk\\d+)_' --no-features   # check the parse
      keras-hrf prepare --corpus csv --root my_corpus --corpus-option manifest=meta.tsv \\
          --labels angry,happy,neutral,sad --label-map excited=happy
      keras-hrf prepare --synthetic data/synthetic --speakers 8 --per-class 12
      keras-hrf prepare --corpus csv --root /nfs/corpus --corpus-option manifest=all.tsv \\
          --executor ray --address auto            # features of a large corpus on a cluster
    """


def prepare_command_parser(sub):
    p = add_parser(
        sub,
        "prepare",
        "check a corpus' parse (labels, speakers, duration, bad files) and cache its features "
        "(or write a synthetic corpus)",
        EPILOG,
    )
    add_corpus_args(p, required=False)
    p.add_argument("--synthetic", default=None, help="generate the synthetic corpus here")
    p.add_argument("--speakers", type=int, default=8)
    p.add_argument("--per-class", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=".cache/features")
    p.add_argument(
        "--no-features", action="store_true", help="only read the manifest: no feature extraction"
    )
    add_executor_args(p, runs=False)
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    from data_prep import load_features, synthetic
    from data_prep.prepare import DataSpec, load_manifest, summary
    from keras_hrf.cli.common import check_executor_args, data_spec

    check_executor_args(args)
    spec = data_spec(args)
    if args.synthetic:
        path = synthetic.generate(
            args.synthetic, speakers=args.speakers, per_class=args.per_class, seed=args.seed
        )
        print(f"synthetic corpus written to {path}")
        spec = spec or DataSpec.single("synthetic", path)
    if spec is None:
        raise ValueError(
            "prepare needs --corpus and --root (or --corpora FILE, or --synthetic DIR)"
        )
    if args.no_features:
        print(summary(load_manifest(spec)))
        return 0
    feats, manifest, params = load_features(
        spec, cache_dir=args.cache, executor=args.executor, address=args.address
    )
    print(summary(manifest))
    print(f"features {feats.shape} cached in {args.cache}")
    return 0
