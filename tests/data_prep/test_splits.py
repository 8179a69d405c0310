"""Speaker-independent splits: no leakage, coverage, determinism, stratification, error cases."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

import data_prep
from data_prep import splits
from data_prep.errors import DataPrepError
from data_prep.splits import LeakageError, Split, SplitError

EMOTIONS = ("neutral", "happy", "sad", "angry")


def make_manifest(n_speakers: int = 12, seed: int = 0, skewed: bool = True) -> pd.DataFrame:
    """Rows of ``n_speakers`` alternating-gender speakers; ``skewed`` gives each speaker its own
    emotion mix (some speakers have few or no takes of an emotion), as in real corpora."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_speakers):
        for e in EMOTIONS:
            n = int(rng.integers(0, 12)) if skewed else 5
            rows += [
                {"speaker": f"s{s:02d}", "emotion": e, "gender": ("female", "male")[s % 2]}
            ] * n
    df = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return df


def iemocap_manifest(per_speaker: int = 6) -> pd.DataFrame:
    """Five sessions with one female and one male actor each, speaker ids as in IEMOCAP."""
    rows = []
    for ses in range(1, 6):
        for g in ("F", "M"):
            for i in range(per_speaker):
                rows.append(
                    {
                        "speaker": f"Ses0{ses}{g}",
                        "emotion": EMOTIONS[i % 4],
                        "gender": "female" if g == "F" else "male",
                        "session": ses,
                    }
                )
    return pd.DataFrame(rows)


# --- speaker_kfold -----------------------------------------------------------------------------


@pytest.mark.parametrize("stratify", [True, False])
def test_kfold_tests_every_speaker_once_without_leakage(stratify):
    df = make_manifest(12)
    folds = splits.speaker_kfold(df, n_folds=4, seed=0, stratify=stratify)
    assert [f.name for f in folds] == ["fold0", "fold1", "fold2", "fold3"]
    tested = [s for f in folds for s in f.test_speakers]
    assert sorted(tested) == sorted(df["speaker"].unique())  # each exactly once
    assert np.array_equal(np.sort(np.concatenate([f.test for f in folds])), np.arange(len(df)))
    for f in folds:
        splits.check_no_leakage(df, f)
        every = np.concatenate([f.train, f.val, f.test])
        assert np.array_equal(np.sort(every), np.arange(len(df)))  # a partition of the rows
        # Default: 0.15 of the fold's training speakers, rounded, at least one.
        n_train = 12 - len(f.test_speakers)
        assert len(f.val_speakers) == max(1, round(0.15 * n_train))
        assert set(df["speaker"].iloc[f.test]) == set(f.test_speakers)


def test_kfold_is_deterministic_per_seed():
    df = make_manifest(12)
    assert splits.speaker_kfold(df, 4, seed=7) == splits.speaker_kfold(df, 4, seed=7)
    a = [f.test_speakers for f in splits.speaker_kfold(df, 4, seed=0)]
    b = [f.test_speakers for f in splits.speaker_kfold(df, 4, seed=1)]
    assert a != b


def test_kfold_stratification_keeps_emotion_mix_roughly_balanced():
    df = make_manifest(20, seed=3)
    overall = df["emotion"].value_counts(normalize=True)
    worst = 0.0
    for f in splits.speaker_kfold(df, n_folds=4, seed=0):
        part = df["emotion"].iloc[f.test].value_counts(normalize=True)
        worst = max(worst, float((part.reindex(overall.index, fill_value=0) - overall).abs().max()))
    assert worst < 0.08, f"largest deviation of a fold's emotion share: {worst:.3f}"


def test_kfold_unstratified_balances_fold_sizes():
    df = make_manifest(12, skewed=False)  # equal speaker sizes: 12 speakers into 4 folds of 3
    sizes = [len(f.test) for f in splits.speaker_kfold(df, 4, seed=0, stratify=False)]
    assert sizes == [60, 60, 60, 60]


def test_kfold_validation_speakers_count_fraction_and_genders():
    df = make_manifest(12)
    for f in splits.speaker_kfold(df, 3, seed=0, val_speakers=2):
        assert len(f.val_speakers) == 2
        genders = set(df.loc[df["speaker"].isin(f.val_speakers), "gender"])
        assert genders == {"female", "male"}  # alternating genders
        splits.check_no_leakage(df, f)
    for f in splits.speaker_kfold(df, 3, seed=0, val_speakers=0.5):
        assert len(f.val_speakers) == 4 and len(f.train_speakers) == 4
    for f in splits.speaker_kfold(df, 3, seed=0, val_speakers=0):
        assert len(f.val) == 0 and f.val_speakers == ()


