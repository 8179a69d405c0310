"""SAVEE (Surrey Audio-Visual Expressed Emotion): ``AudioData/<DC|JE|JK|KL>/<code><NN>.wav``.

Jackson & Haq (2014): four male speakers, 7 emotions coded a (anger), d (disgust), f (fear),
h (happiness), n (neutral), sa (sadness), su (surprise), 15 sentences per emotion (30 neutral).
Some redistributed copies flatten the tree to ``<speaker>_<code><NN>.wav``; that form is accepted
too, with the speaker taken from the prefix.
"""

from __future__ import annotations

import re
from pathlib import Path

from data_prep.corpora._common import bad_name, describe_children, list_audio, require
from data_prep.corpora.base import BadFile, LoadResult, register_corpus

SPEAKERS = ("DC", "JE", "JK", "KL")
EMOTIONS = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}
PATTERN = (
    "AudioData/<DC|JE|JK|KL>/<a|d|f|h|n|sa|su><NN>.wav (e.g. AudioData/DC/sa01.wav) "
    "or <DC|JE|JK|KL>_<code><NN>.wav"
)
_NAME = re.compile(r"(?:([A-Z]{2})_)?(a|d|f|h|n|sa|su)(\d\d)")


@register_corpus(
    "savee",
    "SAVEE: root/AudioData/<DC|JE|JK|KL>/<a|d|f|h|n|sa|su><NN>.wav (4 male speakers)",
)
def load(root: Path) -> LoadResult:
    """Parse SAVEE files.

    Args:
        root: The release folder (holding ``AudioData/``) or ``AudioData`` itself.

    Returns:
        Rows with ``speaker`` (``"DC"``, ``"JE"``, ``"JK"``, ``"KL"``), ``emotion``, ``gender``
        (always male) and ``sentence`` (the two-digit number as int).

    Raises:
        CorpusLayoutError: no audio files under ``root/AudioData`` or ``root``.
    """
    audio_dir = root / "AudioData" if (root / "AudioData").is_dir() else root
    files = list_audio(audio_dir)
    require(bool(files), "SAVEE", root, f"files named {PATTERN}", describe_children(root))
    rows, bad = [], []
    for path in files:
        m = _NAME.fullmatch(path.stem)
        if m is None:
            bad.append(bad_name(path, PATTERN))
            continue
        prefix, code, number = m.groups()
        speaker = prefix or path.parent.name
        if speaker not in SPEAKERS:
            bad.append(
                BadFile(
                    str(path),
                    f"speaker {speaker!r} (from the "
                    f"{'file prefix' if prefix else 'folder name'}) is not one of "
                    f"{', '.join(SPEAKERS)} (expected {PATTERN})",
                )
            )
            continue
        rows.append(
            {
                "path": str(path),
                "speaker": speaker,
                "emotion": EMOTIONS[code],
                "gender": "male",
                "sentence": int(number),
            }
        )
    return LoadResult(rows, bad)
