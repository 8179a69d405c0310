"""What the commands share: user errors, corpus options, training options generated from the
config dataclasses, and a quiet TensorFlow start.

Training options are *generated* from :class:`~keras_hrf.training.TrainConfig` and
:class:`~keras_hrf.models.HRFConfig` (one flag per field, its help from the field's docstring), so
a field cannot lack a flag and a flag cannot lack a field (``tests/keras_hrf/cli`` checks both).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import os
import re
import sys
import tempfile
import textwrap
from typing import Any

#: Exit status of a user error (bad input, a missing file): one line on stderr, no traceback.
EXIT_USAGE = 2

#: TrainConfig fields that a command sets itself rather than through a generated flag.
COMMAND_FIELDS = {
    "family": "--family (train, demo) / --families (reproduce)",
    "size": "--size (train) / the variant names (reproduce)",
    "hrf": "--hrf and the --hrf-* options (train) / the variant names (reproduce)",
    "model_overrides": "--model-option KEY=VALUE",
    "seed": "--seed (train, demo) / --seeds (reproduce)",
}

#: Flag names kept from earlier versions for a TrainConfig / HRFConfig field.
ALIASES = {
    "learning_rate": ["--lr"],
    "factor_init": ["--hrf-init"],
    "factor_lr_scale": ["--hrf-lr-scale"],
    "factor_weight_decay": ["--hrf-weight-decay"],
    "quantize_merged": ["--qat"],
}


def user_error(command: str, exc: BaseException) -> int:
    """Print a user error as one line with the hint to rerun verbosely; the exit status."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    print(f"keras-hrf {command}: error: {msg}", file=sys.stderr)
    print("  (run with --verbose for the traceback)", file=sys.stderr)
    return EXIT_USAGE