def test_kfold_works_on_a_loaded_corpus(synthetic_root):
    df = data_prep.load_corpus("synthetic", synthetic_root)
    folds = splits.speaker_kfold(df, n_folds=3, seed=0)
    for f in folds:
        splits.check_no_leakage(df, f)
        assert len(f.train) and len(f.val) and len(f.test)
        # Balanced synthetic corpus: every emotion is in every test part equally.
        assert df["emotion"].iloc[f.test].value_counts().nunique() == 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_folds": 13}, "from 12 speaker"),
        ({"n_folds": 1}, ">= 2"),
        ({"n_folds": 4, "val_speakers": 9}, "leaves none for training"),
        ({"n_folds": 4, "val_speakers": 1.5}, r"\[0, 1\)"),
        ({"n_folds": 4, "val_speakers": -1}, ">= 0"),
    ],
)
def test_kfold_errors(kwargs, match):
    with pytest.raises(SplitError, match=match):
        splits.speaker_kfold(make_manifest(12), **kwargs)


def test_manifest_errors():
    df = make_manifest(6)
    with pytest.raises(SplitError, match="no 'speaker' column"):
        splits.speaker_kfold(df.drop(columns="speaker"), 3)
    bad = df.copy()
    bad.loc[3, "speaker"] = None
    with pytest.raises(SplitError, match="1 manifest row"):
        splits.speaker_kfold(bad, 3)
    with pytest.raises(SplitError, match="empty"):
        splits.speaker_kfold(df.iloc[:0], 3)
    assert issubclass(SplitError, DataPrepError) and issubclass(LeakageError, SplitError)


# --- leave_one_session_out ---------------------------------------------------------------------


def test_leave_one_session_out_default_rule():
    df = iemocap_manifest()
    folds = splits.leave_one_session_out(df)
    assert [f.name for f in folds] == [f"session{s}" for s in range(1, 6)]
    val_genders = []
    for i, f in enumerate(folds, start=1):
        splits.check_no_leakage(df, f)
        assert f.test_speakers == (f"Ses0{i}F", f"Ses0{i}M")
        nxt = i % 5 + 1
        (val,) = f.val_speakers
        assert val.startswith(f"Ses0{nxt}")
        assert len(f.train_speakers) == 7  # the other voice of the validation session trains
        val_genders.append(val[-1])
    assert val_genders == ["F", "M", "F", "M", "F"]


def test_leave_one_session_out_other_rules():
    df = iemocap_manifest()
    for f in splits.leave_one_session_out(df, val="session"):
        assert len(f.val_speakers) == 2 and len(f.train_speakers) == 6
        splits.check_no_leakage(df, f)
    for f in splits.leave_one_session_out(df, val="none"):
        assert len(f.val) == 0 and len(f.train_speakers) == 8


def test_leave_one_session_out_errors():
    df = iemocap_manifest()
    with pytest.raises(SplitError, match="no 'session' column"):
        splits.leave_one_session_out(df.drop(columns="session"))
    with pytest.raises(SplitError, match="at least 2 sessions"):
        splits.leave_one_session_out(df[df["session"] == 1])
    with pytest.raises(SplitError, match="one of"):
        splits.leave_one_session_out(df, val="random")
    moved = df.copy()
    moved.loc[0, "session"] = 2  # Ses01F now also in session 2
    with pytest.raises(SplitError, match="Ses01F"):
        splits.leave_one_session_out(moved)


# --- fixed_split -------------------------------------------------------------------------------


def test_fixed_split():
    df = make_manifest(6)
    f = splits.fixed_split(df, test_speakers=["s00", "s01"], val_speakers="s02")
    assert f.test_speakers == ("s00", "s01") and f.val_speakers == ("s02",)
    assert f.train_speakers == ("s03", "s04", "s05")
    splits.check_no_leakage(df, f)
    with pytest.raises(SplitError, match="unknown speaker"):
        splits.fixed_split(df, test_speakers=["s99"])
    with pytest.raises(LeakageError, match="s01"):
        splits.fixed_split(df, test_speakers=["s01"], val_speakers=["s01"])
    with pytest.raises(SplitError, match="at least one test speaker"):
        splits.fixed_split(df, test_speakers=[])
    with pytest.raises(SplitError, match="train part would be empty"):
        splits.fixed_split(df, test_speakers=[f"s{i:02d}" for i in range(6)])


# --- check_no_leakage --------------------------------------------------------------------------


def test_leakage_is_detected_and_named():
    df = pd.DataFrame({"speaker": ["a", "a", "b", "b", "c", "c"]})
    with pytest.raises(LeakageError, match=r"speaker 'b' is in both train \(1 rows\) and test"):
        splits.check_no_leakage(df, Split(train=[0, 1, 2], val=[], test=[3, 4, 5]))
    with pytest.raises(LeakageError, match="row 2 is in both train and val"):
        splits.check_no_leakage(df, Split(train=[0, 1, 2], val=[2, 3], test=[4, 5]))
    with pytest.raises(SplitError, match="row index 9"):
        splits.check_no_leakage(df, Split(train=[0, 1], val=[], test=[9]))
    with pytest.raises(SplitError, match="test part is empty"):
        splits.check_no_leakage(df, Split(train=[0, 1], val=[2, 3], test=[]))
    wrong = Split(train=[0, 1], val=[], test=[2, 3], train_speakers=("x",), test_speakers=("b",))
    with pytest.raises(SplitError, match="another manifest"):
        splits.check_no_leakage(df, wrong)
    splits.check_no_leakage(df, Split(train=[0, 1, 4, 5], val=[], test=[2, 3]))


