"""Helpers that build small corpus trees of real audio files in the corpora's public layouts.

``build_tree(root, spec)`` writes files from a ``{relative path: content}`` mapping: ``TONE``
becomes 0.2 s of a 440 Hz sine written by soundfile in the format its extension names (WAV or
FLAC, any case), ``bytes`` are written as they are (e.g. garbage with a ``.wav`` name) and ``str``
as UTF-8 text (label files, transcripts, CSVs). ``CORPUS_TREES`` holds, per corpus, a valid tree
plus the name of a malformed file and of an unreadable one, so that generic tests can run on
every loader.

Test modules reach these helpers through the ``trees`` fixture rather than by importing this file:
importing a conftest by module name breaks as soon as the package layout of ``tests/`` changes.
"""

from __future__ import annotations

import json
import textwrap
import types
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

#: Placeholder content: a short real audio file.
TONE = object()
#: Bytes that no audio decoder accepts.
GARBAGE = b"this is not audio at all " * 8

SAMPLE_RATE = 16000
TONE_SECONDS = 0.2


def write_tone(
    path: Path, seconds: float = TONE_SECONDS, sample_rate: int = SAMPLE_RATE, freq: float = 440.0
) -> Path:
    """Write a sine tone; the container (WAV/FLAC) follows the extension, case-insensitively."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    audio = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    fmt = {".wav": "WAV", ".flac": "FLAC"}[path.suffix.lower()]
    sf.write(str(path), audio, sample_rate, format=fmt, subtype="PCM_16")
    return path


def build_tree(root: Path, spec: Mapping[str, object]) -> Path:
    """Write every ``relative path: content`` of ``spec`` below ``root`` (see module docstring)."""
    for rel, content in spec.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is TONE:
            write_tone(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            raise TypeError(f"unsupported content for {rel}: {content!r}")
    return root


# --- one valid tree per corpus ------------------------------------------------------------------


def ravdess_spec() -> dict[str, object]:
    """Two actors (one male, one female), a few emotions, WAV and FLAC."""
    return {
        "Actor_01/03-01-01-01-01-01-01.wav": TONE,
        "Actor_01/03-01-05-02-02-01-01.FLAC": TONE,
        "Actor_02/03-01-08-01-01-02-02.flac": TONE,
        "Actor_02/03-01-03-02-01-01-02.wav": TONE,
        "README.md": "not audio, ignored",
    }


def _iemocap_labels(lines: list[tuple[str, str]]) -> str:
    """An EmoEvaluation file with the release's header and per-evaluator noise lines."""
    out = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for i, (utt, code) in enumerate(lines):
        out.append(
            f"[{i * 3 + 0.5:.4f} - {i * 3 + 2.5:.4f}]\t{utt}\t{code}\t[2.5000, 3.0000, 3.5000]"
        )
        out.append("C-E1:\tNeutral state;\t()")
        out.append("A-E1:\tval 3; act 3; dom  3;\t()")
        out.append("")
    return "\n".join(out) + "\n"


