"""Corpus loaders: real RAVDESS, and every other loader on a small tree of real audio files."""

from __future__ import annotations

import math
import warnings

import pandas as pd
import pytest

from data_prep.corpora import list_corpora, load_corpus
from data_prep.errors import CorpusLayoutError, DataPrepError

#: Loaders tested on generated trees (tests/data_prep/conftest.py builds one tree for each).
FILE_CORPORA = [
    "crema_d",
    "daic_woz",
    "emodb",
    "folder",
    "iemocap",
    "m3ed",
    "ravdess",
    "savee",
    "tess",
]


def load_quiet(name, root, **options) -> pd.DataFrame:
    """load_corpus with its bad-file / no-speaker warnings silenced (tests check attrs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_corpus(name, root, **options)


def bad_paths(df: pd.DataFrame) -> dict[str, str]:
    """The manifest's reported bad files as path -> reason."""
    return {b.path: b.reason for b in df.attrs["bad_files"]}


# --- registry and generic behaviour ------------------------------------------------------------


def test_list_corpora_includes_every_loader():
    names = list_corpora()
    for name in [*FILE_CORPORA, "synthetic"]:
        assert name in names
        assert names[name]  # a description naming the layout


@pytest.mark.parametrize("name", FILE_CORPORA)
def test_valid_tree_loads_cleanly(name, corpus_tree):
    df = load_quiet(name, corpus_tree(name))
    assert len(df) > 0
    assert df.attrs["bad_files"] == []
    assert list(df.columns[:7]) == [
        "path",
        "corpus",
        "speaker",
        "emotion",
        "gender",
        "duration",
        "sample_rate",
    ]
    assert (df["corpus"] == name).all()
    assert df["speaker"].map(lambda s: isinstance(s, str) and s != "").all()
    assert df["emotion"].map(lambda e: isinstance(e, str) and e == e.lower()).all()
    assert set(df["gender"].dropna()) <= {"male", "female"}
    assert (df["sample_rate"] == 16000).all()
    assert (df["duration"] > 0).all()


@pytest.mark.parametrize("name", FILE_CORPORA)
def test_malformed_name_is_reported_and_strict_raises(name, corpus_tree, trees):
    root = corpus_tree(name)
    malformed = trees.CORPUS_TREES[name][1]
    trees.write_tone(root / malformed)
    with pytest.warns(UserWarning, match="skipped 1 file"):
        df = load_corpus(
            name, root, **({"speaker_regex": r"^(spk\d)_"} if name == "folder" else {})
        )
    bad = bad_paths(df)
    assert list(bad) == [str(root / malformed)]
    assert "expected" in bad[str(root / malformed)]
    assert str(root / malformed) not in set(df["path"])
    with pytest.raises(CorpusLayoutError, match="cannot be used"):
        load_quiet(name, root, strict=True)


@pytest.mark.parametrize("name", FILE_CORPORA)
def test_unreadable_audio_is_reported(name, corpus_tree, trees):
    root = corpus_tree(name)
    garbage = trees.add_unreadable(name, root)
    df = load_quiet(name, root)
    reasons = [b.reason for b in df.attrs["bad_files"] if b.path == str(garbage)]
    assert len(reasons) == 1 and reasons[0].startswith("unreadable audio"), df.attrs["bad_files"]
    assert str(garbage) not in set(df["path"])
    with pytest.raises(CorpusLayoutError, match="unreadable audio"):
        load_quiet(name, root, strict=True)


@pytest.mark.parametrize("name", FILE_CORPORA)
def test_missing_root_is_a_clear_error(name, tmp_path):
    with pytest.raises(CorpusLayoutError, match="does not exist"):
        load_corpus(name, tmp_path / "nowhere")


@pytest.mark.parametrize("name", [n for n in FILE_CORPORA if n != "folder"])
def test_wrong_layout_names_the_expected_one(name, tmp_path, trees):
    # A folder of audio in the wrong place: a plausible mistake (wrong root or unrelated data).
    trees.build_tree(tmp_path, {"misc/recording.wav": trees.TONE, "notes.txt": "hello"})
    with pytest.raises(CorpusLayoutError, match="expected"):
        load_corpus(name, tmp_path)


