"""RAVDESS, speech part: ``Actor_NN/03-01-EE-II-SS-RR-AA.(wav|flac)``.

Livingstone & Russo (2018), 24 professional actors (odd numbers male, even female), 8 emotions,
60 utterances per actor in the audio-only speech set. The seven two-digit fields are modality
(03 audio-only), vocal channel (01 speech; 02 is song), emotion, intensity, statement, repetition
and actor. Files of other modalities (01 audio-video, 02 video-only) or of the song set are
reported as bad files rather than silently mixed in: song and speech differ acoustically and the
protocol of the paper is the speech set.
"""

from __future__ import annotations

import re
from pathlib import Path

from data_prep.corpora._common import bad_name, describe_children, list_audio, require
from data_prep.corpora.base import BadFile, LoadResult, register_corpus

PATTERN = "03-01-EE-II-SS-RR-AA (two-digit fields) inside Actor_AA/"

_ACTOR_DIR = re.compile(r"Actor_(\d\d)")
_NAME = re.compile(r"(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)")

EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
INTENSITIES = {"01": "normal", "02": "strong"}


@register_corpus(
    "ravdess",
    "RAVDESS speech: root/Actor_NN/03-01-EE-II-SS-RR-AA.wav|flac (24 actors, 8 emotions)",
)
def load(root: Path) -> LoadResult:
    """Parse every RAVDESS speech file below ``root``.

    Args:
        root: Folder that holds the ``Actor_01`` .. ``Actor_24`` folders.

    Returns:
        Rows with ``speaker`` (the actor as two digits, e.g. ``"01"``), ``emotion``, ``gender``
        (from the actor's parity), ``intensity`` (``normal``/``strong``), ``statement`` (1/2),
        ``repetition`` (1/2) and ``actor`` (int).

    Raises:
        CorpusLayoutError: ``root`` has no ``Actor_NN`` folder.
    """
    actor_dirs = [p for p in root.iterdir() if p.is_dir() and _ACTOR_DIR.fullmatch(p.name)]
    require(
        bool(actor_dirs),
        "RAVDESS",
        root,
        "folders Actor_01 .. Actor_24 holding 03-01-EE-II-SS-RR-AA.wav|flac files",
        describe_children(root),
    )
    rows, bad = [], []
    for path in list_audio(root):
        row = _parse(path, root)
        if isinstance(row, BadFile):
            bad.append(row)
        else:
            rows.append(row)
    return LoadResult(rows, bad)


def _parse(path: Path, root: Path) -> dict | BadFile:
    """One file -> manifest row, or the reason it cannot be used."""
    folder = _ACTOR_DIR.fullmatch(path.parent.name)
    if folder is None or path.parent.parent != root:
        return BadFile(str(path), f"not directly inside an Actor_NN folder; expected {PATTERN}")
    m = _NAME.fullmatch(path.stem)
    if m is None:
        return bad_name(path, PATTERN)
    modality, channel, emo, intensity, statement, repetition, actor = m.groups()
    if modality != "03":
        return BadFile(
            str(path),
            f"modality {modality} is not audio-only (03); expected {PATTERN}",
        )
    if channel != "01":
        kind = "song" if channel == "02" else f"unknown channel {channel}"
        return BadFile(
            str(path),
            f"vocal channel {channel} ({kind}) is not speech (01); this loader reads the speech "
            f"set, expected {PATTERN}",
        )
    problems = []
    if emo not in EMOTIONS:
        problems.append(f"emotion {emo} not in 01..08")
    if intensity not in INTENSITIES:
        problems.append(f"intensity {intensity} not 01/02")
    elif emo == "01" and intensity == "02":
        problems.append("neutral (01) has no strong intensity (02)")
    if statement not in ("01", "02"):
        problems.append(f"statement {statement} not 01/02")
    if repetition not in ("01", "02"):
        problems.append(f"repetition {repetition} not 01/02")
    if not 1 <= int(actor) <= 24:
        problems.append(f"actor {actor} not in 01..24")
    if actor != folder.group(1):
        problems.append(f"actor {actor} in the name but the file is in {path.parent.name}")
    if problems:
        return BadFile(str(path), "; ".join(problems) + f" (expected {PATTERN})")
    return {
        "path": str(path),
        "speaker": actor,
        "emotion": EMOTIONS[emo],
        # RAVDESS numbers its actors so that odd ones are male and even ones female.
        "gender": "male" if int(actor) % 2 else "female",
        "intensity": INTENSITIES[intensity],
        "statement": int(statement),
        "repetition": int(repetition),
        "actor": int(actor),
    }
