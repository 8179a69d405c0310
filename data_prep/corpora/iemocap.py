"""IEMOCAP (``IEMOCAP_full_release``): five sessions of dyadic improvised and scripted dialogs.

Layout read::

    root/Session1 .. Session5/
        sentences/wav/<dialog>/<utterance>.wav        one file per utterance
        dialog/EmoEvaluation/<dialog>.txt             one label line per utterance:
            [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]

Utterance ids are ``Ses0<session><F|M>_<impro|script><...>_<F|M><NNN>``: the letter after the
session number is the gender of the actor wearing the motion-capture markers in that dialog, while
the letter of the final token is who speaks *this* utterance. Each session has one female and one
male actor, so the speaker is ``Ses0<session><final letter>`` (e.g. ``Ses01M``), which is what
leave-one-session-out / speaker-independent protocols need.

Other files of the release (whole-dialog wavs under ``dialog/wav``, the ``Categorical``/
``Attribute`` sub-folders of EmoEvaluation, macOS ``._*`` files) are ignored.
"""

from __future__ import annotations

import re
from pathlib import Path

from data_prep.corpora._common import (
    bad_name,
    count,
    describe_children,
    list_audio,
    require,
    subdirs_matching,
)
from data_prep.corpora.base import BadFile, LoadResult, register_corpus
from data_prep.errors import CorpusLayoutError, DataPrepError

PATTERN = "SessionN/sentences/wav/<dialog>/Ses0N<F|M>_<impro|script>..._<F|M>NNN.wav"

_SESSION_DIR = re.compile(r"Session([1-5])")
_UTT = re.compile(r"Ses0([1-5])([FM])_((?:impro|script)[0-9A-Za-z_]*?)_([FM])(\d{3})")
_LABEL_LINE = re.compile(r"\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(Ses\S+)\s+(\S+)\s+\[\s*([^\]]*)\]")

#: Every IEMOCAP category -> canonical name (``xxx``, no majority agreement, is never used).
ALL_LABELS = {
    "neu": "neutral",
    "hap": "happy",
    "exc": "excited",
    "ang": "angry",
    "sad": "sad",
    "fru": "frustrated",
    "fea": "fearful",
    "sur": "surprised",
    "dis": "disgust",
    "oth": "other",
}
#: The usual 4-class protocol: happy and excited merged, everything else left out.
FOUR_CLASS = {"neu": "neutral", "hap": "happy", "exc": "happy", "ang": "angry", "sad": "sad"}


