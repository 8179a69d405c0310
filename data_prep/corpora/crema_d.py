"""CREMA-D: ``AudioWAV/<ActorID>_<Sentence>_<Emotion>_<Level>.wav``.

Cao et al. (2014): 91 actors (IDs 1001..1091), 12 sentences, 6 emotions (ANG, DIS, FEA, HAP, NEU,
SAD), emotion level LO/MD/HI or XX (unspecified). Actor gender and age are in
``VideoDemographics.csv`` (``ActorID,Age,Sex,Race,Ethnicity``) at the top of the release; without
it the gender column stays None (the file name does not say).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from data_prep.corpora._common import bad_name, describe_children, list_audio, require
from data_prep.corpora.base import BadFile, LoadResult, register_corpus
from data_prep.errors import CorpusLayoutError

SENTENCES = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI")
EMOTIONS = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": None}

PATTERN = (
    "<ActorID 1001..1091>_<Sentence: "
    + "|".join(SENTENCES)
    + ">_<Emotion: "
    + "|".join(EMOTIONS)
    + ">_<Level: LO|MD|HI|XX>, e.g. 1001_DFA_ANG_XX.wav"
)
_NAME = re.compile(r"(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})")

DEMOGRAPHICS = "VideoDemographics.csv"


@register_corpus(
    "crema_d",
    "CREMA-D: root/AudioWAV/1001_DFA_ANG_XX.wav (or the files directly in root); gender from "
    "root/VideoDemographics.csv if present",
)
def load(root: Path) -> LoadResult:
    """Parse CREMA-D file names (and demographics when available).

    Args:
        root: The release folder (holding ``AudioWAV/`` and optionally ``VideoDemographics.csv``)
            or the ``AudioWAV`` folder itself.

    Returns:
        Rows with ``speaker`` (actor id, e.g. ``"1001"``), ``emotion``, ``gender`` (None without
        demographics), ``sentence``, ``intensity`` (``low``/``medium``/``high``/None) and ``age``.

    Raises:
        CorpusLayoutError: no audio files in ``root/AudioWAV`` or ``root``, or an unreadable
            demographics file.
    """
    audio_dir = root / "AudioWAV" if (root / "AudioWAV").is_dir() else root
    files = list_audio(audio_dir)
    require(
        bool(files),
        "CREMA-D",
        root,
        f"AudioWAV/ (or the root itself) holding files named {PATTERN}",
        describe_children(root),
    )
    # When root is the AudioWAV folder itself, the demographics sit one level up.
    candidates = [root / DEMOGRAPHICS] + ([root.parent / DEMOGRAPHICS] if audio_dir == root else [])
    demo_path = next((p for p in candidates if p.is_file()), None)
    demographics = _read_demographics(demo_path) if demo_path is not None else {}

    rows, bad = [], []
    for path in files:
        m = _NAME.fullmatch(path.stem)
        if m is None:
            bad.append(bad_name(path, PATTERN))
            continue
        actor, sentence, emo, level = m.groups()
        problems = []
        if not 1001 <= int(actor) <= 1091:
            problems.append(f"actor {actor} not in 1001..1091")
        if sentence not in SENTENCES:
            problems.append(f"sentence {sentence} unknown")
        if emo not in EMOTIONS:
            problems.append(f"emotion {emo} unknown")
        if level not in LEVELS:
            problems.append(f"level {level} unknown")
        if problems:
            bad.append(BadFile(str(path), "; ".join(problems) + f" (expected {PATTERN})"))
            continue
        sex, age = demographics.get(actor, (None, None))
        rows.append(
            {
                "path": str(path),
                "speaker": actor,
                "emotion": EMOTIONS[emo],
                "gender": sex,
                "sentence": sentence,
                "intensity": LEVELS[level],
                "age": age,
            }
        )
    return LoadResult(rows, bad)


def _read_demographics(path: Path) -> dict[str, tuple[str | None, int | None]]:
    """``VideoDemographics.csv`` -> actor id -> (gender, age)."""
    try:
        df = pd.read_csv(path, dtype=str)
    except Exception as exc:  # pandas raises several parser/IO error types
        raise CorpusLayoutError(f"cannot read CREMA-D demographics {path}: {exc}") from exc
    df.columns = [c.strip() for c in df.columns]
    if not {"ActorID", "Sex"} <= set(df.columns):
        raise CorpusLayoutError(
            f"CREMA-D demographics {path} lacks the columns ActorID and Sex "
            f"(expected ActorID,Age,Sex,Race,Ethnicity; found {','.join(df.columns)})"
        )
    out = {}
    for _, r in df.iterrows():
        sex = str(r["Sex"]).strip().lower()
        age = str(r.get("Age", "")).strip()
        out[str(r["ActorID"]).strip()] = (
            sex if sex in ("male", "female") else None,
            int(age) if age.isdigit() else None,
        )
    return out