def test_folder_without_label_folders_is_a_layout_error(tmp_path, trees):
    trees.build_tree(tmp_path, {"a.wav": trees.TONE})
    with pytest.raises(CorpusLayoutError, match="sub-folder per label"):
        load_corpus("folder", tmp_path)


def test_unknown_corpus_and_unknown_option(tmp_path):
    with pytest.raises(CorpusLayoutError, match="unknown corpus"):
        load_corpus("no_such_corpus", tmp_path)
    with pytest.raises(DataPrepError, match="accepted: classes"):
        load_corpus("iemocap", tmp_path, clases=4)


# --- RAVDESS ------------------------------------------------------------------------------------


def test_ravdess_real_corpus(ravdess_root):
    df = load_corpus("ravdess", ravdess_root)
    assert len(df) == 1440
    assert df.attrs["bad_files"] == []
    assert df["speaker"].nunique() == 24
    assert (df.groupby("speaker").size() == 60).all()
    assert set(df["emotion"]) == {
        "neutral",
        "calm",
        "happy",
        "sad",
        "angry",
        "fearful",
        "disgust",
        "surprised",
    }
    assert (df["gender"] == df["actor"].map(lambda a: "male" if a % 2 else "female")).all()
    assert (df.groupby("gender")["speaker"].nunique() == 12).all()
    assert (df["duration"] > 0).all()
    assert (df["sample_rate"] == 16000).all()
    # Neutral has no strong intensity: 4 files per neutral actor, 8 for every other emotion.
    assert (df[df["emotion"] == "neutral"]["intensity"] == "normal").all()
    assert df.groupby("emotion").size().to_dict()["neutral"] == 96
    assert df["path"].is_unique
    # The README's byte-identical pair is two distinct utterances of the corpus: both are kept.
    for rep in ("01", "02"):
        assert df["path"].str.endswith(f"Actor_07/03-01-03-01-02-{rep}-07.flac").sum() == 1


def test_ravdess_fields(corpus_tree, trees):
    df = load_quiet("ravdess", corpus_tree("ravdess"))
    row = df[df["path"].str.endswith("03-01-05-02-02-01-01.FLAC")].iloc[0]
    assert row["speaker"] == "01" and row["gender"] == "male" and row["emotion"] == "angry"
    assert row["intensity"] == "strong" and row["statement"] == 2 and row["repetition"] == 1
    assert set(df[df["speaker"] == "02"]["gender"]) == {"female"}
    assert math.isclose(row["duration"], trees.TONE_SECONDS)


def test_ravdess_rejects_song_other_modality_and_misplaced_actor(corpus_tree, trees):
    root = corpus_tree("ravdess")
    trees.write_tone(root / "Actor_01/03-02-03-01-01-01-01.wav")  # song
    trees.write_tone(root / "Actor_01/01-01-03-01-01-01-01.wav")  # audio-video
    trees.write_tone(root / "Actor_01/03-01-03-01-01-01-02.wav")  # actor 02 in Actor_01
    trees.write_tone(root / "Actor_01/03-01-01-02-01-01-01.wav")  # strong neutral does not exist
    bad = {k.rsplit("/", 1)[1]: v for k, v in bad_paths(load_quiet("ravdess", root)).items()}
    assert "song" in bad["03-02-03-01-01-01-01.wav"]
    assert "modality 01" in bad["01-01-03-01-01-01-01.wav"]
    assert "Actor_01" in bad["03-01-03-01-01-01-02.wav"]
    assert "neutral" in bad["03-01-01-02-01-01-01.wav"]


# --- IEMOCAP ------------------------------------------------------------------------------------


