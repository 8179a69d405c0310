"""Your own data from the command line: loader options, label maps, cross-corpus evaluation,
several corpora, and bad input as one line with exit code 2 before any feature is computed."""

from __future__ import annotations

import json

import pytest
from support.own_data import make_own_data

from keras_hrf.cli import main

REGEX = r"speaker_regex=^(spk\d+_[fm])_"
TINY = [
    "--epochs", "1", "--model-option", "d_model=16", "--model-option", "ffn_dim=32",
    "--model-option", "num_heads=2", "--model-option", "num_blocks=1",
]  # fmt: skip


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    roots = make_own_data(tmp_path_factory.mktemp("own_cli"))
    roots["cache"] = tmp_path_factory.mktemp("own_cache")
    return roots


def test_prepare_prints_the_parse_before_any_training(own, capsys):
    argv = ["prepare", "--corpus", "folder", "--root", str(own["folder"])]
    assert main([*argv, "--corpus-option", REGEX, "--no-features"]) == 0
    out = capsys.readouterr().out
    assert "72 utterances, 6 speakers" in out and "per label: angry 18" in out
    assert "per speaker: spk01_f 12" in out and "0 bad file(s)" in out


def test_train_on_a_folder_corpus_with_a_speaker_regex(own, tmp_path, capsys):
    argv = ["train", "--corpus", "folder", "--root", str(own["folder"]), "--corpus-option", REGEX]
    argv += ["--folds", "3", "--cache", str(own["cache"]), "--no-export", "--out"]
    assert main([*argv, str(tmp_path / "run"), *TINY]) == 0
    cfg = json.loads((tmp_path / "run/config.json").read_text())
    assert cfg["data"]["corpora"][0]["options"] == {"speaker_regex": r"^(spk\d+_[fm])_"}
    assert len(cfg["split"]["test_speakers"]) == 2


@pytest.fixture(scope="module")
def csv_run(own, tmp_path_factory):
    out = tmp_path_factory.mktemp("csv_run") / "run"
    argv = ["train", "--corpus", "csv", "--root", str(own["csv"]), "--corpus-option"]
    argv += ["manifest=meta.tsv", "--labels", "angry,happy,neutral", "--label-map", "sad=bored"]
    argv += ["--folds", "3", "--cache", str(own["cache"]), "--out", str(out), *TINY]
    assert main(argv) == 0
    return out


def test_train_on_a_tsv_manifest_records_the_label_selection(csv_run):
    cfg = json.loads((csv_run / "config.json").read_text())
    assert cfg["labels"] == ["angry", "happy", "neutral"]
    assert cfg["data"]["labels"] == ["angry", "happy", "neutral"]
    assert cfg["data"]["label_map"] == {"sad": "bored"}
    meta = json.loads((csv_run / "device/model_meta.json").read_text())
    assert meta["labels"] == ["angry", "happy", "neutral"]  # what the device shows
    assert meta["origin"]["label_map"] == {"sad": "bored"} and meta["origin"]["corpora"] == ["csv"]


def test_cross_corpus_evaluation_on_the_shared_classes(own, csv_run, capsys):
    argv = ["evaluate", str(csv_run), "--corpus", "folder", "--root", str(own["other"])]
    argv += ["--corpus-option", REGEX, "--label-map", "anger=angry", "--label-map", "joy=happy"]
    assert main([*argv, "--cache", str(own["cache"])]) == 0
    out = capsys.readouterr().out
    assert "54 utterances of folder on the 3 classes it shares with the run" in out
    assert "left out, not among the run's classes: bored 18" in out
    assert "int8 (LiteRT)" in out


def test_several_corpora_leave_one_corpus_out(own, tmp_path):
    argv = ["reproduce", "--corpus", "csv", "--root", str(own["csv"]), "--corpus", "folder"]
    argv += ["--root", str(own["other"]), "--corpus-option", "csv:manifest=meta.tsv"]
    argv += ["--corpus-option", f"folder:{REGEX}", "--label-map", "anger=angry"]
    argv += ["--label-map", "joy=happy", "--labels", "angry,happy,neutral", "--protocol"]
    argv += ["corpus", "--families", "conv_transformer", "--variants", "light", "--seeds", "1"]
    argv += ["--only-folds", "0", "--no-export", "--cache", str(own["cache"])]
    assert main([*argv, "--out", str(tmp_path), *TINY]) == 0
    report = (tmp_path / "REPORT.md").read_text()
    assert "csv (54 utterances), folder (54 utterances)" in report
    assert "Leave-one-corpus-out: each corpus tested once (csv, folder)" in report
    cfg = json.loads(next(tmp_path.glob("runs/**/config.json")).read_text())
    assert all(s.startswith("csv/") for s in cfg["split"]["test_speakers"])
    assert all(s.startswith("folder/") for s in cfg["split"]["train_speakers"])


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--corpus-option", "speakr_regex=x"], "unknown option(s) speakr_regex; its options"),
        (["--corpus-option", "speaker_regex=^nobody(\\d+)"], "no usable audio files"),
        (["--corpus-option", REGEX, "--labels", "angry,calm"], "['calm'] of --labels"),
        (["--corpus-option", REGEX, "--root", "/elsewhere"], "one --root per --corpus"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(own, extra, match, capsys, tmp_path):
    argv = ["train", "--corpus", "folder", "--root", str(own["folder"]), *extra]
    assert main([*argv, "--cache", str(own["cache"]), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_a_manifest_without_its_path_column_is_one_line(own, capsys, tmp_path):
    argv = ["prepare", "--corpus", "csv", "--root", str(own["csv"]), "--no-features"]
    argv += ["--corpus-option", "manifest=meta.csv"]
    assert main(argv) == 2  # meta.csv names its columns file/label/talker
    assert "no column 'path' (path)" in capsys.readouterr().err