def add_parser(sub, name: str, help_: str, epilog: str) -> argparse.ArgumentParser:
    """A sub-command parser whose examples (``epilog``) print line by line."""
    return sub.add_parser(
        name,
        help=help_,
        description=help_,
        epilog=textwrap.dedent(epilog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_executor_args(p: argparse.ArgumentParser, *, runs: bool) -> None:
    """``--executor local|ray`` and its Ray options (``runs``: the per-run resources of a
    grid, else feature extraction only)."""
    g = p.add_argument_group("executor")
    g.add_argument(
        "--executor",
        choices=["local", "ray"],
        default="local",
        help="local: this process (default; Ray is not imported); ray: a Ray cluster",
    )
    g.add_argument(
        "--address",
        default=None,
        help="with --executor ray: the cluster ('auto' for the one 'ray start' made here, or "
        "HOST:PORT); default: a local Ray instance with this machine's cores",
    )
    if runs:
        g.add_argument(
            "--cpus-per-run", type=float, default=1, help="CPUs per run (also its TF threads)"
        )
        g.add_argument("--gpus-per-run", type=float, default=0, help="GPUs per run (fractions ok)")
        g.add_argument(
            "--max-retries",
            type=int,
            default=3,
            help="times a run is restarted when its worker dies (not when it raises)",
        )
        g.add_argument(
            "--shared-fs",
            action="store_true",
            help="workers write run folders themselves (OUT on a filesystem every node sees); "
            "default: they return them to this process, which writes them",
        )


def check_executor_args(args) -> None:
    """Ray options without ``--executor ray`` are a mistake, not silently ignored; with it, a
    missing Ray or an address nobody answers at fails before any feature is read."""
    if args.executor == "ray":
        from data_prep.cluster import check_address

        if getattr(args, "cpus_per_run", 1) <= 0 or getattr(args, "gpus_per_run", 0) < 0:
            raise ValueError("--cpus-per-run must be > 0 and --gpus-per-run >= 0")
        if getattr(args, "max_retries", 0) < 0:
            raise ValueError(f"--max-retries must be >= 0, got {args.max_retries}")
        check_address(args.address)
    else:
        given = [
            flag
            for flag, default in (
                ("address", None),
                ("cpus_per_run", 1),
                ("gpus_per_run", 0),
                ("max_retries", 3),
                ("shared_fs", False),
            )
            if getattr(args, flag, default) != default
        ]
        if given:
            names = ", ".join("--" + g.replace("_", "-") for g in given)
            raise ValueError(f"{names} only apply with --executor ray")


def executor_from_args(args):
    """The executor the ``--executor`` options name, after :func:`check_executor_args`."""
    from keras_hrf.experiments.executors import make_executor

    check_executor_args(args)
    return make_executor(
        args.executor,
        address=args.address,
        cpus_per_run=args.cpus_per_run,
        gpus_per_run=args.gpus_per_run,
        max_retries=args.max_retries,
        shared_fs=args.shared_fs,
    )


def add_corpus_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    """``--corpus``/``--root`` (repeatable: several corpora make one manifest), loader options,
    a corpora file, and the label selection."""
    g = p.add_argument_group("data")
    g.add_argument(
        "--corpus",
        action="append",
        default=[],
        help="corpus name (see 'keras-hrf models'); repeat with --root for several corpora",
    )
    g.add_argument("--root", action="append", default=[], help="the corpus' top folder")
    g.add_argument(
        "--corpus-option",
        action="append",
        default=[],
        metavar="[CORPUS:]KEY=VALUE",
        help="an option of the corpus loader (repeatable), e.g. speaker_regex=^(spk\\d+)_ for "
        "folder, manifest=meta.tsv for csv, strict=true for any; CORPUS: picks one of several",
    )
    g.add_argument(
        "--corpora",
        default=None,
        metavar="FILE",
        help='a JSON corpora file {"corpora": [{"name", "root", "options"}], "labels", '
        '"label_map"} instead of --corpus/--root',
    )
    g.add_argument(
        "--labels",
        default=None,
        help="keep these classes (comma-separated, after --label-map); the rest is left out "
        "and counted",
    )
    g.add_argument(
        "--label-map",
        action="append",
        default=[],
        metavar="FROM=TO",
        help="rename or merge a class (repeatable), e.g. excited=happy",
    )
    p.set_defaults(corpus_required=required)


def data_spec(args):
    """The :class:`data_prep.prepare.DataSpec` the corpus options ask for (``None`` if none
    was given and none is required).

    Raises:
        ValueError: no corpus where one is required, unequal --corpus/--root, a malformed option.
    """
    import dataclasses as dc

    from data_prep.labels import parse_label_map
    from data_prep.prepare import DataSpec, as_spec

    if args.corpora:
        if args.corpus or args.root:
            raise ValueError("give either --corpora FILE or --corpus/--root, not both")
        spec = DataSpec.from_file(args.corpora)
    elif args.corpus or args.root:
        spec = as_spec(args.corpus, args.root, args.corpus_option)
    elif args.corpus_required:
        raise ValueError("pass --corpus NAME --root DIR (or --corpora FILE)")
    else:
        return None
    label_map = {**dict(spec.label_map), **parse_label_map(args.label_map)}
    labels = spec.labels
    if args.labels:
        labels = tuple(v.strip().lower() for v in args.labels.split(",") if v.strip())
    return dc.replace(spec, labels=labels, label_map=label_map)


def add_folds_file(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--folds-file",
        default=None,
        help="published folds: JSON with the test speakers of each fold (e.g. EmoBox's "
        "folds_emobox.json beside the RAVDESS copy); replaces --folds",
    )


def field_help(cls: type) -> dict[str, str]:
    """Field name -> its one-paragraph description from the ``Attributes:`` section of the
    dataclass' Google-style docstring."""
    doc = inspect.getdoc(cls) or ""
    section = doc.split("Attributes:", 1)[-1]
    out: dict[str, str] = {}
    name = None
    for line in section.splitlines():
        m = re.match(r"^    (\w+): (.*)$", line)
        if m:
            name = m.group(1)
            out[name] = m.group(2).strip()
        elif name and line.startswith("        "):
            out[name] += " " + line.strip()
        elif line.strip() and not line.startswith(" "):
            break
    # Plain text for --help: :role:`~a.b.c` -> c, ``x`` -> x.
    plain = {}
    for k, v in out.items():
        v = re.sub(r":\w+:`~?([^`]*?)`", lambda m: m.group(1).rsplit(".", 1)[-1], v)
        plain[k] = v.replace("``", "")
    return plain


def _flag(prefix: str, name: str) -> str:
    return f"--{prefix}{name.replace('_', '-')}"


def _add_field(
    group, field: dataclasses.Field, dest: str, flag: str, help_: str, default: Any
) -> None:
    kind = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", "")
    names = [flag, *ALIASES.get(field.name, [])]
    help_ = f"{help_} (default: {default!r})".replace("%", "%%")
    metavar = field.name.upper()
    if kind.startswith("bool"):
        group.add_argument(
            *names, dest=dest, action=argparse.BooleanOptionalAction, default=None, help=help_
        )
    elif kind.startswith("int"):
        group.add_argument(*names, dest=dest, type=int, default=None, metavar=metavar, help=help_)
    elif kind.startswith("float"):
        group.add_argument(*names, dest=dest, type=float, default=None, metavar=metavar, help=help_)
    elif kind.startswith("tuple"):
        group.add_argument(*names, dest=dest, nargs="+", default=None, metavar=metavar, help=help_)
    else:
        group.add_argument(*names, dest=dest, default=None, metavar=metavar, help=help_)


def add_train_args(p: argparse.ArgumentParser) -> None:
    """One flag per :class:`TrainConfig` field (but :data:`COMMAND_FIELDS`) and per
    :class:`HRFConfig` field (``--hrf-<field>``), plus ``--model-option KEY=VALUE``."""
    from keras_hrf.models.hrf_config import HRFConfig
    from keras_hrf.training import TrainConfig

    g = p.add_argument_group("training (TrainConfig; defaults as shown)")
    helps = field_help(TrainConfig)
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        if f.name in COMMAND_FIELDS:
            continue
        _add_field(
            g,
            f,
            f"train_{f.name}",
            _flag("", f.name),
            helps.get(f.name, ""),
            getattr(defaults, f.name),
        )
    g.add_argument(
        "--model-option",
        dest="model_options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a preset hyper-parameter (repeatable), e.g. stem=conv1d, dropout=0.2, "
        "stem_strides=4x2/2x2 (keras-hrf models lists each family's)",
    )
    h = p.add_argument_group("HRF (HRFConfig; any of these turns HRF on)")
    helps = field_help(HRFConfig)
    hdefaults = HRFConfig()
    for f in dataclasses.fields(HRFConfig):
        _add_field(
            h,
            f,
            f"hrf_{f.name}",
            _flag("hrf-", f.name),
            helps.get(f.name, ""),
            getattr(hdefaults, f.name),
        )


def hrf_options(args) -> dict | None:
    """The ``--hrf-*`` options given (``{}`` if none but ``--hrf``), or ``None`` without HRF."""
    from keras_hrf.models.hrf_config import HRFConfig

    given = {
        f.name: getattr(args, f"hrf_{f.name}")
        for f in dataclasses.fields(HRFConfig)
        if getattr(args, f"hrf_{f.name}", None) is not None
    }
    if "sites" in given:
        given["sites"] = list(given["sites"])
    if given or getattr(args, "hrf", False):
        return given
    return None


def model_options(args) -> dict:
    """``--model-option KEY=VALUE`` as preset overrides (values as in variant names)."""
    from keras_hrf.experiments.variants import option_value

    out = {}
    for item in args.model_options:
        key, eq, value = item.partition("=")
        if not eq or not key or not value:
            raise ValueError(f"--model-option expects KEY=VALUE, got {item!r}")
        out[key] = option_value(key, value)
    return out


def train_config(args, **fixed):
    """The :class:`TrainConfig` the options ask for; ``fixed`` sets command fields."""
    from keras_hrf.training import TrainConfig

    kw = {
        f.name: getattr(args, f"train_{f.name}")
        for f in dataclasses.fields(TrainConfig)
        if f.name not in COMMAND_FIELDS and getattr(args, f"train_{f.name}", None) is not None
    }
    kw.update(hrf=hrf_options(args), model_overrides=model_options(args))
    kw.update(fixed)
    return TrainConfig(**kw)


@contextlib.contextmanager
def _stderr_to(sink):
    saved = os.dup(2)
    try:
        os.dup2(sink.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def start_tensorflow(threads: int | None = None) -> None:
    """Import TensorFlow without its start-up lines (oneDNN, CUDA, cpu_feature_guard) on a
    newcomer's terminal, and set its thread pools.

    TensorFlow 2.21 logs them through absl before any log level applies (``TF_CPP_MIN_LOG_LEVEL``
    does not silence them), so the C-level stderr is captured while TensorFlow starts and its
    devices are listed; what it printed is shown only if the start fails.
    """
    with tempfile.TemporaryFile() as sink:
        try:
            with _stderr_to(sink):
                import tensorflow as tf

                tf.config.list_physical_devices()
        except BaseException:
            sink.seek(0)
            sys.stderr.write(sink.read().decode("utf-8", "replace"))
            raise
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # TensorFlow already initialised its thread pools in this process
            print("warning: --threads ignored (TensorFlow already initialised)", file=sys.stderr)