def test_iemocap_four_classes(corpus_tree):
    df = load_quiet("iemocap", corpus_tree("iemocap"))
    by_utt = df.set_index("utterance")
    assert by_utt.loc["Ses01F_impro01_F000", "emotion"] == "neutral"
    assert by_utt.loc["Ses01F_impro01_M000", "emotion"] == "happy"  # exc merged into happy
    assert by_utt.loc["Ses01F_impro01_F002", "emotion"] == "happy"
    assert by_utt.loc["Ses02M_script01_1_F000", "emotion"] == "angry"
    assert set(df["emotion"]) <= {"neutral", "happy", "angry", "sad"}
    # The speaker is the final token's letter, not the dialog's (Ses01F dialog, M speaker).
    assert by_utt.loc["Ses01F_impro01_M000", "speaker"] == "Ses01M"
    assert by_utt.loc["Ses01F_impro01_M000", "gender"] == "male"
    assert by_utt.loc["Ses02M_script01_1_F000", "speaker"] == "Ses02F"
    assert by_utt.loc["Ses01F_impro01_F000", "improvised"]
    assert not by_utt.loc["Ses02M_script01_1_F000", "improvised"]
    assert by_utt.loc["Ses02M_script01_1_F000", "session"] == 2
    assert by_utt.loc["Ses01F_impro01_F000", "dialog"] == "Ses01F_impro01"
    assert by_utt.loc["Ses01F_impro01_F000", "activation"] == 3.0
    excluded = df.attrs["excluded"]
    assert excluded["label 'fru' not used with classes=4"] == 1
    assert excluded["label 'xxx' not used with classes=4"] == 1
    assert excluded["label 'sur' not used with classes=4"] == 1
    assert excluded["labelled utterance without audio file"] == 1
    assert df.attrs["bad_files"] == []  # excluded labels are not bad files
    assert not df["path"].str.contains("dialog/wav").any()


def test_iemocap_all_classes(corpus_tree):
    root = corpus_tree("iemocap")
    df = load_quiet("iemocap", root, classes=None).set_index("utterance")
    assert df.loc["Ses01F_impro01_M000", "emotion"] == "excited"
    assert df.loc["Ses01F_impro01_F001", "emotion"] == "frustrated"
    assert df.loc["Ses02M_script01_1_M000", "emotion"] == "surprised"
    assert "Ses01F_impro01_M001" not in df.index  # xxx: no majority label
    with pytest.raises(DataPrepError, match="classes must be 4 or None"):
        load_corpus("iemocap", root, classes=6)


def test_iemocap_audio_without_label_is_bad(corpus_tree, trees):
    root = corpus_tree("iemocap")
    extra = root / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M002.wav"
    trees.write_tone(extra)
    bad = load_quiet("iemocap", root).attrs["bad_files"]
    assert [b.path for b in bad] == [str(extra)]
    assert "no label line" in bad[0].reason and "EmoEvaluation" in bad[0].reason


def test_iemocap_session_without_labels_is_a_layout_error(corpus_tree):
    root = corpus_tree("iemocap")
    (root / "Session2/dialog/EmoEvaluation/Ses02M_script01_1.txt").unlink()
    with pytest.raises(CorpusLayoutError, match="no label files"):
        load_corpus("iemocap", root)


# --- CREMA-D ------------------------------------------------------------------------------------


def test_crema_d_fields_and_demographics(corpus_tree):
    root = corpus_tree("crema_d")
    df = load_quiet("crema_d", root).set_index("speaker")
    assert set(df.loc["1001", "gender"]) == {"male"}
    assert set(df.loc["1002", "gender"]) == {"female"}
    row = (
        load_quiet("crema_d", root)
        .set_index("path")
        .loc[str(root / "AudioWAV/1001_IEO_HAP_HI.wav")]
    )
    assert row["emotion"] == "happy" and row["intensity"] == "high" and row["sentence"] == "IEO"
    assert row["age"] == 51
    (root / "VideoDemographics.csv").unlink()
    assert load_quiet("crema_d", root)["gender"].isna().all()


def test_crema_d_files_directly_in_root(tmp_path, trees):
    trees.build_tree(tmp_path, {"1050_WSI_FEA_MD.wav": trees.TONE})
    df = load_quiet("crema_d", tmp_path)
    assert df.loc[0, "emotion"] == "fearful" and df.loc[0, "intensity"] == "medium"


# --- TESS, EmoDB, SAVEE ---------------------------------------------------------------------------


