"""tflite/micro end to end: the README's firmware commands as printed, and ``audio_main.cc`` on a
recording against its Python twin (``keras_hrf.device.stream``), on the host and Cortex-M4.

The export is the tiny streaming model of the ``stream_model`` fixture (1-s windows, three
emotions). Each test skips, saying why, only where a target's toolchain or trees are missing
(.ci/run installs and sets them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from keras_hrf.device import firmware, stream

REPO = Path(__file__).resolve().parents[2]
MICRO_README = REPO / "tflite" / "micro" / "README.md"
LINE = re.compile(r"^(\d+) ms: (\S+) \((\d+) %\)", re.M)


@pytest.fixture(scope="session")
def trees():
    return firmware.Trees.from_env()


def _needs(trees, *targets, app="harness"):
    for target in targets:
        why = firmware.missing(target, trees, app)
        if why is not None:
            pytest.skip(f"firmware for {target} cannot be built here: {why}")


@pytest.fixture(scope="session")
def recording(stream_model, tmp_path_factory):
    """Sad, angry, fearful (two held-out takes each) as 16 kHz int16 PCM: (file, samples)."""
    pieces = [stream_model.utterance(e, t) for e in ("sad", "angry", "fearful") for t in (21, 22)]
    pcm = np.clip(np.round(np.concatenate(pieces) * 32768), -32768, 32767).astype("<i2")
    path = tmp_path_factory.mktemp("audio") / "speech.raw"
    path.write_bytes(pcm.tobytes())
    return path, pcm


@pytest.fixture()
def export_copy(stream_model, tmp_path):
    """A private copy of the export (the firmware builds into EXPORT/build)."""
    out = tmp_path / "export"
    shutil.copytree(stream_model.export_dir, out)
    return out


def _readme_commands() -> list[str]:
    text = MICRO_README.read_text()
    section = text[text.index("## Build and run") :]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [ln for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]


def test_readme_firmware_commands_run_as_printed(export_copy, recording, trees):
    _needs(trees, "host", "m4", "m55", app="audio")
    commands = _readme_commands()
    assert len(commands) >= 6 and all(
        c.startswith("make -f tflite/micro/Makefile") for c in commands
    )
    env = {
        **os.environ,
        "EXPORT": str(export_copy),
        "TFLM_TREE": str(trees.host),
        "TFLM_TREE_CORTEX_M": str(trees.cortex_m),
        "CMSIS_DSP": str(trees.cmsis_dsp),
        "AUDIO": str(recording[0]),
    }
    for command in commands:
        proc = subprocess.run(
            ["bash", "-c", command], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{command}\n{out[-3000:]}"
        if "APP=self_test" in command:
            assert "~~~ALL TESTS PASSED~~~" in out, command
        elif "APP=audio" in command:
            assert re.search(r"^\d+ windows classified", out, re.M) and LINE.search(out), command
        else:
            assert "predicted:" in out and "arena used:" in out, command


@pytest.mark.parametrize("target", ["host", "m4"])
def test_audio_main_gives_the_labels_of_keras_hrf_stream(target, export_copy, recording, trees):
    """Per window, the label and confidence of the firmware (CMSIS-DSP front-end, int8 feature
    ring, TFLM, EMA of the posteriors) against ``classify_stream(smoothing="ema")``."""
    _needs(trees, target, app="audio")
    path, pcm = recording
    elf = firmware.build(
        export_copy,
        target,
        "audio",
        trees=trees,
        make_vars={"AUDIO": str(path)} if target != "host" else None,
    )
    proc = firmware.run(
        elf, target, cwd=elf.parent, stdin=pcm.tobytes() if target == "host" else None
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout + proc.stderr  # TFLM's host log goes to stderr, semihosting's to stdout
    lines = LINE.findall(out)
    expected = stream.classify_stream(
        pcm.astype(np.float32) / 32768, export_copy, hop=0.5, smooth=3, smoothing="ema"
    )
    labels = [expected.labels[i] for i in expected.smoothed.argmax(-1)]
    confidence = 100 * expected.smoothed.max(-1)
    assert len(lines) == len(labels) > 10
    assert f"{len(labels)} windows classified" in out
    # The window ends agree to the millisecond (same framing, same hop).
    span = (stream_model_frames(export_copy) - 1) * 160 + 512
    ends = [int(ms) for ms, _, _ in lines]
    assert ends == [(w * 50 * 160 + span) * 1000 // 16000 for w in range(len(lines))]
    same = [fw == py for (_, fw, _), py in zip(lines, labels, strict=True)]
    diff = [abs(int(c) - p) for (_, _, c), p in zip(lines, confidence, strict=True)]
    print(
        f"\n{target}: {sum(same)} of {len(same)} windows with the Python twin's label, "
        f"confidence within {max(diff):.1f} points"
    )
    # Rounding ties in the int8 features may move a window's posteriors slightly (README).
    assert sum(same) >= 0.9 * len(same) and np.median(diff) <= 1.0


def stream_model_frames(export_dir: Path) -> int:
    from keras_hrf import tflite

    return tflite.load_meta(export_dir).feature_params.frames
