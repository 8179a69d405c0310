"""Real firmware: the export's C++ built with TFLite Micro (+ CMSIS-NN) for the host and emulated
Cortex-M4F / M55 (QEMU), run on the export's inputs, against the Python TFLM interpreter.

Each test skips, saying why, only where its target's toolchain or TFLM tree is missing
(``KERAS_HRF_TFLM_TREE``, ``KERAS_HRF_TFLM_TREE_CORTEX_M``, ``KERAS_HRF_CMSIS_DSP``; .ci/run
installs the tools and sets them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_prep import int8 as quant
from keras_hrf import tflite
from keras_hrf.device import firmware
from keras_hrf.device.runtimes import run_tflm
from keras_hrf.export import firmware_report, flatbuffer, min_tflm_arena

from .conftest import FAMILIES

TARGETS = tuple(firmware.TARGETS)
PROJECT_OPS = Path(__file__).parents[3] / "tflite" / "micro" / "tools" / "project_ops.txt"
#: Inputs per family and target (the issue's contract: >= 32).
N_INPUTS = 32


@pytest.fixture(scope="session")
def trees():
    return firmware.Trees.from_env()


def _needs(target: str, trees, app: str = "harness") -> None:
    why = firmware.missing(target, trees, app)
    if why is not None:
        pytest.skip(f"firmware for {target} cannot be built here: {why}")


@pytest.fixture(scope="session")
def light_exports(light, corpus, tmp_path_factory):
    """Per family: the export folder of the trained light model (no firmware measured yet),
    its quantized inputs and the Python TFLM interpreter's outputs for them."""
    x = corpus["x"]
    rows = np.linspace(0, len(x) - 1, N_INPUTS).round().astype(int)
    out = {}
    for family in FAMILIES:
        folder = tmp_path_factory.mktemp(f"fw_{family}") / "export"
        result = tflite.export(
            light[family]["merged"],
            folder,
            representative_data=x,
            labels=corpus["labels"],
            feature_params=corpus["params"],
            normalizer=corpus["normalizer"],
            samples=x[rows],
            num_samples=48,
            firmware=None,
        )
        info = flatbuffer.parse(result.int8_bytes)
        q = quant.quantize(
            flatbuffer.as_input_batch(x[rows], info.input.shape),
            *flatbuffer.quantization_params(info.input),
        )
        ref, _ = run_tflm(result.int8_bytes, q, min_tflm_arena(result.int8_bytes))
        out[family] = {"result": result, "inputs": q, "reference": ref}
    return out


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("family", FAMILIES)
def test_firmware_outputs_are_bit_identical_to_python_tflm(family, target, light_exports, trees):
    """The contract of the C++ side: the same int8 outputs as tflite_micro's interpreter, on
    every input, with the reference kernels (host) and with CMSIS-NN (Cortex-M4F, M55)."""
    _needs(target, trees)
    e = light_exports[family]
    run = firmware.run_harness(e["result"].out_dir, e["inputs"], target, trees=trees)
    assert len(run.outputs) == len(e["inputs"]) >= N_INPUTS
    np.testing.assert_array_equal(run.outputs, e["reference"].reshape(run.outputs.shape))
    if target != "host":
        # Instructions counted under QEMU: no fewer than the widest int8 MAC instruction allows
        # (SMLAD: 2 per instruction on M4; MVE's VMLADAV: 16 on M55; measured 2.8 and 0.7 per
        # MAC for ds_cnn), and a stack that was used.
        per_instruction = {"m4": 2, "m55": 16}[target]
        macs = e["result"].meta.macs
        assert run.instructions_per_inference > macs / per_instruction
        assert 0 < run.stack_used < 8192
        assert set(run.op_instructions()) <= set(e["result"].meta.ops)
        # The linked model is the C array: the flatbuffer slimmed for TFLM.
        assert run.footprint.flash.get("model", 0) >= e["result"].meta.sizes["micro_bytes"]


def test_the_ci_object_cache_covers_every_light_export(light_exports):
    """.ci/run pre-compiles the kernels of tflite/micro/tools/project_ops.txt; a model with
    another op would compile it during the tests (minutes) instead."""
    listed = set(
        " ".join(
            ln for ln in PROJECT_OPS.read_text().splitlines() if not ln.startswith("#")
        ).split()
    )
    for e in light_exports.values():
        assert set(e["result"].meta.ops) <= listed