def test_tess_fields(corpus_tree):
    df = load_quiet("tess", corpus_tree("tess"))
    assert set(df["speaker"]) == {"OAF", "YAF"}
    assert set(df["gender"]) == {"female"}
    assert set(df["emotion"]) == {"angry", "fearful", "surprised", "sad"}
    row = df[df["word"] == "bath"].iloc[0]
    assert (
        row["speaker"] == "YAF" and row["emotion"] == "surprised" and row["age_group"] == "younger"
    )


def test_tess_folder_and_name_must_agree(corpus_tree, trees):
    root = corpus_tree("tess")
    wrong = root / "TESS Toronto emotional speech set data/OAF_angry/OAF_lot_sad.wav"
    trees.write_tone(wrong)
    bad = bad_paths(load_quiet("tess", root))
    assert "folder is OAF_angry" in bad[str(wrong)]


def test_emodb_fields(corpus_tree):
    df = load_quiet("emodb", corpus_tree("emodb")).set_index("speaker")
    assert df.loc["03", "emotion"] == "happy" and df.loc["03", "gender"] == "male"
    assert df.loc["08", "emotion"] == "angry" and df.loc["08", "gender"] == "female"
    assert df.loc["16", "emotion"] == "bored" and df.loc["16", "text"] == "a05"
    assert df.loc["10", "emotion"] == "neutral" and df.loc["10", "version"] == "d"


def test_emodb_unknown_speaker_and_emotion(corpus_tree, trees):
    root = corpus_tree("emodb")
    trees.write_tone(root / "wav/04a01Fa.wav")
    trees.write_tone(root / "wav/03a01Xa.wav")
    bad = {k.rsplit("/", 1)[1]: v for k, v in bad_paths(load_quiet("emodb", root)).items()}
    assert "speaker 04" in bad["04a01Fa.wav"] and "emotion letter X" in bad["03a01Xa.wav"]


def test_savee_fields_and_flat_names(corpus_tree, trees):
    root = corpus_tree("savee")
    trees.write_tone(root / "AudioData/JE_d07.wav")
    df = load_quiet("savee", root)
    assert set(df["gender"]) == {"male"}
    got = {(r.speaker, r.emotion, r.sentence) for r in df.itertuples()}
    assert got == {
        ("DC", "angry", 1),
        ("DC", "sad", 3),
        ("KL", "surprised", 15),
        ("KL", "neutral", 30),
        ("JE", "disgust", 7),
    }


# --- M3ED ---------------------------------------------------------------------------------------


def test_m3ed_fields_and_splits(corpus_tree):
    df = load_quiet("m3ed", corpus_tree("m3ed")).set_index("utterance")
    assert len(df) == 6
    assert df.loc["anjia_1_1", "emotion"] == "neutral"
    assert df.loc["anjia_1_2", "emotion"] == "angry"  # found as B_anjia_1_2.wav
    assert df.loc["anjia_1_3", "emotion"] == "surprised"
    assert df.loc["woju_1_1", "emotion"] == "fearful"
    assert df.loc["anjia_1_1", "speaker"] == "anjia_房似锦"
    assert df.loc["anjia_2_1", "speaker"] == "anjia_房似锦"  # same character across dialogs
    assert df.loc["anjia_1_2", "gender"] == "male"
    assert df.loc["anjia_1_1", "split"] == "train" and df.loc["woju_1_1", "split"] == "test"
    assert df.loc["anjia_2_2", "dialog"] == "anjia_2" and df.loc["anjia_2_2", "series"] == "anjia"
    assert df.attrs["excluded"] == {"annotated utterance without audio file": 1}


def test_m3ed_speaker_prefix_must_match(corpus_tree, trees):
    root = corpus_tree("m3ed")
    wrong = trees.write_tone(root / "audio/B_woju_1_2.wav")  # woju_1_2 is spoken by A
    bad = bad_paths(load_quiet("m3ed", root))
    assert "spoken by A" in bad[str(wrong)]