@register_corpus(
    "iemocap",
    "IEMOCAP_full_release: root/Session1..5/sentences/wav/<dialog>/<utt>.wav with labels in "
    "root/SessionN/dialog/EmoEvaluation/<dialog>.txt",
)
def load(root: Path, classes: int | None = 4) -> LoadResult:
    """Parse IEMOCAP utterances and their categorical labels.

    Args:
        root: The ``IEMOCAP_full_release`` folder (holding ``Session1`` .. ``Session5``).
        classes: ``4`` (default) for the usual protocol -- neutral, happy (hap + exc merged),
            angry, sad; other labels are left out and counted in ``excluded``. ``None`` keeps
            every label, mapped to canonical names (``excited``, ``frustrated``, ``other``, ...).
            Utterances without a majority label (``xxx``) are always left out.

    Returns:
        Rows with ``speaker`` (e.g. ``"Ses01F"``), ``emotion``, ``gender``, ``session`` (1..5),
        ``dialog``, ``improvised`` (bool), ``label`` (the raw IEMOCAP code), ``valence``,
        ``activation``, ``dominance`` (the evaluators' mean, 1..5) and ``utterance``.

    Raises:
        CorpusLayoutError: no ``SessionN`` folder, or a session without label files.
        DataPrepError: ``classes`` is neither 4 nor None.
    """
    if classes not in (4, None):
        raise DataPrepError(f"iemocap: classes must be 4 or None (all labels), got {classes!r}")
    mapping = FOUR_CLASS if classes == 4 else ALL_LABELS
    sessions = subdirs_matching(root, _SESSION_DIR)
    hint = (
        f" (found {root / 'IEMOCAP_full_release'}; pass that folder)"
        if (root / "IEMOCAP_full_release").is_dir()
        else ""
    )
    require(
        bool(sessions),
        "IEMOCAP",
        root,
        "folders Session1 .. Session5 with sentences/wav/ and dialog/EmoEvaluation/" + hint,
        describe_children(root),
    )

    labels: dict[str, dict] = {}
    for session in sessions:
        eval_dir = session / "dialog" / "EmoEvaluation"
        txts = sorted(eval_dir.glob("*.txt")) if eval_dir.is_dir() else []
        if not txts:
            raise CorpusLayoutError(
                f"IEMOCAP session {session} has no label files: expected "
                f"{eval_dir}/<dialog>.txt with lines like "
                "'[6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5, 2.5, 2.5]'"
            )
        for txt in txts:
            labels.update(_read_labels(txt))

    rows: list[dict] = []
    bad: list[BadFile] = []
    excluded: dict[str, int] = {}
    seen: set[str] = set()
    for session in sessions:
        wav_root = session / "sentences" / "wav"
        if not wav_root.is_dir():
            raise CorpusLayoutError(
                f"IEMOCAP session {session} has no sentences/wav folder: expected {PATTERN}"
            )
        for path in list_audio(wav_root):
            row = _parse(path, wav_root, session, labels)
            if isinstance(row, BadFile):
                bad.append(row)
                continue
            seen.add(row["utterance"])
            code = row["label"]
            if code not in mapping:
                count(excluded, f"label {code!r} not used with classes={classes}")
                continue
            row["emotion"] = mapping[code]
            rows.append(row)
    missing = len(set(labels) - seen)
    if missing:
        count(excluded, "labelled utterance without audio file", missing)
    return LoadResult(rows, bad, excluded)


def _read_labels(txt: Path) -> dict[str, dict]:
    """Label lines of one EmoEvaluation file: utterance id -> label, VAD and source file."""
    out = {}
    for line in txt.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _LABEL_LINE.match(line.strip())
        if m is None:
            continue  # headers, per-evaluator lines and blank lines of the same file
        _, _, utt, code, vad = m.groups()
        try:
            values = [float(v) for v in vad.split(",")]
        except ValueError:
            values = []
        valence, activation, dominance = values if len(values) == 3 else (None, None, None)
        out[utt] = {
            "label": code,
            "valence": valence,
            "activation": activation,
            "dominance": dominance,
            "source": txt,
        }
    return out


def _parse(path: Path, wav_root: Path, session: Path, labels: dict[str, dict]) -> dict | BadFile:
    """One utterance file -> row (emotion filled in by the caller), or why it cannot be used."""
    m = _UTT.fullmatch(path.stem)
    if m is None:
        return bad_name(path, PATTERN)
    sess, _dialog_gender, dialog_kind, speaker_gender, _ = m.groups()
    dialog = path.stem.rsplit("_", 1)[0]
    if path.parent.name != dialog or path.parent.parent != wav_root:
        return BadFile(
            str(path), f"utterance of dialog {dialog} is not in sentences/wav/{dialog}/ ({PATTERN})"
        )
    if session.name != f"Session{int(sess)}":
        return BadFile(str(path), f"utterance of session {int(sess)} found in {session.name}")
    label = labels.get(path.stem)
    if label is None:
        return BadFile(
            str(path),
            f"no label line for {path.stem} in {session.name}/dialog/EmoEvaluation/{dialog}.txt",
        )
    return {
        "path": str(path),
        "speaker": f"Ses0{sess}{speaker_gender}",
        "emotion": None,
        "gender": "male" if speaker_gender == "M" else "female",
        "session": int(sess),
        "dialog": dialog,
        "improvised": dialog_kind.startswith("impro"),
        "label": label["label"],
        "valence": label["valence"],
        "activation": label["activation"],
        "dominance": label["dominance"],
        "utterance": path.stem,
    }
