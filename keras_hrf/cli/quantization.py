"""``keras-hrf quantization``: PTQ vs QAT vs quantization-aware HRF on a reproduction's runs."""

from __future__ import annotations

from pathlib import Path

from keras_hrf.cli.common import (
    add_corpus_args,
    add_executor_args,
    add_folds_file,
    add_parser,
    executor_from_args,
)

EPILOG = """
    examples:
      keras-hrf reproduce --corpus ravdess --root DATA --variants light+hrf light+qhrf \\
          --out results/x                                   # the runs it compares
      keras-hrf quantization --corpus ravdess --root DATA --out results/x --seeds 1
      keras-hrf quantization --corpus ravdess --root DATA --out results/x --seeds 3 \\
          --executor ray --address auto                      # the fine-tunings on a cluster
    """


def quantization_command_parser(sub):
    p = add_parser(
        sub,
        "quantization",
        "int8 fidelity of the reproduction's light+HRF runs: PTQ vs QAT vs quantization-aware HRF",
        EPILOG,
    )
    add_corpus_args(p)
    p.add_argument("--out", required=True, help="the reproduction's output folder")
    p.add_argument(
        "--families", nargs="+", default=["conv_transformer", "conformer", "speechformer"]
    )
    p.add_argument("--seeds", type=int, default=1, help="number of seeds (0..N-1)")
    p.add_argument("--folds", type=int, default=6, help="speaker folds")
    add_folds_file(p)
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
    add_executor_args(p, runs=True)
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    from keras_hrf.cli.common import data_spec
    from keras_hrf.experiments.quant_study import quantization_study
    from keras_hrf.training import QATConfig

    executor = executor_from_args(args)
    quantization_study(
        data_spec(args),
        None,
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
        folds_file=args.folds_file,
        executor=executor,
    )
    print((Path(args.out) / "QUANT.md").read_text())
    return 0