def iemocap_spec() -> dict[str, object]:
    """Session1 (improvised) and Session2 (scripted), labels covering all code paths."""
    s1 = "Session1/sentences/wav/Ses01F_impro01"
    s2 = "Session2/sentences/wav/Ses02M_script01_1"
    return {
        f"{s1}/Ses01F_impro01_F000.wav": TONE,
        f"{s1}/Ses01F_impro01_M000.wav": TONE,
        f"{s1}/Ses01F_impro01_F001.wav": TONE,
        f"{s1}/Ses01F_impro01_M001.wav": TONE,
        f"{s1}/Ses01F_impro01_F002.wav": TONE,
        f"{s2}/Ses02M_script01_1_F000.wav": TONE,
        f"{s2}/Ses02M_script01_1_M000.flac": TONE,
        # Whole-dialog recordings live elsewhere in the release and must be ignored.
        "Session1/dialog/wav/Ses01F_impro01.wav": TONE,
        "Session1/dialog/EmoEvaluation/Ses01F_impro01.txt": _iemocap_labels(
            [
                ("Ses01F_impro01_F000", "neu"),
                ("Ses01F_impro01_M000", "exc"),
                ("Ses01F_impro01_F001", "fru"),
                ("Ses01F_impro01_M001", "xxx"),
                ("Ses01F_impro01_F002", "hap"),
                ("Ses01F_impro01_F003", "sad"),  # labelled, but no audio file
            ]
        ),
        # Sub-folders of EmoEvaluation hold per-evaluator files in another format: ignored.
        "Session1/dialog/EmoEvaluation/Categorical/Ses01F_impro01_e1_cat.txt": "x :Angry; ()\n",
        "Session2/dialog/EmoEvaluation/Ses02M_script01_1.txt": _iemocap_labels(
            [("Ses02M_script01_1_F000", "ang"), ("Ses02M_script01_1_M000", "sur")]
        ),
    }


def crema_d_spec() -> dict[str, object]:
    """Two actors with demographics."""
    return {
        "AudioWAV/1001_DFA_ANG_XX.wav": TONE,
        "AudioWAV/1001_IEO_HAP_HI.wav": TONE,
        "AudioWAV/1002_TIE_SAD_LO.WAV": TONE,
        "AudioWAV/1002_MTI_NEU_XX.flac": TONE,
        "VideoDemographics.csv": (
            "ActorID,Age,Sex,Race,Ethnicity\n"
            "1001,51,Male,Caucasian,Not Hispanic\n"
            "1002,21,Female,Caucasian,Not Hispanic\n"
        ),
    }


def tess_spec() -> dict[str, object]:
    """Both speakers, folder spellings as in the release, inside an extra top folder."""
    top = "TESS Toronto emotional speech set data"
    return {
        f"{top}/OAF_angry/OAF_back_angry.wav": TONE,
        f"{top}/OAF_Fear/OAF_bar_fear.wav": TONE,
        f"{top}/OAF_Pleasant_surprise/OAF_base_ps.wav": TONE,
        f"{top}/YAF_pleasant_surprised/YAF_bath_ps.flac": TONE,
        f"{top}/YAF_sad/YAF_bean_sad.wav": TONE,
    }


def emodb_spec() -> dict[str, object]:
    """Speakers of both genders, several emotions."""
    return {
        "wav/03a01Fa.wav": TONE,
        "wav/08b02Wb.wav": TONE,
        "wav/16a05Lc.flac": TONE,
        "wav/10b10Nd.wav": TONE,
    }


def savee_spec() -> dict[str, object]:
    """Two speakers, one- and two-letter codes."""
    return {
        "AudioData/DC/a01.wav": TONE,
        "AudioData/DC/sa03.wav": TONE,
        "AudioData/KL/su15.wav": TONE,
        "AudioData/KL/n30.flac": TONE,
        "AudioData/DC/Info.txt": "speaker info, ignored",
    }


def m3ed_annotation() -> dict:
    """Two series, three dialogs, in the release's series -> dialog -> utterance layout."""

    def utt(speaker: str, emo: str, text: str = "你好") -> dict:
        return {
            "StartTime": "00:00:00:01",
            "EndTime": "00:00:01:04",
            "Text": text,
            "Speaker": speaker,
            "EmoAnnotation": {
                "EmoAnnotator1": emo,
                "EmoAnnotator2": emo,
                "EmoAnnotator3": emo,
                "final_mul_emo": emo,
                "final_main_emo": emo,
            },
        }

    people = {
        "A": {"Name": "房似锦", "Age": "mid", "Gender": "female", "OtherName": []},
        "B": {"Name": "徐文昌", "Age": "mid", "Gender": "male", "OtherName": []},
    }
    return {
        "anjia": {
            "anjia_1": {
                "SpeakerInfo": people,
                "Dialog": {
                    "anjia_1_1": utt("A", "Neutral"),
                    "anjia_1_2": utt("B", "Anger"),
                    "anjia_1_3": utt("A", "Surprise"),
                },
            },
            "anjia_2": {
                "SpeakerInfo": people,
                "Dialog": {"anjia_2_1": utt("A", "Happy"), "anjia_2_2": utt("B", "Sad")},
            },
        },
        "woju": {
            "woju_1": {
                "SpeakerInfo": {"A": {"Name": "海萍", "Age": "young", "Gender": "female"}},
                "Dialog": {"woju_1_1": utt("A", "Fear"), "woju_1_2": utt("A", "Disgust")},
            }
        },
    }


