"""Any corpus arranged as one folder per label: ``root/<label>/**/*.wav|flac``.

The label is the name of the top-level folder a file sits in, lower-cased (deeper sub-folders are
allowed, e.g. ``root/happy/speaker3/x.wav``). Speakers cannot be guessed from an arbitrary tree:
pass ``speaker_regex`` to extract them from file names, otherwise every file gets speaker
``"unknown"`` and a warning says that speaker-independent splits are then impossible.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from data_prep.corpora._common import describe_children, list_audio, require
from data_prep.corpora.base import BadFile, LoadResult, register_corpus
from data_prep.errors import DataPrepError

UNKNOWN_SPEAKER = "unknown"


@register_corpus(
    "folder",
    "generic: root/<label>/*.wav|flac, label = folder name lower-cased; speakers from the "
    "speaker_regex option",
)
def load(
    root: Path,
    speaker_regex: str | None = None,
    label_map: dict[str, str] | None = None,
) -> LoadResult:
    """One row per audio file, labelled by its top-level folder.

    Args:
        root: Folder holding one sub-folder per label.
        speaker_regex: Regular expression searched in each file name without extension; the
            speaker is its group ``speaker`` if it has one, else its first group, else the whole
            match (e.g. ``r"^(spk\\d+)_"``). A file it does not match is reported as a bad file.
        label_map: Optional mapping from lower-cased folder names to emotion names (e.g.
            ``{"anger": "angry"}``) so that a custom corpus can share the canonical names.

    Returns:
        Rows with ``speaker``, ``emotion`` (the mapped folder name), ``gender`` (None) and
        ``label`` (the folder name as found).

    Raises:
        CorpusLayoutError: ``root`` has no sub-folder holding audio files.
        DataPrepError: ``speaker_regex`` is not a valid regular expression.
    """
    pattern = None
    if speaker_regex is not None:
        try:
            pattern = re.compile(speaker_regex)
        except re.error as exc:
            raise DataPrepError(f"folder: invalid speaker_regex {speaker_regex!r}: {exc}") from exc
    label_map = {k.lower(): v for k, v in (label_map or {}).items()}
    files = list_audio(root)
    require(
        any(p.parent != root for p in files),
        "labelled-folder",
        root,
        "one sub-folder per label holding .wav/.flac files (root/<label>/<file>.wav)",
        describe_children(root),
    )
    rows, bad = [], []
    for path in files:
        rel = path.relative_to(root)
        if len(rel.parts) < 2:
            bad.append(
                BadFile(str(path), "file directly in the root; expected root/<label>/<file>.wav")
            )
            continue
        speaker = UNKNOWN_SPEAKER
        if pattern is not None:
            m = pattern.search(path.stem)
            if m is None:
                bad.append(
                    BadFile(
                        str(path),
                        f"file name {path.stem!r} does not match the expected pattern "
                        f"speaker_regex={speaker_regex!r}",
                    )
                )
                continue
            if "speaker" in pattern.groupindex:
                speaker = m.group("speaker")
            elif pattern.groups:
                speaker = m.group(1)
            else:
                speaker = m.group(0)
        label = rel.parts[0]
        rows.append(
            {
                "path": str(path),
                "speaker": speaker,
                "emotion": label_map.get(label.lower(), label.lower()),
                "gender": None,
                "label": label,
            }
        )
    if pattern is None and rows:
        warnings.warn(
            f"folder corpus {root}: no speaker_regex given, every file has speaker "
            f"{UNKNOWN_SPEAKER!r}; speaker-independent splits need speakers (pass speaker_regex)",
            stacklevel=3,
        )
    return LoadResult(rows, bad)
