"""Shared machinery of the corpus loaders: the registry, the manifest schema and bad-file reports.

A loader is a function ``loader(root: Path, **options) -> LoadResult`` registered under a name
with :func:`register_corpus`. It returns one manifest row per utterance and a list of the files it
could not parse (never silently dropped). :func:`data_prep.load_corpus` wraps it: it checks that
the root exists, fills ``duration``/``sample_rate`` from the file headers, and reports skipped
files as a warning (or raises with ``strict=True``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pandas as pd

#: Columns every manifest has, in this order; loaders may add corpus-specific columns after them.
MANIFEST_COLUMNS = ("path", "corpus", "speaker", "emotion", "gender", "duration", "sample_rate")

#: Audio file extensions every loader accepts.
AUDIO_EXTENSIONS = (".wav", ".flac")


@dataclasses.dataclass(frozen=True)
class BadFile:
    """A file that a loader found but could not use.

    Attributes:
        path: The offending file.
        reason: What is wrong with it, and the expected pattern where that applies.
    """

    path: str
    reason: str


@dataclasses.dataclass
class LoadResult:
    """What a loader returns.

    Attributes:
        rows: One dict per utterance with at least ``path``, ``speaker``, ``emotion`` (lower-case
            canonical name) and ``gender`` (``"male"``, ``"female"`` or ``None``), plus any
            corpus-specific keys.
        bad_files: Files found in the tree that could not be parsed.
        excluded: Utterances left out on purpose, counted by reason (e.g. IEMOCAP labels outside
            the 4-class protocol, DAIC-WOZ segments shorter than ``min_segment_s``); they are not
            errors, so they are not bad files.
    """

    rows: list[dict]
    bad_files: list[BadFile] = dataclasses.field(default_factory=list)
    excluded: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CorpusInfo:
    """A registered corpus.

    Attributes:
        name: Registry name (``load_corpus(name, root)``).
        description: One line: what the corpus is and the layout the loader expects.
        loader: The loader function.
    """

    name: str
    description: str
    loader: Callable[..., LoadResult]


_REGISTRY: dict[str, CorpusInfo] = {}


def register_corpus(name: str, description: str):
    """Decorator that registers a loader function under ``name``."""

    def wrap(fn: Callable[..., LoadResult]) -> Callable[..., LoadResult]:
        if name in _REGISTRY:
            raise ValueError(f"corpus {name!r} is registered twice")
        _REGISTRY[name] = CorpusInfo(name=name, description=description, loader=fn)
        return fn

    return wrap


def registry() -> dict[str, CorpusInfo]:
    """The registered corpora by name (a copy)."""
    return dict(_REGISTRY)


def audio_files(root: Path) -> list[Path]:
    """All ``.wav``/``.flac`` files below ``root`` (case-insensitive extension), sorted."""
    return sorted(
        p for p in Path(root).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
    )


def to_frame(rows: list[dict], corpus: str) -> pd.DataFrame:
    """Rows -> manifest DataFrame with :data:`MANIFEST_COLUMNS` first (missing ones as None)."""
    df = pd.DataFrame(rows)
    for col in MANIFEST_COLUMNS:
        if col not in df.columns:
            df[col] = None
    df["corpus"] = corpus
    extra = [c for c in df.columns if c not in MANIFEST_COLUMNS]
    return df[list(MANIFEST_COLUMNS) + extra].reset_index(drop=True)
