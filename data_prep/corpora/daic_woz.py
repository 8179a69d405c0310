"""DAIC-WOZ (Distress Analysis Interview Corpus, Wizard-of-Oz part; AVEC 2016/2017 depression).

Layout read::

    root/<PID>_P/<PID>_AUDIO.wav          the whole interview (Ellie and the participant)
    root/<PID>_P/<PID>_TRANSCRIPT.csv     tab-separated: start_time, stop_time, speaker, value
    root/train_split_Depression_AVEC2017.csv   Participant_ID, PHQ8_Binary, PHQ8_Score, Gender, ...
    root/dev_split_Depression_AVEC2017.csv     same columns
    root/full_test_split.csv                   Participant_ID, PHQ_Binary, PHQ_Score, Gender
    (the label CSVs may also sit in root/labels/)

``Gender`` is coded 1 = male, 0 = female (AVEC 2017 documentation). ``test_split_Depression_
AVEC2017.csv`` has no PHQ-8 labels, so test participants are usable only with
``full_test_split.csv``.

Each row is one *segment* of a participant's speech: consecutive Participant lines of the
transcript (no Ellie line between them, gap at most ``merge_gap_s``) are merged, and segments
shorter than ``min_segment_s`` are left out. ``path`` is the whole interview file, so rows carry
``start``/``end`` in seconds and consumers must read only that span. The label is the
participant's: ``depressed`` / ``not_depressed`` from the PHQ-8 binary (score >= 10).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from data_prep.corpora._common import count, describe_children, list_audio, require
from data_prep.corpora.base import BadFile, LoadResult, register_corpus
from data_prep.errors import CorpusLayoutError

LABEL_FILES = {
    "train": "train_split_Depression_AVEC2017.csv",
    "dev": "dev_split_Depression_AVEC2017.csv",
    "test": "full_test_split.csv",
}
PATTERN = "<PID>_P/<PID>_AUDIO.wav (e.g. 300_P/300_AUDIO.wav)"
_PARTICIPANT_DIR = re.compile(r"(\d+)_P")
_AUDIO = re.compile(r"(\d+)_AUDIO", re.IGNORECASE)


@register_corpus(
    "daic_woz",
    "DAIC-WOZ: root/<PID>_P/<PID>_AUDIO.wav + <PID>_TRANSCRIPT.csv, labels in "
    "root/train_split_Depression_AVEC2017.csv, dev_split_Depression_AVEC2017.csv, "
    "full_test_split.csv; one row per participant speech segment (start/end columns)",
)
def load(root: Path, min_segment_s: float = 1.0, merge_gap_s: float = 0.5) -> LoadResult:
    """Participant speech segments of every labelled DAIC-WOZ interview.

    Args:
        root: Folder holding the ``<PID>_P`` folders and the split CSVs.
        min_segment_s: Segments shorter than this (seconds, after merging) are left out and
            counted in ``excluded``; backchannels ("mhm") carry little and are very numerous.
        merge_gap_s: Consecutive Participant lines with no Ellie line between them are merged
            when the pause between them is at most this many seconds (the transcripts split
            answers at short pauses). Use a negative value to never merge.

    Returns:
        Rows with ``speaker`` (the participant id as a string, e.g. ``"300"``), ``emotion``
        (``depressed``/``not_depressed``), ``gender``, ``start``/``end`` (seconds in the file),
        ``participant`` (int), ``split`` (train/dev/test), ``phq8_score``, ``phq8_binary`` and
        ``text`` (the transcript of the segment).

    Raises:
        CorpusLayoutError: no ``<PID>_P`` folder, or none of the label CSVs.
    """
    participant_dirs = [
        p for p in root.iterdir() if p.is_dir() and _PARTICIPANT_DIR.fullmatch(p.name)
    ]
    require(
        bool(participant_dirs),
        "DAIC-WOZ",
        root,
        f"participant folders {PATTERN} with <PID>_TRANSCRIPT.csv",
        describe_children(root),
    )
    labels = _read_labels(root)

    rows, bad = [], []
    excluded: dict[str, int] = {}
    with_audio: set[Path] = set()
    for path in list_audio(root):
        folder = _PARTICIPANT_DIR.fullmatch(path.parent.name)
        m = _AUDIO.fullmatch(path.stem)
        if folder is None or m is None or m.group(1) != folder.group(1):
            bad.append(BadFile(str(path), f"not a participant interview; expected {PATTERN}"))
            continue
        with_audio.add(path.parent)
        pid = int(m.group(1))
        label = labels.get(pid)
        if label is None:
            bad.append(
                BadFile(
                    str(path),
                    f"participant {pid} has no PHQ-8 label in any of "
                    f"{', '.join(LABEL_FILES.values())}",
                )
            )
            continue
        transcript = path.parent / f"{pid}_TRANSCRIPT.csv"
        if not transcript.is_file():
            bad.append(BadFile(str(path), f"no transcript {transcript.name} next to it"))
            continue
        try:
            turns = _read_transcript(transcript)
        except ValueError as exc:
            bad.append(BadFile(str(path), f"transcript {transcript.name}: {exc}"))
            continue
        segments = _participant_segments(turns, merge_gap_s)
        if not segments:
            bad.append(BadFile(str(path), f"transcript {transcript.name} has no Participant line"))
            continue
        for start, end, text in segments:
            if end - start < min_segment_s:
                count(excluded, f"segment shorter than min_segment_s={min_segment_s}")
                continue
            rows.append(
                {
                    "path": str(path),
                    "speaker": str(pid),
                    "emotion": "depressed" if label["binary"] else "not_depressed",
                    "gender": label["gender"],
                    "start": start,
                    "end": end,
                    "duration": end - start,
                    "participant": pid,
                    "split": label["split"],
                    "phq8_score": label["score"],
                    "phq8_binary": label["binary"],
                    "text": text,
                }
            )
    no_audio = [d for d in participant_dirs if d not in with_audio]
    if no_audio:
        count(excluded, "participant folder without <PID>_AUDIO.wav", len(no_audio))
    return LoadResult(rows, bad, excluded)


def _read_labels(root: Path) -> dict[int, dict]:
    """Participant id -> split, PHQ-8 binary/score and gender, from the label CSVs."""
    out: dict[int, dict] = {}
    found = []
    for split, name in LABEL_FILES.items():
        path = next((p for p in (root / name, root / "labels" / name) if p.is_file()), None)
        if path is None:
            continue
        found.append(path)
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            # Column spellings differ between files (PHQ8_Binary vs PHQ_Binary, participant_ID).
            cols = {c.strip().lower().replace("phq8_", "phq_"): c for c in reader.fieldnames or []}
            needed = ("participant_id", "phq_binary", "phq_score")
            if not all(c in cols for c in needed):
                raise CorpusLayoutError(
                    f"DAIC-WOZ label file {path} lacks Participant_ID, PHQ8_Binary and "
                    f"PHQ8_Score columns (found {', '.join(reader.fieldnames or [])})"
                )
            for rec in reader:
                try:
                    pid = int(float(rec[cols["participant_id"]]))
                    binary = int(float(rec[cols["phq_binary"]]))
                    score = int(float(rec[cols["phq_score"]]))
                except (TypeError, ValueError):
                    continue  # blank trailing lines of the CSV
                gender = None
                if "gender" in cols:
                    g = str(rec[cols["gender"]]).strip().lower()
                    gender = {"1": "male", "0": "female", "male": "male", "female": "female"}.get(g)
                out[pid] = {"split": split, "binary": binary, "score": score, "gender": gender}
    if not found:
        raise CorpusLayoutError(
            f"no DAIC-WOZ label file in {root} (or {root / 'labels'}): expected "
            f"{', '.join(LABEL_FILES.values())}"
        )
    return out


def _read_transcript(path: Path) -> list[tuple[float, float, str, str]]:
    """Transcript lines as (start, stop, speaker, text), in file order."""
    with path.open(newline="", encoding="utf-8", errors="replace") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, None)
        if header is None:
            raise ValueError("empty file")
        names = [h.strip().lower() for h in header]
        try:
            i_start, i_stop = names.index("start_time"), names.index("stop_time")
            i_spk, i_val = names.index("speaker"), names.index("value")
        except ValueError:
            raise ValueError(
                f"expected a tab-separated header start_time, stop_time, speaker, value; "
                f"got {header}"
            ) from None
        turns = []
        for rec in reader:
            if len(rec) <= max(i_start, i_stop, i_spk):
                continue  # blank line
            try:
                start, stop = float(rec[i_start]), float(rec[i_stop])
            except ValueError:
                raise ValueError(f"non-numeric time in line {rec}") from None
            text = rec[i_val].strip() if len(rec) > i_val else ""
            turns.append((start, stop, rec[i_spk].strip().lower(), text))
    return turns


def _participant_segments(
    turns: list[tuple[float, float, str, str]], merge_gap_s: float
) -> list[tuple[float, float, str]]:
    """Merge consecutive Participant lines into (start, end, text) segments."""
    segments: list[list] = []
    previous_was_participant = False
    for start, stop, speaker, text in turns:
        if speaker != "participant":
            previous_was_participant = False
            continue
        if stop <= start:
            previous_was_participant = False
            continue  # zero-length lines exist in some transcripts; they hold no audio
        if previous_was_participant and segments and start - segments[-1][1] <= merge_gap_s:
            segments[-1][1] = max(segments[-1][1], stop)
            segments[-1][2] = f"{segments[-1][2]} {text}".strip()
        else:
            segments.append([start, stop, text])
        previous_was_participant = True
    return [(float(s), float(e), t) for s, e, t in segments]
