"""``keras-hrf reproduce``: the paper's comparison over speaker folds x seeds (resumable)."""

from __future__ import annotations

import shlex
from pathlib import Path

from keras_hrf.cli.common import (
    add_corpus_args,
    add_executor_args,
    add_folds_file,
    add_parser,
    add_train_args,
    executor_from_args,
)

EPILOG = """
    examples:
      keras-hrf reproduce --corpus ravdess --root DATA --seeds 3 --folds 6 --out results/x
      keras-hrf reproduce --corpus ravdess --root DATA --folds-file DATA/folds_emobox.json \\
          --families ds_cnn --variants light light+hrf --out results/x
      keras-hrf reproduce --corpus ravdess --root DATA --families conv_transformer \\
          --variants light light+hrf --out results/x     # resumable: run it again
      keras-hrf reproduce --corpus ravdess --root DATA --families conv_transformer \\
          --variants light+hrf:expansion=4 light+hrf:sites=ffn_in/ffn_out \\
          light+hrf:factor_init=identity light:stem=conv1d --out results/x   # an ablation
      keras-hrf reproduce --corpus ravdess --root DATA --executor ray --address auto \\
          --cpus-per-run 2 --out results/x          # the grid on a Ray cluster (ray start)
    """


def reproduce_command_parser(sub):
    p = add_parser(
        sub, "reproduce", "the paper's comparison over speaker folds x seeds (resumable)", EPILOG
    )
    add_corpus_args(p)
    p.add_argument(
        "--families",
        nargs="+",
        default=["conv_transformer", "conformer", "speechformer"],
        help="model families (conv_transformer conformer speechformer ds_cnn)",
    )
    p.add_argument(
        "--variants",
        nargs="+",
        default=["light", "light+hrf", "large"],
        help="<size>[+hrf|+qhrf] with size light | tiny | large; options after ':' for an "
        "ablation, e.g. light+hrf:expansion=4,factor_lr_scale=0.3 (keys of HRFConfig; '/' "
        "separates list items) or light:stem=conv1d (preset hyper-parameters)",
    )
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1)")
    p.add_argument("--folds", type=int, default=6, help="speaker folds")
    add_folds_file(p)
    p.add_argument(
        "--protocol",
        choices=["folds", "corpus"],
        default="folds",
        help="folds: speaker folds of the (first) corpus, other corpora only add training data; "
        "corpus: leave-one-corpus-out over several --corpus",
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
    add_train_args(p)
    add_executor_args(p, runs=True)
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    from keras_hrf.cli.common import data_spec, train_config
    from keras_hrf.experiments.reproduction import reproduce

    executor = executor_from_args(args)

    reproduce(
        data_spec(args),
        None,
        args.out,
        families=args.families,
        variants=args.variants,
        seeds=range(args.seeds) if args.only_seeds is None else args.only_seeds,
        n_folds=args.folds,
        folds=args.only_folds,
        base=train_config(args),
        cache_dir=args.cache,
        export=not args.no_export,
        report_only=args.report_only,
        command="keras-hrf " + shlex.join(args.argv),
        folds_file=args.folds_file,
        protocol=args.protocol,
        executor=executor,
    )
    print((Path(args.out) / "REPORT.md").read_text())
    return 0
