"""EmoDB (Berlin Database of Emotional Speech): ``wav/<SS><TTT><E><V>.wav``, e.g. ``03a01Fa.wav``.

Burkhardt et al. (2005): 10 actors (speaker numbers 03, 08..16), 10 German sentences, 7 emotions
coded by the German initial (W Wut, L Langeweile, E Ekel, A Angst, F Freude, T Trauer, N neutral),
and a version letter for repeated takes.
"""

from __future__ import annotations

import re
from pathlib import Path

from data_prep.corpora._common import bad_name, describe_children, list_audio, require
from data_prep.corpora.base import BadFile, LoadResult, register_corpus

EMOTIONS = {
    "W": "angry",
    "L": "bored",
    "E": "disgust",
    "A": "fearful",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}
#: Speaker number -> gender, from the corpus documentation.
SPEAKERS = {
    "03": "male",
    "08": "female",
    "09": "female",
    "10": "male",
    "11": "male",
    "12": "male",
    "13": "female",
    "14": "female",
    "15": "male",
    "16": "female",
}
PATTERN = (
    "<speaker 03|08..16><text a01..b10><emotion W|L|E|A|F|T|N><version a-z>, e.g. wav/03a01Fa.wav"
)
_NAME = re.compile(r"(\d\d)([ab]\d\d)([A-Z])([a-z])")


@register_corpus(
    "emodb",
    "EmoDB: root/wav/03a01Fa.wav (speaker, text, emotion W L E A F T N, version)",
)
def load(root: Path) -> LoadResult:
    """Parse EmoDB file names.

    Args:
        root: The release folder (holding ``wav/``) or the ``wav`` folder itself.

    Returns:
        Rows with ``speaker`` (two digits, e.g. ``"03"``), ``emotion`` (``bored`` for boredom),
        ``gender``, ``text`` (sentence code) and ``version``.

    Raises:
        CorpusLayoutError: no audio files in ``root/wav`` or ``root``.
    """
    audio_dir = root / "wav" if (root / "wav").is_dir() else root
    files = list_audio(audio_dir)
    require(
        bool(files),
        "EmoDB",
        root,
        f"wav/ (or the root itself) holding {PATTERN}",
        describe_children(root),
    )
    rows, bad = [], []
    for path in files:
        m = _NAME.fullmatch(path.stem)
        if m is None:
            bad.append(bad_name(path, PATTERN))
            continue
        speaker, text, emo, version = m.groups()
        problems = []
        if speaker not in SPEAKERS:
            problems.append(f"speaker {speaker} is not one of {', '.join(SPEAKERS)}")
        if emo not in EMOTIONS:
            problems.append(f"emotion letter {emo} is not one of {''.join(EMOTIONS)}")
        if problems:
            bad.append(BadFile(str(path), "; ".join(problems) + f" (expected {PATTERN})"))
            continue
        rows.append(
            {
                "path": str(path),
                "speaker": speaker,
                "emotion": EMOTIONS[emo],
                "gender": SPEAKERS[speaker],
                "text": text,
                "version": version,
            }
        )
    return LoadResult(rows, bad)