# --- Split and JSON ----------------------------------------------------------------------------


def test_split_json_round_trip_and_immutability():
    df = make_manifest(8)
    f = splits.speaker_kfold(df, 4, seed=0)[1]
    data = json.loads(json.dumps(splits.split_to_dict(f)))
    back = splits.split_from_dict(data)
    assert back == f and back.name == "fold1"
    assert back.train.dtype == np.int64
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.name = "other"
    with pytest.raises(ValueError):
        f.train[0] = 1
    with pytest.raises(SplitError, match="lacks"):
        splits.split_from_dict({"train": [0], "test": [1]})
    with pytest.raises(SplitError, match="integer row indices"):
        Split(train=[0.5], val=[], test=[1])
    assert "fold1" in repr(f) and "rows" in repr(f)


# --- published fold files ------------------------------------------------------------------


def _fold_file(tmp_path, folds, **extra) -> str:
    path = tmp_path / "folds.json"
    path.write_text(json.dumps({"test_speakers": folds, **extra}))
    return str(path)


def test_fold_file_tests_every_speaker_once_with_drawn_validation(tmp_path):
    m = make_manifest(8, skewed=False)
    folds = [["s00", "s01"], ["s02", "s03"], ["s04", "s05"], ["s06", "s07"]]
    path = _fold_file(tmp_path, folds, description="four folds", baseline={"x": 1})
    ff = splits.read_fold_file(path)
    assert ff.n_folds == 4 and ff.description == "four folds" and ff.extra == {"baseline": {"x": 1}}
    out = splits.folds_from_file(m, path, seed=3)
    assert [s.name for s in out] == ["fold0", "fold1", "fold2", "fold3"]
    for split, test in zip(out, folds):
        splits.check_no_leakage(m, split)
        assert split.test_speakers == tuple(test)
        assert len(split.val_speakers) == 1  # 15 % of 6 training speakers, at least one
        assert not set(split.val_speakers) & set(test)
    assert out == splits.folds_from_file(m, path, seed=3)  # the validation draw is seeded
    # Numbers in the file are speaker names (RAVDESS's "01" style is written as strings anyway).
    m2 = m.assign(speaker=m["speaker"].str[1:].astype(int).astype(str))
    numeric = splits.folds_from_file(m2, _fold_file(tmp_path, [[0, 1, 2, 3], [4, 5, 6, 7]]))
    assert numeric[0].test_speakers == ("0", "1", "2", "3")


@pytest.mark.parametrize(
    "folds, match",
    [
        ([["s00", "s01", "s02", "s03"], ["s04", "s05", "s06", "sXX"]], r"\['sXX'\] are not in"),
        ([["s00", "s01", "s02", "s03"], ["s03", "s04", "s05", "s06", "s07"]], "folds 0 and 1"),
        ([["s00", "s01", "s02", "s03"], ["s04", "s05", "s06"]], r"\['s07'\] of the manifest"),
        ([["s00", "s01", "s02", "s03", "s04", "s05", "s06", "s07"], []], "fold 1 has no test"),
        ([["s00", "s01", "s02", "s03", "s04", "s05", "s06", "s07"]], "at least 2 folds"),
    ],
)
def test_fold_file_errors_name_the_speakers(tmp_path, folds, match):
    m = make_manifest(8, skewed=False)
    with pytest.raises(SplitError, match=match):
        splits.folds_from_file(m, _fold_file(tmp_path, folds))


def test_fold_file_format_errors(tmp_path):
    with pytest.raises(SplitError, match="does not exist"):
        splits.read_fold_file(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(SplitError, match="cannot read it as JSON"):
        splits.read_fold_file(bad)
    bad.write_text(json.dumps({"folds": [["a"]]}))
    with pytest.raises(SplitError, match="'test_speakers'"):
        splits.read_fold_file(bad)
    assert issubclass(SplitError, ValueError)  # the CLI reports it as one line, exit 2


def test_emobox_folds_fit_the_ravdess_manifest(ravdess_root):
    m = data_prep.load_corpus("ravdess", ravdess_root)
    out = splits.folds_from_file(m, ravdess_root / "folds_emobox.json")
    assert len(out) == 6
    assert sorted(s for split in out for s in split.test_speakers) == [
        f"{i:02d}" for i in range(1, 25)
    ]
    for split in out:
        splits.check_no_leakage(m, split)
        assert len(split.test) == 240 and len(split.test_speakers) == 4
