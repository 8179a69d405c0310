"""M3ED (Multi-modal Multi-scene Multi-label Emotional Dialogue, Zhao et al., ACL 2022).

Chinese dialogues from 56 TV series. The release (AIM3-RUC/RUCM3ED) annotates them in one JSON
file, keyed by series, then dialog, then utterance::

    root/annotation.json
        {"anjia": {                                   # TV series
            "anjia_1": {                              # dialog
                "SpeakerInfo": {"A": {"Name": "...", "Age": "mid", "Gender": "female", ...}, ...},
                "Dialog": {
                    "anjia_1_1": {"StartTime": "00:00:00:01", "EndTime": "00:00:01:04",
                                  "Text": "...", "Speaker": "A",
                                  "EmoAnnotation": {"EmoAnnotator1": "Neutral", ...,
                                                    "final_mul_emo": "Neutral",
                                                    "final_main_emo": "Neutral"}},
                    ...}}}}
    root/splitInfo/movie_list_train.txt, movie_list_val.txt, movie_list_test.txt
        one series per line: the official split is by series, so no speaker is in two splits.

The release ships video per dialog, not audio per utterance; this loader reads per-utterance audio
cut from it, found anywhere below ``root`` (e.g. ``root/audio/``) and named ``<utt_id>.wav`` or
``<speaker letter>_<utt_id>.wav`` (``A_anjia_1_1.wav``, the naming of common pre-processing
scripts). A flatter annotation without the series level (dialog id -> {"Dialog": ...}) is accepted
too; the series is then the dialog id without its trailing ``_<n>``.

Labels: ``final_main_emo`` (Happy, Surprise, Sad, Disgust, Anger, Fear, Neutral) mapped to happy,
surprised, sad, disgust, angry, fearful, neutral. Speakers are ``<series>_<character name>``
because a character recurs across the dialogs of a series; without a name the speaker is
``<dialog>_<letter>``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from data_prep.corpora._common import count, describe_children, list_audio
from data_prep.corpora.base import BadFile, LoadResult, register_corpus
from data_prep.errors import CorpusLayoutError

EMOTIONS = {
    "happy": "happy",
    "surprise": "surprised",
    "sad": "sad",
    "disgust": "disgust",
    "anger": "angry",
    "fear": "fearful",
    "neutral": "neutral",
}
SPLITS = {"train": "train", "val": "val", "test": "test"}
PATTERN = (
    "<utt_id>.wav or <Speaker>_<utt_id>.wav with utt_id an utterance of annotation.json "
    "(e.g. anjia_1_1.wav or A_anjia_1_1.wav)"
)
_PREFIXED = re.compile(r"([A-Za-z])_(.+)")
_DIALOG_NUMBER = re.compile(r"(.+)_\d+")


@register_corpus(
    "m3ed",
    "M3ED: root/annotation.json (series -> dialog -> utterances, final_main_emo), "
    "root/splitInfo/movie_list_{train,val,test}.txt, and per-utterance audio below root named "
    "<utt_id>.wav or <Speaker>_<utt_id>.wav",
)
def load(root: Path, annotation: str = "annotation.json") -> LoadResult:
    """Match per-utterance audio files with their M3ED annotation.

    Args:
        root: The M3ED folder.
        annotation: Name (relative to ``root``) of the annotation JSON.

    Returns:
        Rows with ``speaker``, ``emotion``, ``gender`` (from SpeakerInfo), ``age`` (young/mid/
        old), ``series``, ``dialog``, ``utterance``, ``speaker_letter``, ``text`` and ``split``
        (train/val/test from ``splitInfo``; None when the lists are absent). Annotated utterances
        without audio and unknown labels are counted in ``excluded``.

    Raises:
        CorpusLayoutError: the annotation file is missing, not JSON, or has no dialogs.
    """
    ann_path = root / annotation
    if not ann_path.is_file():
        raise CorpusLayoutError(
            f"{str(root)!r} does not have the M3ED layout: expected {annotation} (series -> "
            f"dialog -> {{SpeakerInfo, Dialog}}) in it; found {describe_children(root)}"
        )
    try:
        data = json.loads(ann_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusLayoutError(f"cannot read M3ED annotation {ann_path}: {exc}") from exc
    utterances = _utterances(data, ann_path)
    split_of = _read_splits(root / "splitInfo")

    rows, bad = [], []
    excluded: dict[str, int] = {}
    used: set[str] = set()
    for path in list_audio(root):
        stem = path.stem
        utt_id = stem
        if stem not in utterances:
            m = _PREFIXED.fullmatch(stem)
            if m is None or m.group(2) not in utterances:
                bad.append(
                    BadFile(
                        str(path),
                        f"{path.name!r} is not an annotated utterance; expected {PATTERN}",
                    )
                )
                continue
            utt_id = m.group(2)
            if utterances[utt_id]["speaker_letter"] != m.group(1):
                bad.append(
                    BadFile(
                        str(path),
                        f"file says speaker {m.group(1)} but {utt_id} is spoken by "
                        f"{utterances[utt_id]['speaker_letter']} in {annotation}",
                    )
                )
                continue
        if utt_id in used:
            bad.append(BadFile(str(path), f"a second audio file for utterance {utt_id}"))
            continue
        used.add(utt_id)
        info = utterances[utt_id]
        emotion = EMOTIONS.get(str(info["label"]).strip().lower())
        if emotion is None:
            count(excluded, f"label {info['label']!r} not one of the 7 M3ED emotions")
            continue
        row = {k: v for k, v in info.items() if k != "label"}
        rows.append(
            {"path": str(path), "emotion": emotion, **row, "split": split_of.get(info["series"])}
        )
    missing = len(set(utterances) - used)
    if missing:
        count(excluded, "annotated utterance without audio file", missing)
    return LoadResult(rows, bad, excluded)


def _utterances(data: object, ann_path: Path) -> dict[str, dict]:
    """Flatten the annotation: utterance id -> speaker, label and context."""
    if not isinstance(data, dict):
        raise CorpusLayoutError(f"M3ED annotation {ann_path} is not a JSON object")
    # Accept both series -> dialog -> {...} (the release) and dialog -> {...} (flattened copies).
    dialogs: list[tuple[str, str, dict]] = []
    for key, value in data.items():
        if isinstance(value, dict) and "Dialog" in value:
            m = _DIALOG_NUMBER.fullmatch(key)
            dialogs.append((m.group(1) if m else key, key, value))
        elif isinstance(value, dict):
            dialogs.extend(
                (key, d, v) for d, v in value.items() if isinstance(v, dict) and "Dialog" in v
            )
    if not dialogs:
        raise CorpusLayoutError(
            f"M3ED annotation {ann_path} has no dialogs: expected "
            '{"<series>": {"<dialog>": {"SpeakerInfo": {...}, "Dialog": {"<utt>": {...}}}}}'
        )
    out = {}
    for series, dialog, body in dialogs:
        speakers = body.get("SpeakerInfo") or {}
        for utt_id, utt in (body.get("Dialog") or {}).items():
            letter = str(utt.get("Speaker", "")).strip()
            who = speakers.get(letter) or {}
            name = str(who.get("Name", "")).strip()
            gender = str(who.get("Gender", "")).strip().lower()
            label = (utt.get("EmoAnnotation") or {}).get("final_main_emo")
            out[utt_id] = {
                "speaker": f"{series}_{name}" if name else f"{dialog}_{letter}",
                "gender": gender if gender in ("male", "female") else None,
                "age": who.get("Age"),
                "series": series,
                "dialog": dialog,
                "utterance": utt_id,
                "speaker_letter": letter,
                "text": utt.get("Text"),
                "label": label,
            }
    return out


def _read_splits(split_dir: Path) -> dict[str, str]:
    """``splitInfo/movie_list_<split>.txt`` -> series -> split (empty when absent)."""
    out = {}
    for name, split in SPLITS.items():
        path = split_dir / f"movie_list_{name}.txt"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    out[line.strip()] = split
    return out