def m3ed_spec() -> dict[str, object]:
    """Annotation, split lists and audio in both accepted file namings; one utterance unvoiced."""
    return {
        "annotation.json": json.dumps(m3ed_annotation(), ensure_ascii=False),
        "splitInfo/movie_list_train.txt": "anjia\nfendou\n",
        "splitInfo/movie_list_val.txt": "humamaoba\n",
        "splitInfo/movie_list_test.txt": "woju\n",
        "audio/anjia_1_1.wav": TONE,
        "audio/B_anjia_1_2.wav": TONE,
        "audio/anjia_1_3.flac": TONE,
        "audio/anjia_2_1.wav": TONE,
        "audio/anjia_2_2.wav": TONE,
        "audio/woju_1_1.wav": TONE,
        # woju_1_2 has no audio: counted as excluded, not a bad file.
    }


def _daic_transcript(lines: list[tuple[float, float, str, str]]) -> str:
    out = ["start_time\tstop_time\tspeaker\tvalue"]
    out += [f"{a:.3f}\t{b:.3f}\t{s}\t{t}" for a, b, s, t in lines]
    return "\n".join(out) + "\n"


DAIC_SECONDS = 6.0


def daic_woz_spec() -> dict[str, object]:
    """Two interviews (train, dev) with transcripts whose timings fit a 6 s recording.

    Participant 300's transcript has two Participant lines 0.2 s apart (merged), a 0.4 s
    "mhm" (dropped by min_segment_s=1.0) and a turn after an Ellie line (not merged).
    """
    t300 = _daic_transcript(
        [
            (0.0, 0.8, "Ellie", "hi i'm ellie"),
            (1.0, 1.8, "Participant", "hello"),
            (2.0, 2.6, "Participant", "i'm fine"),
            (2.7, 3.0, "Ellie", "okay"),
            (3.1, 3.5, "Participant", "mhm"),
            (3.6, 3.9, "Ellie", "tell me more"),
            (4.0, 5.5, "Participant", "i like music"),
        ]
    )
    t301 = _daic_transcript([(0.5, 2.0, "Participant", "yes"), (2.8, 4.5, "Participant", "no")])
    return {
        "300_P/300_TRANSCRIPT.csv": t300,
        "301_P/301_TRANSCRIPT.csv": t301,
        "train_split_Depression_AVEC2017.csv": textwrap.dedent(
            """\
            Participant_ID,PHQ8_Binary,PHQ8_Score,Gender,PHQ8_NoInterest
            300,0,2,1,0
            """
        ),
        "dev_split_Depression_AVEC2017.csv": textwrap.dedent(
            """\
            Participant_ID,PHQ8_Binary,PHQ8_Score,Gender,PHQ8_NoInterest
            301,1,14,0,2
            303,0,0,0,0
            """
        ),
        "full_test_split.csv": "Participant_ID,PHQ_Binary,PHQ_Score,Gender\n302,1,12,1\n",
    }


def write_daic_audio(root: Path, pid: int, seconds: float = DAIC_SECONDS) -> Path:
    """The whole-interview recording of one participant."""
    return write_tone(root / f"{pid}_P" / f"{pid}_AUDIO.wav", seconds=seconds)


