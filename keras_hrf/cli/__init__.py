"""The ``keras-hrf`` command line: one module per command, its examples next to its parser.

Each module defines ``<command>_command_parser(subparsers)`` (which registers ``run``) in the style
of huggingface/accelerate's CLI. User errors (a missing folder, an unknown corpus or family, an
unreadable model, bad audio) are printed as one line with what to do, and exit with status 2;
``--verbose`` shows the traceback. Programming errors are not user errors: they propagate.
"""

from __future__ import annotations

import argparse
import os
import sys

from keras_hrf.cli.check import check_command_parser
from keras_hrf.cli.common import EXIT_USAGE, start_tensorflow, user_error
from keras_hrf.cli.convert import convert_command_parser
from keras_hrf.cli.demo import demo_command_parser
from keras_hrf.cli.evaluate import evaluate_command_parser
from keras_hrf.cli.merge import merge_command_parser
from keras_hrf.cli.models import models_command_parser
from keras_hrf.cli.prepare import prepare_command_parser
from keras_hrf.cli.quantization import quantization_command_parser
from keras_hrf.cli.reproduce import reproduce_command_parser
from keras_hrf.cli.stream import stream_command_parser
from keras_hrf.cli.train import train_command_parser

#: The commands, in the order ``--help`` lists them.
COMMAND_PARSERS = (
    demo_command_parser,
    train_command_parser,
    evaluate_command_parser,
    reproduce_command_parser,
    quantization_command_parser,
    prepare_command_parser,
    merge_command_parser,
    convert_command_parser,
    check_command_parser,
    models_command_parser,
    stream_command_parser,
)

#: Exceptions that mean bad input from the user (data_prep's errors are ValueErrors).
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, FileExistsError)


def build_parser() -> argparse.ArgumentParser:
    """The ``keras-hrf`` argument parser with every command."""
    parser = argparse.ArgumentParser(
        prog="keras-hrf",
        description="Train HRF lightweight Transformers (and CNNs) for speech emotion "
        "recognition, merge them (deHRF) and export int8 TFLite for TFLite Micro and LiteRT.",
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
    for add in COMMAND_PARSERS:
        add(sub)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``keras-hrf`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow starts first, quietly: the parser's training options come from the config
    # dataclasses, whose modules import Keras (and with it TensorFlow's start-up lines).
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--threads", type=int, default=None)
    start_tensorflow(pre.parse_known_args(argv)[0].threads)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv  # quoted in reports
    try:
        return args.handler(args)
    except USER_ERRORS as exc:
        if args.verbose:
            raise
        return user_error(args.command, exc)
    except KeyboardInterrupt:
        print("interrupted; finished runs and cached features are kept", file=sys.stderr)
        return 130


__all__ = ["EXIT_USAGE", "build_parser", "main"]
