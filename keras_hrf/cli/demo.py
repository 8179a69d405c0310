"""``keras-hrf demo``: the main job, end to end, with a comparison report."""

from __future__ import annotations

from pathlib import Path

from keras_hrf.cli.common import add_corpus_args, add_folds_file, add_parser

EPILOG = """
    examples:
      keras-hrf demo --quick                      # ~1 minute, synthetic corpus
      keras-hrf demo --out demo_out               # light, light+HRF and large
      keras-hrf demo --corpus ravdess --root ../shared/data/ravdess_speech_16k \\
          --folds-file ../shared/data/ravdess_speech_16k/folds_emobox.json
    """


def demo_command_parser(sub):
    p = add_parser(
        sub,
        "demo",
        "the main job: synthetic (or real) corpus -> light vs light+HRF (vs large) "
        "-> merge -> int8 -> TFLM check -> report",
        EPILOG,
    )
    p.add_argument("--out", default="demo_out", help="output folder (default demo_out)")
    p.add_argument("--quick", action="store_true", help="small corpus, few epochs, no large")
    add_corpus_args(p, required=False)
    p.add_argument(
        "--family",
        default="ds_cnn",
        help="model family (default ds_cnn: the best light model per byte on RAVDESS)",
    )
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    add_folds_file(p)
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
    p.set_defaults(handler=run)
    return p


def run(args) -> int:
    from keras_hrf.cli.common import data_spec
    from keras_hrf.experiments.main_job import demo

    table = demo(
        args.out,
        quick=args.quick,
        corpus=data_spec(args),
        root=None,
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