@pytest.mark.parametrize("target", ["host", "m4"])
def test_a_too_small_arena_fails_with_tflms_allocation_error(target, light_exports, trees):
    """An arena below the model's need: TFLM's own message and a non-zero exit, not a hang."""
    _needs(target, trees)
    e = light_exports["conv_transformer"]
    with pytest.raises(firmware.FirmwareError) as info:
        firmware.run_harness(
            e["result"].out_dir, e["inputs"][:1], target, trees=trees, arena_size=4096, timeout=60
        )
    text = str(info.value)
    assert "exited with 1" in text and "Failed to allocate" in text
    assert "AllocateTensors failed with an arena of 4096 bytes" in text


def test_export_measures_the_firmware_and_recommends_the_32bit_arena(
    light, corpus, trees, tmp_path, monkeypatch
):
    """``firmware="auto"`` (the default): every target with tools gets measured; the report,
    firmware.json, the arena in model_meta.json and model_data.h come from Cortex-M, whose
    self-test passes with it; the light preset fits the device budget."""
    for target in TARGETS:
        _needs(target, trees)
    monkeypatch.delenv("KERAS_HRF_FIRMWARE", raising=False)
    x = corpus["x"]
    # 8 inputs: what is tested here is the default's measuring and the arena it recommends; the
    # 32-input contract is test_firmware_outputs_are_bit_identical_to_python_tflm's.
    result = tflite.export(
        light["conformer"]["merged"],
        tmp_path / "export",
        representative_data=x,
        labels=corpus["labels"],
        feature_params=corpus["params"],
        normalizer=corpus["normalizer"],
        samples=x[:8],
        num_samples=48,
    )
    fw = result.firmware
    assert fw is not None and set(fw.targets) == set(TARGETS) and fw.ok
    assert all(f.identical == 8 for f in fw.targets.values())
    doc = json.loads((result.out_dir / "firmware.json").read_text())
    assert doc["bit_identical"] is True and doc["arena_32bit"] == fw.arena_32bit
    arena = result.meta.arena
    assert arena.min_bytes == max(fw.targets[t].arena_used for t in ("m4", "m55"))
    assert arena.recommended_bytes == firmware_report.recommended_arena_32bit(arena.min_bytes)
    assert arena.host_min_bytes == result.report.arena_min > arena.min_bytes  # 64-bit needs more
    header = (result.out_dir / "model_data.h").read_text()
    assert f"#define KERAS_HRF_ARENA_SIZE {arena.recommended_bytes}" in header
    report = (result.out_dir / "REPORT.md").read_text()
    assert "## Firmware (measured)" in report and "Instructions per op type" in report
    m4 = fw.targets["m4"]
    assert m4.flash["model"] >= result.meta.sizes["micro_bytes"] and "example input" not in m4.flash
    assert sum(m4.flash.values()) <= 256 * 1024 and sum(m4.ram.values()) <= 96 * 1024
    assert m4.ram["tensor arena"] == arena.recommended_bytes
    # The tensor names are out of the flatbuffer, and kept beside it.
    names = json.loads((result.out_dir / "tensor_names.json").read_text())
    assert len(names["0"]) > 50 and fw.flatbuffer["tensor_names"] < 64


def test_check_cli_runs_the_firmware_and_names_what_is_missing(
    light_exports, trees, tmp_path, capsys, monkeypatch
):
    """``keras-hrf check --device``: the export's own sources (or made ones for a bare .tflite),
    the measurements printed; a target without its tree is a one-line error, exit 2."""
    from keras_hrf.cli import main

    _needs("m4", trees)
    flat = light_exports["speechformer"]["result"].files["int8"]
    assert main(["check", str(flat), "--device", "m4", "--inputs", "4"]) == 0
    out = capsys.readouterr().out
    assert "## Firmware (measured)" in out and "| 4 / 4 |" in out and "Cortex-M4F" in out
    # The flatbuffer figures are those of what is flashed: the C array slimmed for TFLM.
    micro = light_exports["speechformer"]["result"].meta.sizes["micro_bytes"]
    assert f"| total | {micro:,} |" in out
    bare = tmp_path / "model.tflite"
    bare.write_bytes(flat.read_bytes())
    assert main(["check", str(bare), "--device", "m4", "--inputs", "3"]) == 0
    out = capsys.readouterr().out
    assert "| 3 / 3 |" in out and f"| total | {micro:,} |" in out
    monkeypatch.delenv("KERAS_HRF_TFLM_TREE_CORTEX_M", raising=False)
    assert main(["check", str(bare), "--device", "m55"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--device m55: no TFLM tree for m55" in err[0]
