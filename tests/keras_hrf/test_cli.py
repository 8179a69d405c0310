"""The keras-hrf command line: the demo end to end, and clear errors with exit code 2."""

import json
import subprocess
import sys

import pytest

from keras_hrf.cli import main


def test_demo_quick_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--epochs", "4"]) == 0
    report = (out / "REPORT.md").read_text()
    assert "light+hrf" in report and "int8 UA" in report
    light = json.loads((out / "runs/light/metrics.json").read_text())
    hrf = json.loads((out / "runs/light_hrf/metrics.json").read_text())
    # deHRF: the merged model is the trained one, and costs exactly the plain model.
    assert hrf["test_merged"]["ua"] == hrf["test"]["ua"]
    assert hrf["merge_max_abs_diff"] < 1e-4
    assert hrf["params_deployed"] == light["params_train"] < hrf["params_train"]
    for m in (light, hrf):
        assert 0.0 <= m["int8"]["agreement_with_float"] <= 1.0
        assert m["int8"]["arena_recommended"] > 0
    for name in ("model_int8.tflite", "model_data.cc", "op_resolver.h", "model_meta.json"):
        assert (out / "runs/light_hrf/device" / name).is_file()
    # The same int8 op list with and without HRF: deHRF costs nothing on the device.
    meta_l = json.loads((out / "runs/light/device/model_meta.json").read_text())
    meta_h = json.loads((out / "runs/light_hrf/device/model_meta.json").read_text())
    assert meta_l["ops"] == meta_h["ops"]
    assert "report:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, match",
    [
        (
            ["train", "--corpus", "ravdess", "--root", "/nonexistent", "--out", "x"],
            "does not exist",
        ),
        (["train", "--corpus", "nope", "--root", ".", "--out", "x"], "unknown corpus"),
        (
            ["train", "--corpus", "synthetic", "--root", "{syn}", "--family", "lstm", "--out", "x"],
            "unknown model family",
        ),
        (["merge", "{bad}", "--out", "x.keras"], "cannot read"),
        (["check", "/nonexistent.tflite"], "does not exist"),
    ],
)
def test_user_errors_exit_2_with_one_line(argv, match, tmp_path, capsys, synthetic_root):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a model")
    argv = [a.format(syn=synthetic_root, bad=bad) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err


def test_console_entry_point_help_and_exit_code():
    r = subprocess.run(
        [sys.executable, "-m", "keras_hrf.cli", "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0 and "examples:" in r.stdout
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "keras_hrf.cli",
            "evaluate",
            "/nonexistent",
            "--corpus",
            "ravdess",
            "--root",
            "/nonexistent",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "error:" in r.stderr and "Traceback" not in r.stderr