def folder_spec() -> dict[str, object]:
    """Three labels, speakers encoded as a file-name prefix."""
    return {
        "Happy/spk1_001.wav": TONE,
        "Happy/spk2_001.flac": TONE,
        "sad/spk1_002.wav": TONE,
        "angry/sub/spk2_003.wav": TONE,
    }


def _build(spec: Callable[[], dict[str, object]], extra: Callable[[Path], None] | None = None):
    def build(root: Path) -> Path:
        build_tree(root, spec())
        if extra is not None:
            extra(root)
        return root

    return build


def _daic_extra(root: Path) -> None:
    write_daic_audio(root, 300)
    write_daic_audio(root, 301)


#: corpus -> (builder of a valid tree, a malformed file name, an unreadable file with a valid
#: name and all it needs to be parsed), paths relative to the corpus root.
CORPUS_TREES: dict[str, tuple[Callable[[Path], Path], str, str]] = {
    "ravdess": (
        _build(ravdess_spec),
        "Actor_01/03-01-01-01-01.wav",
        "Actor_02/03-01-04-01-01-01-02.wav",
    ),
    "iemocap": (
        _build(iemocap_spec),
        "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_X9.wav",
        "Session2/sentences/wav/Ses02M_script01_1/Ses02M_script01_1_F000.flac",
    ),
    "crema_d": (
        _build(crema_d_spec),
        "AudioWAV/1001_DFA_ANGRY.wav",
        "AudioWAV/1001_ITS_FEA_MD.wav",
    ),
    "tess": (
        _build(tess_spec),
        "TESS Toronto emotional speech set data/OAF_angry/OAF-back-angry.wav",
        "TESS Toronto emotional speech set data/OAF_angry/OAF_cab_angry.wav",
    ),
    "emodb": (_build(emodb_spec), "wav/3a01Fa.wav", "wav/09a02Ta.wav"),
    "savee": (_build(savee_spec), "AudioData/DC/anger01.wav", "AudioData/KL/h02.wav"),
    "m3ed": (_build(m3ed_spec), "audio/not_an_utterance.wav", "audio/woju_1_2.wav"),
    "daic_woz": (
        _build(daic_woz_spec, _daic_extra),
        "300_P/300_AUDIO_copy.wav",
        "302_P/302_AUDIO.wav",
    ),
    "folder": (_build(folder_spec), "stray_top_level.wav", "sad/spk2_004.wav"),
}


def add_unreadable(corpus: str, root: Path) -> Path:
    """Write the corpus' unreadable file (and whatever makes it otherwise valid)."""
    rel = CORPUS_TREES[corpus][2]
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(GARBAGE)
    if corpus == "daic_woz":
        # Participant 302 is labelled in full_test_split.csv; give it a transcript too.
        (path.parent / "302_TRANSCRIPT.csv").write_text(
            _daic_transcript([(0.5, 2.5, "Participant", "hello")]), encoding="utf-8"
        )
    if corpus == "iemocap":
        # A valid name and a label line already exist for F000 (as .wav): drop the .wav so the
        # garbage .flac is the only file of that utterance.
        (path.with_suffix(".wav")).unlink()
    return path


@pytest.fixture
def corpus_tree(tmp_path) -> Callable[[str], Path]:
    """``corpus_tree(name)`` -> root of a fresh, valid small tree of that corpus."""

    def make(name: str) -> Path:
        root = tmp_path / name
        root.mkdir()
        return CORPUS_TREES[name][0](root)

    return make


@pytest.fixture(scope="session")
def trees() -> types.SimpleNamespace:
    """The tree-building helpers and constants of this module, for test modules."""
    return types.SimpleNamespace(
        TONE=TONE,
        GARBAGE=GARBAGE,
        TONE_SECONDS=TONE_SECONDS,
        CORPUS_TREES=CORPUS_TREES,
        build_tree=build_tree,
        write_tone=write_tone,
        write_daic_audio=write_daic_audio,
        add_unreadable=add_unreadable,
    )