def test_m3ed_without_annotation_is_a_layout_error(corpus_tree):
    root = corpus_tree("m3ed")
    (root / "annotation.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CorpusLayoutError, match="cannot read M3ED annotation"):
        load_corpus("m3ed", root)


# --- DAIC-WOZ -----------------------------------------------------------------------------------


def test_daic_woz_segments(corpus_tree):
    df = load_quiet("daic_woz", corpus_tree("daic_woz"))
    p300 = df[df["speaker"] == "300"].sort_values("start")
    # 1.0-1.8 and 2.0-2.6 merge (no Ellie between, gap 0.2 s); "mhm" (0.4 s) is dropped.
    assert list(zip(p300["start"], p300["end"])) == [(1.0, 2.6), (4.0, 5.5)]
    assert p300.iloc[0]["text"] == "hello i'm fine"
    assert (p300["duration"] - (p300["end"] - p300["start"])).abs().max() < 1e-9
    assert set(p300["emotion"]) == {"not_depressed"} and set(p300["gender"]) == {"male"}
    assert set(p300["split"]) == {"train"} and set(p300["phq8_score"]) == {2}
    p301 = df[df["speaker"] == "301"]
    assert set(p301["emotion"]) == {"depressed"} and set(p301["gender"]) == {"female"}
    assert set(p301["split"]) == {"dev"} and len(p301) == 2  # 0.8 s gap > merge_gap_s
    assert df.attrs["excluded"] == {"segment shorter than min_segment_s=1.0": 1}
    assert df["path"].str.endswith("_AUDIO.wav").all()


def test_daic_woz_options(corpus_tree):
    root = corpus_tree("daic_woz")
    df = load_quiet("daic_woz", root, min_segment_s=0.0, merge_gap_s=1.0)
    p301 = df[df["speaker"] == "301"]
    assert list(zip(p301["start"], p301["end"])) == [(0.5, 4.5)]
    assert len(df[df["speaker"] == "300"]) == 3


def test_daic_woz_unlabelled_participant_and_segment_past_end(corpus_tree, trees):
    root = corpus_tree("daic_woz")
    unlabelled = trees.write_daic_audio(root, 999)
    short = trees.write_daic_audio(root, 300, seconds=3.0)  # transcript goes to 5.5 s
    bad = bad_paths(load_quiet("daic_woz", root))
    assert "no PHQ-8 label" in bad[str(unlabelled)]
    assert "outside the audio" in bad[str(short)]


def test_daic_woz_without_label_files_is_a_layout_error(corpus_tree):
    root = corpus_tree("daic_woz")
    for name in (
        "train_split_Depression_AVEC2017.csv",
        "dev_split_Depression_AVEC2017.csv",
        "full_test_split.csv",
    ):
        (root / name).unlink()
    with pytest.raises(CorpusLayoutError, match="train_split_Depression_AVEC2017.csv"):
        load_corpus("daic_woz", root)


# --- folder -------------------------------------------------------------------------------------


def test_folder_labels_and_speaker_regex(corpus_tree):
    root = corpus_tree("folder")
    df = load_quiet("folder", root, speaker_regex=r"^(?P<speaker>spk\d)_")
    got = {(r.emotion, r.speaker) for r in df.itertuples()}
    assert got == {("happy", "spk1"), ("happy", "spk2"), ("sad", "spk1"), ("angry", "spk2")}
    assert df["gender"].isna().all()
    mapped = load_quiet("folder", root, speaker_regex=r"spk\d", label_map={"Happy": "joy"})
    assert "joy" in set(mapped["emotion"]) and set(mapped["speaker"]) == {"spk1", "spk2"}


def test_folder_without_speaker_regex_warns(corpus_tree):
    with pytest.warns(UserWarning, match="speaker-independent splits need speakers"):
        df = load_corpus("folder", corpus_tree("folder"))
    assert set(df["speaker"]) == {"unknown"}


def test_garbage_bytes_helper_is_not_audio(tmp_path, trees):
    # Guards the fixture itself: the unreadable-file tests rely on soundfile rejecting it.
    import soundfile as sf

    path = tmp_path / "x.wav"
    path.write_bytes(trees.GARBAGE)
    with pytest.raises(Exception):  # noqa: B017 - soundfile's error type varies by version
        sf.info(str(path))


def test_every_file_corpus_has_a_tree(trees):
    assert sorted(trees.CORPUS_TREES) == FILE_CORPORA
