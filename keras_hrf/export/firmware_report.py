"""Device measurements of an export: real firmware on the host and emulated Cortex-M.

:func:`measure` builds ``tflite/micro``'s harness for each target (see
:mod:`keras_hrf.device.firmware`), runs it on the export's checked inputs and compares its int8
outputs with the Python TFLM interpreter's (the contract: bit-identical), then builds the
deployable ``main.cc`` firmware for its flash and RAM by component. The result,
:class:`FirmwareReport`, goes into the export's ``REPORT.md`` and ``firmware.json``, and the
32-bit arena it measures becomes the recommended one (:func:`recommended_arena_32bit`).
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_hrf import reports
from keras_hrf.device import firmware

#: Alignment slack on top of the 32-bit ``arena_used_bytes()`` (TFLM aligns the arena start to
#: 16 bytes) and a 2 % margin for other TFLM / CMSIS-NN versions, rounded up to 1 KiB.
ARENA_32BIT_MARGIN = 0.02


def recommended_arena_32bit(used_bytes: int) -> int:
    """The arena to allocate on a 32-bit target where TFLM reported ``used_bytes``."""
    return int(math.ceil((used_bytes * (1 + ARENA_32BIT_MARGIN) + 16) / 1024) * 1024)


@dataclasses.dataclass(frozen=True)
class TargetFigures:
    """One target's measurements.

    Attributes:
        target: ``"host"``, ``"m4"`` or ``"m55"``.
        description: What the target is (:data:`keras_hrf.device.firmware.TARGETS`).
        inputs: How many inputs the harness ran.
        identical: How many of them gave int8 outputs identical to the Python TFLM interpreter.
        max_diff_steps: Largest output difference from it, in int8 steps.
        arena_used: ``arena_used_bytes()`` with this target's kernels and pointer size.
        stack_used: Stack high-water mark of the harness (Cortex-M), bytes.
        instructions: Median instructions per inference (Cortex-M under QEMU).
        op_instructions: Op type -> instructions per inference.
        flash: Component -> bytes of the ``main.cc`` firmware (Cortex-M).
        ram: Component -> bytes of RAM of the ``main.cc`` firmware (Cortex-M).
        seconds: Build and run time.
    """

    target: str
    description: str
    inputs: int
    identical: int
    max_diff_steps: int
    arena_used: int
    stack_used: int | None
    instructions: float | None
    op_instructions: dict[str, float]
    flash: dict[str, int]
    ram: dict[str, int]
    seconds: float

    @property
    def bit_identical(self) -> bool:
        return self.identical == self.inputs

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["flash_total"] = sum(self.flash.values())
        d["ram_total"] = sum(self.ram.values())
        return d


@dataclasses.dataclass(frozen=True)
class FirmwareReport:
    """Measurements of one export on every target that could be built.

    Attributes:
        targets: Target name -> :class:`TargetFigures`.
        skipped: Target name -> why it was not measured (tools or trees missing).
        macs: The model's multiply-accumulates per inference (for instructions per MAC).
        weight_bytes: Constant data in the flatbuffer (for the flatbuffer's overhead).
        flatbuffer: :func:`keras_hrf.export.slim.size_breakdown` of the int8 model.
    """

    targets: dict[str, TargetFigures]
    skipped: dict[str, str]
    macs: int | None = None
    weight_bytes: int | None = None
    flatbuffer: dict[str, int] | None = None

    @property
    def arena_32bit(self) -> int | None:
        """The largest arena used on a Cortex-M target, or None without one."""
        used = [f.arena_used for t, f in self.targets.items() if t != "host"]
        return max(used) if used else None

    @property
    def ok(self) -> bool:
        """Whether every measured target was bit-identical to the Python interpreter."""
        return all(f.bit_identical for f in self.targets.values())

    def to_dict(self) -> dict:
        return {
            "targets": {t: f.to_dict() for t, f in self.targets.items()},
            "skipped": self.skipped,
            "macs": self.macs,
            "weight_bytes": self.weight_bytes,
            "flatbuffer": self.flatbuffer,
            "arena_32bit": self.arena_32bit,
            "bit_identical": self.ok,
        }

    def to_markdown(self) -> str:
        """The ``REPORT.md`` section: per target, then flash / RAM and the per-op profile."""
        lines = ["## Firmware (measured)", ""]
        if not self.targets:
            lines.append("No target could be built here: " + _skipped_text(self.skipped) + ".")
            return "\n".join(lines) + "\n"
        head = ["target", "outputs = Python TFLM", "arena used", "stack", "instructions", "per MAC"]
        rows = []
        for f in self.targets.values():
            per_mac = f"{f.instructions / self.macs:.1f}" if f.instructions and self.macs else "-"
            rows.append(
                [
                    f.description,
                    f"{f.identical} / {f.inputs}"
                    + ("" if f.bit_identical else f" (max {f.max_diff_steps} steps)"),
                    f"{reports.count(f.arena_used)} B",
                    f"{reports.count(f.stack_used)} B" if f.stack_used is not None else "-",
                    f"{f.instructions / 1e6:.1f} M" if f.instructions else "-",
                    per_mac,
                ]
            )
        lines += [reports.markdown_table(head, rows), ""]
        lines.append(
            "Instructions: QEMU `-icount shift=0` (one instruction per virtual ns), SysTick read "
            "around `Invoke()`, median over the inputs; the host runs TFLM's reference kernels, "
            "Cortex-M CMSIS-NN. The arena is TFLM's `arena_used_bytes()` on that target."
        )
        if self.arena_32bit is not None:
            lines += [
                "",
                f"Recommended arena (`KERAS_HRF_ARENA_SIZE`, `model_meta.json`): "
                f"{reports.count(recommended_arena_32bit(self.arena_32bit))} B, the largest "
                "Cortex-M `arena_used_bytes()` plus 2 % and 16 bytes, rounded up to 1 KiB (the "
                "self-test passes with it). A 64-bit build (the Python interpreter, a host "
                "firmware) keeps the host figure of the table above: `model_data.h` picks it "
                "by pointer size.",
            ]
        if self.skipped:
            lines += ["", "Not measured: " + _skipped_text(self.skipped) + "."]
        for f in self.targets.values():
            if not f.flash:
                continue
            comps = [c for c in firmware.COMPONENTS if f.flash.get(c) or f.ram.get(c)]
            rows = [
                [c, reports.count(f.flash.get(c, 0)), reports.count(f.ram.get(c, 0))] for c in comps
            ]
            rows.append(
                [
                    "**total**",
                    reports.count(sum(f.flash.values())),
                    reports.count(sum(f.ram.values())),
                ]
            )
            lines += [
                "",
                f"### `main.cc` firmware on {f.description}: flash and RAM (bytes, linker map)",
                "",
                reports.markdown_table(["component", "flash", "RAM"], rows),
            ]
        for f in self.targets.values():
            if not f.op_instructions:
                continue
            total = sum(f.op_instructions.values()) or 1.0
            rows = [
                [op, f"{n / 1e6:.2f} M", f"{100 * n / total:.0f} %"]
                for op, n in f.op_instructions.items()
            ]
            lines += [
                "",
                f"### Instructions per op type on {f.description} (per inference)",
                "",
                reports.markdown_table(["op", "instructions", "share"], rows),
            ]
        if self.flatbuffer and self.weight_bytes:
            fb = self.flatbuffer
            rows = [[k.replace("_", " "), reports.count(v)] for k, v in fb.items()]
            lines += [
                "",
                f"### The int8 flatbuffer: {fb['total'] / self.weight_bytes:.2f}x its weight bytes",
                "",
                reports.markdown_table(["part", "bytes"], rows),
            ]
        return "\n".join(lines) + "\n"


def _skipped_text(skipped: dict[str, str]) -> str:
    return "; ".join(f"{t}: {why}" for t, why in skipped.items())


def available(targets: Sequence[str], trees: firmware.Trees) -> tuple[list[str], dict[str, str]]:
    """Split ``targets`` into those that can be built here and ``{target: why not}``."""
    ok, skipped = [], {}
    for t in targets:
        why = firmware.missing(t, trees)
        if why is None:
            ok.append(t)
        else:
            skipped[t] = why
    return ok, skipped


def measure(
    export_dir: str | Path,
    inputs: np.ndarray,
    reference: np.ndarray,
    *,
    targets: Sequence[str] = ("host", "m4", "m55"),
    trees: firmware.Trees | None = None,
    macs: int | None = None,
    weight_bytes: int | None = None,
    flatbuffer: dict[str, int] | None = None,
    arena_size: int | None = None,
    footprint: bool = True,
) -> FirmwareReport:
    """Build and run the firmware of an export on ``targets``.

    Args:
        export_dir: The export folder (its C sources).
        inputs: int8 model inputs ``[N, ...]`` (e.g. the export's checked samples).
        reference: The Python TFLM interpreter's int8 outputs for them, ``[N, classes]``.
        targets: Targets to try; those without tools or trees are skipped (in the report).
        trees: The TFLM / CMSIS-DSP trees (default :meth:`firmware.Trees.from_env`).
        macs: The model's MACs, for instructions per MAC.
        weight_bytes: The flatbuffer's constant bytes.
        flatbuffer: Its size breakdown.
        arena_size: The harness's arena (default: the export's ``KERAS_HRF_ARENA_SIZE``).
        footprint: Also build ``main.cc`` for flash / RAM (:func:`add_footprints`); the export
            does that itself after setting the arena from this measurement.

    Returns:
        A :class:`FirmwareReport`.

    Raises:
        keras_hrf.device.firmware.FirmwareError: a build or run failed on a target that has
            its tools (a real failure, not a missing toolchain).
    """
    trees = trees or firmware.Trees.from_env()
    todo, skipped = available(targets, trees)
    reference = np.asarray(reference).reshape(len(inputs), -1)
    figures = {}
    with tempfile.TemporaryDirectory(prefix="keras-hrf-fw-") as tmp:
        for target in todo:
            started = time.perf_counter()
            run = firmware.run_harness(
                export_dir, inputs, target, trees=trees, build_dir=tmp, arena_size=arena_size
            )
            diff = np.abs(run.outputs.astype(np.int32) - reference.astype(np.int32))
            figures[target] = TargetFigures(
                target=target,
                description=firmware.TARGETS[target][0],
                inputs=len(inputs),
                identical=int(np.sum(diff.max(axis=1) == 0)),
                max_diff_steps=int(diff.max()),
                arena_used=run.arena_used,
                stack_used=run.stack_used,
                instructions=run.instructions_per_inference,
                op_instructions=run.op_instructions(),
                flash={},
                ram={},
                seconds=time.perf_counter() - started,
            )
    result = FirmwareReport(figures, skipped, macs, weight_bytes, flatbuffer)
    return add_footprints(result, export_dir, trees) if footprint else result


def add_footprints(report: FirmwareReport, export_dir: str | Path, trees) -> FirmwareReport:
    """Build the export's ``self_test.cc`` and ``main.cc`` for every Cortex-M target measured:
    the self-test must predict the expected label with the export's arena (a smaller one than
    needed fails it), and ``main.cc``'s linker map gives flash and RAM per component.

    Raises:
        keras_hrf.device.firmware.FirmwareError: the self-test failed.
    """
    figures = dict(report.targets)
    with tempfile.TemporaryDirectory(prefix="keras-hrf-fw-") as tmp:
        for target, f in report.targets.items():
            if target == "host":
                continue
            started = time.perf_counter()
            elf = firmware.build(export_dir, target, "self_test", trees=trees, build_dir=tmp)
            proc = firmware.run(elf, target, cwd=elf.parent, timeout=300)
            if proc.returncode != 0 or "~~~ALL TESTS PASSED~~~" not in proc.stdout:
                raise firmware.FirmwareError(
                    f"self-test on {target} failed (exit {proc.returncode}):\n"
                    + (proc.stdout + proc.stderr).strip()[-2000:]
                )
            firmware.build(export_dir, target, "main", trees=trees, build_dir=tmp)
            fp = firmware.read_map(Path(tmp) / target / "main" / "app.map")
            figures[target] = dataclasses.replace(
                f, flash=fp.flash, ram=fp.ram, seconds=f.seconds + time.perf_counter() - started
            )
    return dataclasses.replace(report, targets=figures)


def write_sources(
    tflite_bytes: bytes,
    out_dir: str | Path,
    example: np.ndarray,
    expected_index: int,
    labels: Sequence[str] | None = None,
    arena_bytes: int | None = None,
    micro_slim: bool = True,
) -> Path:
    """The C sources the firmware needs, for a bare int8 ``.tflite`` (no export folder).

    Writes ``model_data.h`` / ``model_data.cc``, ``op_resolver.h`` and ``example_input.h``
    (``example``, an int8 input, and the label index TFLM gives it) into ``out_dir``. As an
    export does, the C array holds the flatbuffer slimmed for TFLM
    (:func:`keras_hrf.export.slim.micro_flatbuffer`) unless ``micro_slim`` is False.

    Returns:
        ``out_dir``.
    """
    from keras_hrf.export import csource, flatbuffer, slim
    from keras_hrf.export.runtime_check import min_tflm_arena, recommended_arena

    info = flatbuffer.parse(tflite_bytes)
    n_out = int(np.prod(info.output.shape[1:]))
    labels = list(labels) if labels is not None else [f"class_{i}" for i in range(n_out)]
    in_scale, in_zero = flatbuffer.quantization_params(info.input)
    out_scale, out_zero = flatbuffer.quantization_params(info.output)
    arena_min = min_tflm_arena(tflite_bytes)
    c_array = slim.micro_flatbuffer(tflite_bytes) if micro_slim else tflite_bytes
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "model_data.h": csource.model_data_h(
            num_bytes=len(c_array),
            arena_bytes=arena_bytes or recommended_arena(arena_min),
            arena_min=arena_min,
            arena_source="the host interpreter (keras-hrf check)",
            input_shape=info.input.shape,
            input_scale=in_scale,
            input_zero_point=in_zero,
            output_scale=out_scale,
            output_zero_point=out_zero,
            num_classes=n_out,
        ),
        "model_data.cc": csource.model_data_cc(c_array, labels),
        "op_resolver.h": csource.op_resolver_h(info.op_set, info.int8_ops),
        "example_input.h": csource.example_input_h(
            example, int(expected_index), labels[int(expected_index)]
        ),
    }
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
    return out
