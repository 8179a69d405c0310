"""TESS (Toronto Emotional Speech Set): ``<OAF|YAF>_<emotion>/<OAF|YAF>_<word>_<emotion>.wav``.

Dupuis & Pichora-Fuller (2010): two actresses, OAF (older, 64) and YAF (younger, 26), say 200
target words ("Say the word _") in 7 emotions. Folder names vary in case and spelling between
copies (``OAF_Fear``, ``OAF_Pleasant_surprise``, ``YAF_pleasant_surprised``), and some copies add
an extra top folder, so files are found at any depth and the emotion is read from the file name
(``ps`` = pleasant surprise); a folder whose emotion disagrees with the file name is reported.
"""

from __future__ import annotations

import re
from pathlib import Path

from data_prep.corpora._common import bad_name, describe_children, list_audio, require
from data_prep.corpora.base import BadFile, LoadResult, register_corpus

PATTERN = (
    "<OAF|YAF>_<word>_<angry|disgust|fear|happy|neutral|ps|sad>.wav inside a folder "
    "<OAF|YAF>_<emotion>/, e.g. OAF_angry/OAF_back_angry.wav"
)
_NAME = re.compile(r"(OAF|YAF)_([a-z]+)_(angry|disgust|fear|happy|neutral|ps|sad)", re.IGNORECASE)
_FOLDER = re.compile(r"(OAF|YAF)_(.+)", re.IGNORECASE)

#: File-name and folder-name emotion spellings -> canonical names.
EMOTIONS = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "ps": "surprised",
    "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
    "sad": "sad",
}
AGE_GROUPS = {"OAF": "older", "YAF": "younger"}


@register_corpus(
    "tess",
    "TESS: root/<OAF|YAF>_<emotion>/<OAF|YAF>_<word>_<emotion>.wav (2 female speakers, "
    "7 emotions; ps = pleasant surprise)",
)
def load(root: Path) -> LoadResult:
    """Parse TESS files.

    Args:
        root: Folder holding the ``OAF_*``/``YAF_*`` emotion folders (directly or one level down).

    Returns:
        Rows with ``speaker`` (``"OAF"``/``"YAF"``), ``emotion``, ``gender`` (always female),
        ``word`` and ``age_group`` (``older``/``younger``).

    Raises:
        CorpusLayoutError: no ``OAF_*``/``YAF_*`` folder in ``root`` or one level below.
    """
    folders = [
        p
        for p in [*root.iterdir(), *(q for d in root.iterdir() if d.is_dir() for q in d.iterdir())]
        if p.is_dir() and _FOLDER.fullmatch(p.name)
    ]
    require(
        bool(folders),
        "TESS",
        root,
        f"folders like OAF_angry/ and YAF_sad/ holding {PATTERN}",
        describe_children(root),
    )
    rows, bad = [], []
    for path in list_audio(root):
        row = _parse(path)
        if isinstance(row, BadFile):
            bad.append(row)
        else:
            rows.append(row)
    return LoadResult(rows, bad)


def _parse(path: Path) -> dict | BadFile:
    """One file -> row, or why it cannot be used."""
    m = _NAME.fullmatch(path.stem)
    if m is None:
        return bad_name(path, PATTERN)
    speaker, word, emo = m.group(1).upper(), m.group(2).lower(), m.group(3).lower()
    folder = _FOLDER.fullmatch(path.parent.name)
    if folder is None:
        return BadFile(str(path), f"not inside an <OAF|YAF>_<emotion> folder (expected {PATTERN})")
    folder_speaker, folder_emo = folder.group(1).upper(), folder.group(2).lower()
    if folder_speaker != speaker or EMOTIONS.get(folder_emo) != EMOTIONS[emo]:
        return BadFile(
            str(path),
            f"file says {speaker}/{emo} but its folder is {path.parent.name} (expected {PATTERN})",
        )
    return {
        "path": str(path),
        "speaker": speaker,
        "emotion": EMOTIONS[emo],
        "gender": "female",
        "word": word,
        "age_group": AGE_GROUPS[speaker],
    }
