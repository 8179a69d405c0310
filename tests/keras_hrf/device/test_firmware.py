"""keras_hrf.device.firmware without a toolchain: the harness protocol, the linker map, and what
is missing where. (Builds and runs on real targets: tests/keras_hrf/export/test_firmware_report.py.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from keras_hrf.device import firmware

HARNESS_OUT = """\
some TFLM log line
KERAS_HRF calibration 2000000 50000
KERAS_HRF arena_used 57860
KERAS_HRF ticks 0 1000
KERAS_HRF output 0 -3 7 127
KERAS_HRF ticks 1 1200
KERAS_HRF output 1 5 -128 0
KERAS_HRF inputs 2
KERAS_HRF op CONV_2D 1500
KERAS_HRF op SOFTMAX 700
KERAS_HRF stack_used 1384
KERAS_HRF done
"""


def test_parse_harness_reads_outputs_ticks_and_the_calibration():
    run = firmware.parse_harness(HARNESS_OUT, "m4")
    np.testing.assert_array_equal(run.outputs, [[-3, 7, 127], [5, -128, 0]])
    assert run.outputs.dtype == np.int8 and run.arena_used == 57860 and run.stack_used == 1384
    assert run.instructions_per_tick == 40.0  # 2e6 instructions in 50,000 ticks
    assert run.instructions_per_inference == 40.0 * 1100  # the median of 1000 and 1200 ticks
    assert run.op_instructions() == {"CONV_2D": 40.0 * 750, "SOFTMAX": 40.0 * 350}


@pytest.mark.parametrize(
    "text, match",
    [
        ("KERAS_HRF error AllocateTensors failed with an arena of 1024 bytes\n", "AllocateTensors"),
        (HARNESS_OUT.replace("KERAS_HRF done\n", ""), "did not finish"),
        (HARNESS_OUT.replace("KERAS_HRF output 1 5 -128 0\n", ""), "incomplete"),
    ],
)
def test_parse_harness_refuses_errors_and_truncated_output(text, match):
    with pytest.raises(firmware.FirmwareError, match=match):
        firmware.parse_harness(text, "host")


#: A hand-made excerpt of a GNU ld map, in the layout of arm-none-eabi-ld 2.40.
MAP = Path(__file__).parent / "data" / "app_excerpt.map"


def test_read_map_splits_flash_and_ram_by_component():
    fp = firmware.read_map(MAP)
    assert fp.flash == {
        "model": 0x800,
        "example input": 0x300,
        "front-end tables": 0x10,
        "application": 0x80,
        "TFLM": 0x200,
        "CMSIS-NN": 0x100,
        "CMSIS-DSP": 0x20,
        "C/C++ runtime": 0x40 + 0x10,  # memcpy, and .data's initial values
        "alignment": 0x4,
    }
    assert fp.ram == {
        "application": 0x10,
        "C/C++ runtime": 0x10,
        "tensor arena": 0x1000,
        "heap (reserved)": 0x2000,
        "stack (reserved)": 0x2000,
    }
    assert fp.flash_total == sum(fp.flash.values()) and fp.to_dict()["ram_total"] == fp.ram_total


def test_missing_names_what_to_install_or_set(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no compiler, no make, no QEMU
    why = firmware.missing("m4", firmware.Trees())
    assert "make" in why and "arm-none-eabi-g++" in why and "qemu-system-arm" in why
    monkeypatch.undo()
    no_tree = firmware.missing("host", firmware.Trees.from_env({}))
    assert "KERAS_HRF_TFLM_TREE" in no_tree or "not found on PATH" in no_tree
    not_a_tree = firmware.Trees(host=tmp_path)
    reason = firmware.missing("host", not_a_tree)
    assert reason is not None and ("not a TFLM tree" in reason or "not found" in reason)
    with pytest.raises(ValueError, match="unknown firmware target"):
        firmware.missing("m7", not_a_tree)


def test_run_command_uses_qemu_system_arm_with_semihosting_on_cortex_m():
    cmd = firmware.run_command("/x/app", "m55")
    assert cmd[:3] == ["qemu-system-arm", "-machine", "mps3-an547"]
    assert "enable=on,target=native" in cmd and "shift=0" in cmd
    assert firmware.run_command("/x/app", "host", ["in.bin"]) == ["/x/app", "in.bin"]
