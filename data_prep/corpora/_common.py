"""Small helpers shared by the corpus loaders (not a loader itself, so not in the registry)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from data_prep.corpora.base import BadFile, audio_files
from data_prep.errors import CorpusLayoutError

#: Canonical emotion names used across corpora (loaders may add corpus-specific ones).
CANONICAL_EMOTIONS = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)


def list_audio(root: Path) -> list[Path]:
    """Audio files below ``root``, without macOS AppleDouble companions (``._name.wav``).

    Archives unpacked on macOS carry ``._*`` files next to every real file; they are metadata, not
    audio, and reporting each of them as a bad file would bury the real problems.
    """
    return [p for p in audio_files(root) if not p.name.startswith("._")]


def bad_name(path: Path, expected: str) -> BadFile:
    """A :class:`BadFile` for a file whose name does not follow the corpus' naming scheme."""
    return BadFile(
        str(path), f"file name {path.name!r} does not match the expected pattern {expected}"
    )


def subdirs_matching(root: Path, pattern: re.Pattern[str]) -> list[Path]:
    """Immediate sub-folders of ``root`` whose name fully matches ``pattern``, sorted."""
    return sorted(p for p in root.iterdir() if p.is_dir() and pattern.fullmatch(p.name))


def require(condition: bool, corpus: str, root: Path, expected: str, found: str = "") -> None:
    """Raise :class:`CorpusLayoutError` naming the expected layout unless ``condition`` holds."""
    if not condition:
        extra = f"; found {found}" if found else ""
        raise CorpusLayoutError(
            f"{str(root)!r} does not have the {corpus} layout: expected {expected}{extra}"
        )


def describe_children(root: Path, limit: int = 5) -> str:
    """A short listing of ``root``'s entries for error messages (what the user actually has)."""
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    if not names:
        return "an empty folder"
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} entries)" if len(names) > limit else "")


def count(excluded: dict[str, int], key: str, n: int = 1) -> None:
    """Add ``n`` to ``excluded[key]``."""
    excluded[key] = excluded.get(key, 0) + n


def first_existing(paths: Iterable[Path]) -> Path | None:
    """The first path that exists, else None."""
    for p in paths:
        if p.exists():
            return p
    return None
