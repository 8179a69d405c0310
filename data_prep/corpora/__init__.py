"""Corpus loaders: ``load_corpus(name, root) -> manifest DataFrame``.

Each module in this package registers one loader with
:func:`data_prep.corpora.base.register_corpus`; importing the package imports them all.
"""

from __future__ import annotations

import importlib
import inspect
import warnings
from pathlib import Path

import pandas as pd
import soundfile as sf

from data_prep.corpora.base import (
    MANIFEST_COLUMNS,
    BadFile,
    LoadResult,
    audio_files,
    register_corpus,
    registry,
    to_frame,
)
from data_prep.errors import CorpusLayoutError, DataPrepError

# One module per corpus; the order is the order of list_corpora().
_LOADER_MODULES = (
    "ravdess",
    "iemocap",
    "crema_d",
    "tess",
    "emodb",
    "savee",
    "m3ed",
    "daic_woz",
    "folder",
    "csv_manifest",
    "synthetic",
)
for _m in _LOADER_MODULES:
    importlib.import_module(f"data_prep.corpora.{_m}")


def list_corpora() -> dict[str, str]:
    """Registered corpus names mapped to a one-line description of the expected layout."""
    return {name: info.description for name, info in registry().items()}


def load_corpus(name: str, root: str | Path, *, strict: bool = False, **options) -> pd.DataFrame:
    """Load a corpus manifest: one row per utterance.

    Args:
        name: A registered corpus name (see :func:`list_corpora`).
        root: The corpus' top folder.
        strict: If True, any file that cannot be parsed or read raises
            :class:`~data_prep.errors.CorpusLayoutError`; otherwise such files are reported in a
            warning and listed in ``df.attrs["bad_files"]``.
        **options: Loader-specific options (e.g. ``classes`` for IEMOCAP).

    Returns:
        DataFrame with the columns :data:`~data_prep.corpora.base.MANIFEST_COLUMNS` first, then
        corpus-specific ones; ``df.attrs["bad_files"]`` is a list of
        :class:`~data_prep.corpora.base.BadFile` and ``df.attrs["excluded"]`` counts utterances
        left out on purpose, by reason. Rows with ``start``/``end`` columns (seconds; e.g.
        DAIC-WOZ) are segments of a longer file: ``duration`` is then the segment's length.

    Raises:
        CorpusLayoutError: unknown name, missing root, no usable files, or (strict) a bad file.
        DataPrepError: an option the loader does not accept.
    """
    corpora = registry()
    if name not in corpora:
        raise CorpusLayoutError(
            f"unknown corpus {name!r}; known corpora: {', '.join(sorted(corpora))}"
        )
    _check_options(name, corpora[name].loader, options)
    root = Path(root)
    if not root.is_dir():
        raise CorpusLayoutError(
            f"corpus folder {str(root)!r} does not exist or is not a folder; pass the {name} "
            f"root ({corpora[name].description})"
        )
    result: LoadResult = corpora[name].loader(root, **options)
    rows, bad = _with_audio_info(result.rows, list(result.bad_files))
    if bad and strict:
        first = bad[0]
        raise CorpusLayoutError(
            f"{len(bad)} file(s) in {root} cannot be used, first: {first.path}: {first.reason}"
        )
    if not rows:
        hint = f"; first problem: {bad[0].path}: {bad[0].reason}" if bad else ""
        raise CorpusLayoutError(
            f"no usable audio files found for corpus {name!r} under {root} "
            f"(expected layout: {corpora[name].description}){hint}"
        )
    if bad:
        shown = "; ".join(f"{b.path}: {b.reason}" for b in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        warnings.warn(
            f"{name}: skipped {len(bad)} file(s) that cannot be used: {shown}{more}",
            stacklevel=2,
        )
    df = to_frame(rows, name)
    df.attrs["bad_files"] = bad
    df.attrs["excluded"] = dict(result.excluded)
    return df


def _check_options(name: str, loader, options: dict) -> None:
    """Reject options the loader does not take, naming those it does (instead of a TypeError)."""
    params = list(inspect.signature(loader).parameters.values())[1:]  # after ``root``
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    accepted = [p.name for p in params]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DataPrepError(
            f"{name}: unknown option(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(accepted) if accepted else 'none'}"
        )


def _where(row: dict) -> str:
    """``"line N: "`` for a row of a manifest file (its ``manifest_line``), else nothing."""
    return f"line {row['manifest_line']}: " if row.get("manifest_line") is not None else ""


def _with_audio_info(rows: list[dict], bad: list[BadFile]) -> tuple[list[dict], list[BadFile]]:
    """Fill ``duration``/``sample_rate`` from each file's header; unreadable files go to ``bad``.

    A row with ``start``/``end`` (seconds) is a segment of its file: its duration is ``end -
    start``, and a segment that lies outside the file is reported. Headers are read once per file
    because segment corpora (DAIC-WOZ) have hundreds of rows per file.
    """
    infos = {}  # path -> soundfile header info, or None once reported as unusable
    good = []
    for row in rows:
        path = str(row["path"])
        if path not in infos:
            try:
                info = sf.info(path)
            except Exception as exc:  # soundfile raises LibsndfileError / RuntimeError variants
                bad.append(BadFile(path, f"{_where(row)}unreadable audio: {exc}"))
                info = None
            else:
                if info.frames == 0:
                    bad.append(BadFile(path, f"{_where(row)}empty audio file (0 samples)"))
                    info = None
            infos[path] = info
        info = infos[path]
        if info is None:
            continue  # already reported once for this file
        file_duration = info.frames / info.samplerate
        row = dict(row)
        row["path"] = path
        if row.get("start") is not None and row.get("end") is not None:
            start, end = float(row["start"]), float(row["end"])
            # Transcript times are rounded; a few ms past the end of the file is not an error.
            if not 0.0 <= start < end or start >= file_duration or end > file_duration + 0.1:
                bad.append(
                    BadFile(
                        path,
                        f"{_where(row)}segment [{start:.3f}, {end:.3f}] s lies outside the audio "
                        f"(0 to {file_duration:.3f} s)",
                    )
                )
                continue
            row["end"] = min(end, file_duration)
            row["duration"] = row["end"] - start
        else:
            row["duration"] = file_duration
        row["sample_rate"] = int(info.samplerate)
        row.setdefault("channels", int(info.channels))
        good.append(row)
    return good, bad


__all__ = [
    "MANIFEST_COLUMNS",
    "BadFile",
    "LoadResult",
    "audio_files",
    "list_corpora",
    "load_corpus",
    "register_corpus",
]
