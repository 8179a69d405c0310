"""The keras-hrf command line: the demo end to end, and clear errors with exit code 2."""

import json
import shutil
import subprocess
import sys

import pytest

from keras_hrf.cli import main


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory):
    """``keras-hrf demo --quick`` once for the module (its runs are reused by other tests)."""
    out = tmp_path_factory.mktemp("cli") / "demo"
    assert main(["demo", "--quick", "--out", str(out), "--epochs", "4"]) == 0
    return out


def test_demo_quick_end_to_end(demo_out):
    out = demo_out
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
    # The export of the HRF run says where the model came from (it said "no": bug).
    assert "| merged from HRF | yes |" in (out / "runs/light_hrf/device/REPORT.md").read_text()
    assert "| merged from HRF | no |" in (out / "runs/light/device/REPORT.md").read_text()


def test_evaluate_compares_int8_with_merged_float_only_when_there_is_int8(demo_out, capsys):
    args = ["--corpus", "synthetic", "--root", str(demo_out / "data")]
    args += ["--cache", str(demo_out / "cache")]
    assert main(["evaluate", str(demo_out / "runs/light_hrf"), *args]) == 0
    out = capsys.readouterr().out
    assert "argmax agreement int8 vs merged float:" in out and "int8 (LiteRT)" in out
    bare = demo_out / "light_hrf_no_int8"
    shutil.copytree(demo_out / "runs/light_hrf", bare)
    shutil.rmtree(bare / "device")
    assert main(["evaluate", str(bare), *args]) == 0
    out = capsys.readouterr().out
    # Without an int8 model there is nothing to compare (it printed 100 %: merged vs itself).
    assert "agreement" not in out and "no int8 model" in out


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


def test_every_example_prints_on_its_own_line():
    """A ``\\`` at a line end inside a plain string joined the examples into one line (bug)."""
    from keras_hrf.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, p in sub.choices.items():
        lines = p.epilog.splitlines()
        assert any(line.strip().startswith("keras-hrf ") for line in lines), name
        assert all(len(line) <= 100 for line in lines), (name, max(lines, key=len))
        # A continued example line ends in a backslash and the next line goes on with it,
        # indented further.
        indent = 0
        for line, nxt in zip(lines, lines[1:]):
            if line.strip().startswith("keras-hrf "):
                indent = len(line) - len(line.lstrip())
            if line.rstrip().endswith("\\"):
                assert len(nxt) - len(nxt.lstrip()) > indent, (name, nxt)
                assert not nxt.strip().startswith("keras-hrf"), (name, nxt)


def test_a_programming_error_is_not_reported_as_bad_input(monkeypatch, capsys):
    import keras_hrf.cli.models as models_cmd

    def broken(args):
        raise TypeError("unsupported operand type(s)")

    monkeypatch.setattr(models_cmd, "run", broken)
    with pytest.raises(TypeError):
        main(["models"])

    def bad_input(args):
        raise ValueError("no such corpus; pass --root")

    monkeypatch.setattr(models_cmd, "run", bad_input)
    assert main(["models"]) == 2
    assert "no such corpus" in capsys.readouterr().err


def test_tensorflow_start_up_lines_stay_off_the_terminal():
    r = subprocess.run(
        [sys.executable, "-m", "keras_hrf.cli", "models"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0 and "ds_cnn" in r.stdout
    for noise in ("oneDNN", "cuda", "cpu_feature_guard", "absl::InitializeLog"):
        assert noise not in r.stderr, r.stderr[:500]


def test_convert_per_tensor_is_smaller_and_recorded(demo_out, tmp_path):
    """keras-hrf convert --per-tensor: one weight scale per tensor, recorded in model_meta.json,
    and a smaller flatbuffer than the run's own (per-channel) export."""
    out = tmp_path / "device"
    assert main(["convert", str(demo_out / "runs/light"), "--out", str(out), "--per-tensor"]) == 0
    meta = json.loads((out / "model_meta.json").read_text())
    assert meta["origin"]["weight_scales"] == "per-tensor"
    own = json.loads((demo_out / "runs/light/device/model_meta.json").read_text())
    assert own["origin"]["weight_scales"] == "per-channel"
    smaller = (out / "model_int8.tflite").stat().st_size
    assert smaller < (demo_out / "runs/light/device/model_int8.tflite").stat().st_size


def test_convert_can_undo_the_device_cuts(demo_out, tmp_path):
    """--no-space-to-depth / --no-one-channel-depthwise / --no-micro-slim: the stem converts as
    one strided CONV_2D (without the second flag the one-channel stem would become a
    DEPTHWISE_CONV_2D) and the C array holds model_int8.tflite itself; the run's own export has
    the cuts."""
    from keras_hrf.export import flatbuffer

    out = tmp_path / "device"
    args = ["--no-space-to-depth", "--no-one-channel-depthwise", "--no-micro-slim"]
    args += ["--tflm-kernels-only"]
    assert main(["convert", str(demo_out / "runs/light"), "--out", str(out), *args]) == 0
    own = demo_out / "runs/light/device"
    assert flatbuffer.parse((out / "model_int8.tflite").read_bytes()).op_names[0] == "CONV_2D"
    assert flatbuffer.parse((own / "model_int8.tflite").read_bytes()).op_names[0] == "PAD"
    for folder, slimmed in ((out, False), (own, True)):
        meta = json.loads((folder / "model_meta.json").read_text())
        full = (folder / "model_int8.tflite").stat().st_size
        assert (meta["sizes"]["micro_bytes"] < full) is slimmed
        assert (
            f"g_model_data_len = {meta['sizes']['micro_bytes']};"
            in (folder / "model_data.cc").read_text()
        )
