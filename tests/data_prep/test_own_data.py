"""Users' own corpora: the CSV/TSV manifest loader, loader options, label maps, several corpora
combined, and every bad input reported clearly before any feature is computed."""

from __future__ import annotations

import pandas as pd
import pytest
from support.own_data import make_own_data

from data_prep import load_corpus, splits
from data_prep.errors import CorpusLayoutError, DataPrepError
from data_prep.labels import parse_label_map, select_labels
from data_prep.prepare import CorpusSpec, DataSpec, as_spec, load_manifest, summary


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    return make_own_data(tmp_path_factory.mktemp("own"))


def test_csv_manifest_with_relative_paths_and_custom_columns(own):
    m = load_corpus(
        "csv",
        own["csv"],
        manifest="meta.csv",
        path_column="file",
        label_column="label",
        speaker_column="talker",
        gender_column="sex",
    )
    ref = load_corpus("synthetic", own["synthetic"])
    assert len(m) == len(ref) and sorted(m["emotion"].unique()) == sorted(ref["emotion"].unique())
    assert set(m["speaker"]) == set(ref["speaker"]) and set(m["gender"]) == {"female", "male"}
    assert "session" in m.columns and m["manifest_line"].min() == 2  # extra columns kept
    assert m.attrs["bad_files"] == []


def test_tsv_manifest_with_absolute_paths_and_segments(own):
    m = load_corpus("csv", own["csv"], manifest="meta.tsv")  # default column names
    assert (m["end"] - m["start"]).round(6).eq(1.0).all() and m["duration"].round(6).eq(1.0).all()


def test_bad_rows_are_reported_with_line_and_reason(own, tmp_path):
    table = pd.read_csv(own["csv"] / "meta.csv")
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "broken.wav").write_bytes(b"not audio at all" * 20)
    good = own["csv"] / table.loc[0, "file"]
    bad = pd.concat(
        [
            table.iloc[:3].assign(file=[str(own["csv"] / f) for f in table["file"][:3]]),
            pd.DataFrame(
                [
                    {"file": "audio/missing.wav", "label": "SAD", "talker": "x"},  # line 5
                    {"file": str(good), "label": "", "talker": "x"},  # line 6
                    {"file": str(good), "label": "SAD", "talker": "x"},  # line 7: duplicate of 2
                    {"file": "audio/broken.wav", "label": "SAD", "talker": "y"},  # line 8
                ]
            ),
        ]
    )
    bad.to_csv(tmp_path / "m.csv", index=False)
    opts = dict(manifest="m.csv", path_column="file", label_column="label", speaker_column="talker")
    with pytest.warns(UserWarning, match="skipped 4"):
        m = load_corpus("csv", tmp_path, **opts)
    assert len(m) == 3
    reasons = sorted(b.reason for b in m.attrs["bad_files"])
    assert any("line 5: missing file" in r for r in reasons)
    assert any("line 6: empty label" in r for r in reasons)
    assert any("line 7: duplicate of line 2" in r for r in reasons)
    assert any("line 8: unreadable audio" in r for r in reasons)
    with pytest.raises(CorpusLayoutError, match="line 5: missing file"):
        load_corpus("csv", tmp_path, strict=True, **opts)


def test_a_manifest_without_its_columns_names_the_columns_it_has(own):
    with pytest.raises(CorpusLayoutError, match=r"no column 'path' \(path\).*'file', 'label'"):
        load_corpus("csv", own["csv"], manifest="meta.csv")
    with pytest.raises(CorpusLayoutError, match="manifest .* does not exist"):
        load_corpus("csv", own["csv"], manifest="nope.csv")


def test_loader_options_are_checked_before_reading(own):
    spec = as_spec(["folder"], [str(own["folder"])], ["speaker_regx=^(spk\\d+)"])
    with pytest.raises(DataPrepError, match="unknown option.*speaker_regx.*speaker_regex"):
        load_manifest(spec)
    with pytest.raises(DataPrepError, match="one --root per --corpus"):
        as_spec(["folder", "csv"], [str(own["folder"])])
    # A speaker_regex that matches no file is a clear error, not an empty corpus.
    spec = as_spec(["folder"], [str(own["folder"])], ["speaker_regex=^speaker(\\d+)"])
    with pytest.raises(CorpusLayoutError, match="no usable audio files.*speaker_regex"):
        load_manifest(spec)


def test_label_maps_rename_merge_and_keep(own):
    m = load_corpus("folder", own["other"], speaker_regex=r"^(spk\d+_[fm])_")
    assert sorted(m["emotion"].unique()) == ["anger", "bored", "joy", "neutral"]
    lm = parse_label_map(["anger=angry", "Joy=happy"])
    out = select_labels(m, keep=["angry", "happy", "neutral"], label_map=lm)
    assert sorted(out["emotion"].unique()) == ["angry", "happy", "neutral"]
    assert out.attrs["labels"]["dropped"] == {"bored": int((m["emotion"] == "bored").sum())}
    with pytest.raises(ValueError, match=r"\['sad'\] of --labels are not in the corpus"):
        select_labels(m, keep=["angry", "sad"], label_map=lm)
    with pytest.raises(ValueError, match="FROM=TO"):
        parse_label_map(["anger"])
    with pytest.raises(ValueError, match="both"):
        parse_label_map(["a=b", "a=c"])


def test_several_corpora_make_one_manifest_with_namespaced_speakers(own):
    spec = DataSpec(
        (
            CorpusSpec("csv", str(own["csv"]), {"manifest": "meta.tsv"}),
            CorpusSpec("folder", str(own["other"]), {"speaker_regex": r"^(spk\d+_[fm])_"}),
        ),
        labels=("angry", "happy", "neutral"),
        label_map={"anger": "angry", "joy": "happy"},
    )
    m = load_manifest(spec)
    assert set(m["corpus"]) == {"csv", "folder"}
    assert all(s.startswith(("csv/", "folder/")) for s in m["speaker"])
    assert m.attrs["corpora"]["csv"] == (m["corpus"] == "csv").sum()
    assert "per corpus: csv" in summary(m)
    assert DataSpec.from_dict(spec.to_dict()) == spec
    # The same file in two corpora is refused.
    twice = DataSpec(
        (
            spec.corpora[1],
            CorpusSpec("folder", str(own["other"]), {"speaker_regex": r"^(spk\d+_[fm])_"}),
        )
    )
    with pytest.raises(DataPrepError, match="in two of the corpora"):
        load_manifest(twice)
    corpus_folds = splits.leave_one_corpus_out(m)
    assert [s.name for s in corpus_folds] == ["corpus_csv", "corpus_folder"]
    for s in corpus_folds:
        splits.check_no_leakage(m, s)
        assert len(set(m["corpus"].iloc[s.test])) == 1
