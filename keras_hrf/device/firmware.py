"""Real firmware for an export folder: built with TFLite Micro, run on the host or on emulated
Cortex-M.

The C++ side lives in ``tflite/micro/`` (``Makefile``, ``main.cc``, ``harness.cc``,
``audio_main.cc``, start-up code and linker scripts for the QEMU machines). This module drives it:

- :func:`build` compiles an application for a target against a TFLM tree (made by TFLM's
  ``create_tflm_tree.py``): ``"host"`` with the reference kernels, ``"m4"`` (Cortex-M4F, QEMU
  ``mps2-an386``) and ``"m55"`` (Cortex-M55, QEMU ``mps3-an547``) with CMSIS-NN. TFLM and CMSIS
  objects are cached per tree and target (:func:`cache_dir`), so only the first build is slow
  (and with ``ccache`` installed, the application's objects of an export built before);
- :func:`run_harness` runs ``harness.cc`` on N int8 inputs and returns a :class:`HarnessRun`:
  the int8 outputs (the contract: bit-identical to the Python ``tflite_micro`` interpreter), the
  arena actually used, the stack high-water mark, and on Cortex-M instructions per inference and
  per op type (QEMU ``-icount shift=0``: one instruction per virtual nanosecond, SysTick read
  around ``Invoke()``, calibrated by a loop of known length);
- :func:`read_map` splits the linker map into flash and RAM per component (model, TFLM, CMSIS-NN,
  CMSIS-DSP, C library, application, arena, stack).

What the build needs (:func:`missing`): ``make``, a C++ compiler (``g++`` for the host,
Debian's ``gcc-arm-none-eabi`` with ``libnewlib-arm-none-eabi`` and
``libstdc++-arm-none-eabi-newlib`` for Cortex-M), ``qemu-system-arm`` to run Cortex-M, and the
trees, given as :class:`Trees` (or the environment variables of :meth:`Trees.from_env`).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

#: The targets: name -> (what it is, the QEMU machine or None for the host).
TARGETS: dict[str, tuple[str, str | None]] = {
    "host": ("host, TFLM reference kernels", None),
    "m4": ("Cortex-M4F (QEMU mps2-an386), CMSIS-NN", "mps2-an386"),
    "m55": ("Cortex-M55 (QEMU mps3-an547), CMSIS-NN", "mps3-an547"),
}

#: Applications of ``tflite/micro``: ``main.cc``, ``self_test.cc`` (main.cc on the export's
#: example, checking its label), ``harness.cc``, ``audio_main.cc``.
APPS = ("main", "self_test", "harness", "audio")

#: Environment variables naming the trees (see :meth:`Trees.from_env`).
ENV_TREE_HOST = "KERAS_HRF_TFLM_TREE"
ENV_TREE_CORTEX_M = "KERAS_HRF_TFLM_TREE_CORTEX_M"
ENV_CMSIS_DSP = "KERAS_HRF_CMSIS_DSP"
ENV_FIRMWARE_DIR = "KERAS_HRF_FIRMWARE_DIR"
ENV_CACHE = "KERAS_HRF_FIRMWARE_CACHE"

_PREFIX = "KERAS_HRF "


class FirmwareError(RuntimeError):
    """A firmware build or run failed; the message ends with the tool's last output lines."""


@dataclasses.dataclass(frozen=True)
class Trees:
    """Where the third-party sources are.

    Attributes:
        host: TFLM tree with reference kernels (``create_tflm_tree.py``, default target).
        cortex_m: TFLM tree for Cortex-M with CMSIS-NN (``TARGET=cortex_m_generic
            OPTIMIZED_KERNEL_DIR=cmsis_nn``).
        cmsis_dsp: CMSIS-DSP (``Include/``, ``PrivateInclude/``, ``Source/``), for ``audio``.
    """

    host: Path | None = None
    cortex_m: Path | None = None
    cmsis_dsp: Path | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Trees:
        """Trees named by ``KERAS_HRF_TFLM_TREE``, ``KERAS_HRF_TFLM_TREE_CORTEX_M`` and
        ``KERAS_HRF_CMSIS_DSP`` (unset ones are None)."""
        env = os.environ if environ is None else environ

        def path(name):
            return Path(env[name]).expanduser() if env.get(name) else None

        return cls(path(ENV_TREE_HOST), path(ENV_TREE_CORTEX_M), path(ENV_CMSIS_DSP))

    def tflm_tree(self, target: str) -> Path | None:
        """The TFLM tree a target builds with."""
        _check_target(target)
        return self.host if target == "host" else self.cortex_m


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise ValueError(f"unknown firmware target {target!r}: use one of {', '.join(TARGETS)}")


def firmware_dir() -> Path:
    """The ``tflite/micro`` folder (``KERAS_HRF_FIRMWARE_DIR``, else the source checkout's).

    Raises:
        FileNotFoundError: neither exists (an installed wheel does not ship the C++ sources).
    """
    env = os.environ.get(ENV_FIRMWARE_DIR)
    here = Path(env) if env else Path(__file__).resolve().parents[2] / "tflite" / "micro"
    if not (here / "Makefile").is_file():
        raise FileNotFoundError(
            f"no firmware sources at {here}: set {ENV_FIRMWARE_DIR} to the tflite/micro folder "
            "of a keras-hrf checkout"
        )
    return here


def cache_dir() -> Path:
    """Where compiled TFLM / CMSIS objects are kept (``KERAS_HRF_FIRMWARE_CACHE``, else
    ``~/.cache/keras-hrf/firmware``)."""
    env = os.environ.get(ENV_CACHE)
    return Path(env) if env else Path.home() / ".cache" / "keras-hrf" / "firmware"


def missing(target: str, trees: Trees, app: str = "harness") -> str | None:
    """Why ``app`` cannot be built and run for ``target`` here, or None if it can.

    Checks the tools on ``PATH``, the trees and the firmware sources, so that callers can skip
    (saying why) before any long work.
    """
    _check_target(target)
    tools = ["make"] + (["g++"] if target == "host" else ["arm-none-eabi-g++", "qemu-system-arm"])
    absent = [t for t in tools if shutil.which(t) is None]
    if absent:
        return f"{', '.join(absent)} not found on PATH"
    tree = trees.tflm_tree(target)
    env = ENV_TREE_HOST if target == "host" else ENV_TREE_CORTEX_M
    if tree is None:
        return f"no TFLM tree for {target} (set {env} or pass the tree)"
    if not (tree / "tensorflow" / "lite" / "micro" / "micro_interpreter.cc").is_file():
        return f"{tree} is not a TFLM tree (no tensorflow/lite/micro/micro_interpreter.cc)"
    if app == "audio" and (trees.cmsis_dsp is None or not (trees.cmsis_dsp / "Source").is_dir()):
        return f"the audio application needs CMSIS-DSP (set {ENV_CMSIS_DSP})"
    try:
        firmware_dir()
    except FileNotFoundError as exc:
        return str(exc)
    if target != "host" and not _has_newlib():
        return "arm-none-eabi-gcc has no newlib (install libnewlib-arm-none-eabi)"
    return None


def _has_newlib() -> bool:
    try:
        out = subprocess.run(
            ["arm-none-eabi-gcc", "-print-file-name=rdimon.specs"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return False
    return os.path.isabs(out) and os.path.isfile(out)


def _tail(text: str, n: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def _make_args(
    export_dir: Path,
    target: str,
    app: str,
    trees: Trees,
    build_dir: Path | None,
    defines: Sequence[str],
    make_vars: Mapping[str, str] | None = None,
) -> list[str]:
    if app not in APPS:
        raise ValueError(f"unknown firmware application {app!r}: use one of {', '.join(APPS)}")
    reason = missing(target, trees, app)
    if reason is not None:
        raise FirmwareError(f"cannot build {app} for {target}: {reason}")
    args = [
        f"TFLM_TREE={trees.tflm_tree(target)}",
        f"EXPORT={Path(export_dir).resolve()}",
        f"TARGET={target}",
        f"APP={app}",
        f"CACHE={cache_dir()}",
        f"PYTHON={shutil.which('python3') or 'python3'}",
    ]
    if trees.cmsis_dsp is not None:
        args.append(f"CMSIS_DSP={trees.cmsis_dsp}")
    if build_dir is not None:
        args.append(f"BUILD={Path(build_dir).resolve()}")
    if defines:
        args.append("APP_DEFINES=" + " ".join(f"-D{d}" for d in defines))
    args += [f"{k}={v}" for k, v in (make_vars or {}).items()]
    return args


def build(
    export_dir: str | os.PathLike,
    target: str,
    app: str = "harness",
    *,
    trees: Trees,
    build_dir: str | os.PathLike | None = None,
    defines: Sequence[str] = (),
    make_vars: Mapping[str, str] | None = None,
    jobs: int | None = None,
    timeout: float = 1800,
) -> Path:
    """Compile ``app`` for ``target`` from an export folder; returns the executable (ELF).

    Args:
        export_dir: A folder written by :func:`keras_hrf.export.export` (``model_data.cc``,
            ``op_resolver.h``, ...).
        target: ``"host"``, ``"m4"`` or ``"m55"``.
        app: ``"main"``, ``"harness"`` or ``"audio"``.
        trees: The TFLM trees (and CMSIS-DSP for ``audio``).
        build_dir: Where the application's objects, ``app`` and ``app.map`` go (default
            ``EXPORT/build``; the executable is ``BUILD/TARGET/APP/app``).
        defines: Preprocessor definitions for the application sources, e.g.
            ``["KERAS_HRF_HARNESS_ARENA_SIZE=4096"]``.
        make_vars: Other Makefile variables, e.g. ``{"AUDIO": "/abs/speech.raw"}`` (the audio
            file a Cortex-M ``audio`` build reads over semihosting).
        jobs: Parallel compile jobs (default: the CPUs this process may use).
        timeout: Seconds before the build is abandoned (a cold Cortex-M build is minutes).

    Raises:
        FirmwareError: the tools or trees are missing, or the build failed (with make's output).
    """
    args = _make_args(Path(export_dir), target, app, trees, build_dir, defines, make_vars)
    jobs = jobs or len(os.sched_getaffinity(0))
    cmd = ["make", "-s", "-C", str(firmware_dir()), f"-j{jobs}", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise FirmwareError(f"building {app} for {target} took over {timeout:.0f} s") from exc
    if proc.returncode != 0:
        raise FirmwareError(
            f"building {app} for {target} failed (make exit {proc.returncode}):\n"
            + _tail(proc.stdout + proc.stderr)
        )
    base = Path(build_dir) if build_dir is not None else Path(export_dir) / "build"
    return base.resolve() / target / app / "app"


def run_command(elf: str | os.PathLike, target: str, args: Sequence[str] = ()) -> list[str]:
    """The command line that runs a built executable (QEMU with semihosting on Cortex-M).

    ``args`` are passed to the host executable; Cortex-M firmware has no command line (files
    are opened by name over semihosting, relative to the working directory).
    """
    _check_target(target)
    machine = TARGETS[target][1]
    if machine is None:
        return [str(elf), *args]
    return [
        "qemu-system-arm",
        "-machine",
        machine,
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-semihosting-config",
        "enable=on,target=native",
        # One instruction per virtual nanosecond: SysTick ticks convert to instructions.
        "-icount",
        "shift=0",
        "-kernel",
        str(elf),
    ]


def run(
    elf: str | os.PathLike,
    target: str,
    *,
    args: Sequence[str] = (),
    cwd: str | os.PathLike | None = None,
    stdin: bytes | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run a built executable; returns the finished process (``stdout`` as text).

    Raises:
        FirmwareError: it ran longer than ``timeout`` (killed; a hang is not a result).
    """
    cmd = run_command(elf, target, args)
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, input=stdin, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise FirmwareError(f"{' '.join(cmd)} did not finish within {timeout:.0f} s") from exc
    return subprocess.CompletedProcess(
        proc.args,
        proc.returncode,
        proc.stdout.decode("utf-8", errors="replace"),
        proc.stderr.decode("utf-8", errors="replace"),
    )


# --- the harness --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HarnessRun:
    """What ``harness.cc`` printed for one target.

    Attributes:
        target: The target name.
        outputs: int8 ``[N, classes]``, one row per input.
        ticks: ``[N]`` ticks of each ``Invoke()`` (SysTick on Cortex-M, TFLM's clock on the host).
        op_ticks: Op type -> ticks summed over all N inputs.
        instructions_per_tick: From the calibration loop (Cortex-M under QEMU); None on the host.
        arena_used: ``arena_used_bytes()`` after ``AllocateTensors``, with this target's kernels
            and pointer size.
        stack_used: Stack high-water mark in bytes (Cortex-M), else None.
        footprint: Flash / RAM per component from the linker map (Cortex-M), else None.
    """

    target: str
    outputs: np.ndarray
    ticks: np.ndarray
    op_ticks: dict[str, int]
    instructions_per_tick: float | None
    arena_used: int
    stack_used: int | None
    footprint: Footprint | None = None

    @property
    def instructions_per_inference(self) -> float | None:
        """Median instructions of one ``Invoke()`` (Cortex-M), else None."""
        if self.instructions_per_tick is None or not len(self.ticks):
            return None
        return float(np.median(self.ticks)) * self.instructions_per_tick

    def op_instructions(self) -> dict[str, float]:
        """Op type -> instructions per inference (mean over the inputs), largest first."""
        if self.instructions_per_tick is None or not len(self.ticks):
            return {}
        n = len(self.ticks)
        per = {op: t * self.instructions_per_tick / n for op, t in self.op_ticks.items()}
        return dict(sorted(per.items(), key=lambda kv: -kv[1]))


def parse_harness(text: str, target: str) -> HarnessRun:
    """Parse the ``KERAS_HRF ...`` lines of ``harness.cc`` (other lines are ignored).

    Raises:
        FirmwareError: the harness reported an error or did not finish.
    """
    outputs: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    op_ticks: dict[str, int] = {}
    calib = None
    arena = stack = None
    done = False
    for line in text.splitlines():
        if not line.startswith(_PREFIX):
            continue
        kind, *rest = line[len(_PREFIX) :].split()
        if kind == "error":
            raise FirmwareError(f"harness on {target}: {' '.join(rest)}")
        if kind == "output":
            outputs[int(rest[0])] = [int(v) for v in rest[1:]]
        elif kind == "ticks":
            ticks[int(rest[0])] = int(rest[1])
        elif kind == "op":
            op_ticks[rest[0]] = int(rest[1])
        elif kind == "calibration":
            instructions, t = int(rest[0]), int(rest[1])
            calib = instructions / t if t > 0 else None
        elif kind == "arena_used":
            arena = int(rest[0])
        elif kind == "stack_used":
            stack = int(rest[0])
        elif kind == "done":
            done = True
    if not done or arena is None:
        raise FirmwareError(f"harness on {target} did not finish:\n{_tail(text)}")
    order = sorted(outputs)
    if order != list(range(len(order))) or sorted(ticks) != order:
        raise FirmwareError(f"harness on {target}: outputs of inputs {order} are incomplete")
    return HarnessRun(
        target=target,
        outputs=np.array([outputs[i] for i in order], dtype=np.int8).reshape(len(order), -1),
        ticks=np.array([ticks[i] for i in order], dtype=np.int64),
        op_ticks=op_ticks,
        instructions_per_tick=calib,
        arena_used=arena,
        stack_used=stack,
    )


def run_harness(
    export_dir: str | os.PathLike,
    inputs: np.ndarray,
    target: str,
    *,
    trees: Trees,
    build_dir: str | os.PathLike | None = None,
    arena_size: int | None = None,
    timeout: float = 900,
) -> HarnessRun:
    """Build ``harness.cc`` for ``target`` and run it on ``inputs``.

    Args:
        export_dir: The export folder.
        inputs: int8 ``[N, ...]``: the model's quantized input tensors (any shape whose per-item
            size is the input tensor's bytes).
        target: ``"host"``, ``"m4"`` or ``"m55"``.
        trees: The TFLM trees.
        build_dir: Where to build (default: a temporary folder, removed afterwards).
        arena_size: The harness's arena in bytes (default: the export's ``KERAS_HRF_ARENA_SIZE``).
        timeout: Seconds for the run (the build has its own).

    Returns:
        A :class:`HarnessRun` with the linker map's :class:`Footprint` on Cortex-M.

    Raises:
        FirmwareError: the build failed, TFLM reported an error (e.g. an arena too small: its
            own message is in the error), or the run hung.
        ValueError: ``inputs`` is not int8.
    """
    inputs = np.asarray(inputs)
    if inputs.dtype != np.int8 or inputs.ndim < 2 or not len(inputs):
        raise ValueError(
            f"inputs must be int8 [N, ...] with N >= 1, got {inputs.dtype} {inputs.shape}"
        )
    with tempfile.TemporaryDirectory(prefix="keras-hrf-fw-") as tmp:
        base = Path(build_dir) if build_dir is not None else Path(tmp)
        defines = [f"KERAS_HRF_HARNESS_ARENA_SIZE={int(arena_size)}"] if arena_size else []
        elf = build(export_dir, target, "harness", trees=trees, build_dir=base, defines=defines)
        data = elf.parent / "harness_inputs.bin"
        data.write_bytes(np.ascontiguousarray(inputs).tobytes())
        proc = run(elf, target, args=[str(data)], cwd=elf.parent, timeout=timeout)
        text = proc.stdout + proc.stderr
        if proc.returncode != 0:
            lines = [ln for ln in text.splitlines() if ln.strip()]
            raise FirmwareError(
                f"harness on {target} exited with {proc.returncode}:\n" + "\n".join(lines[-15:])
            )
        result = parse_harness(text, target)
        if len(result.outputs) != len(inputs):
            raise FirmwareError(
                f"harness on {target} ran {len(result.outputs)} of {len(inputs)} inputs"
            )
        footprint = read_map(elf.parent / "app.map") if target != "host" else None
        return dataclasses.replace(result, footprint=footprint)


# --- the linker map -----------------------------------------------------------------------------

#: Components of :class:`Footprint`, in report order.
COMPONENTS = (
    "model",
    "example input",
    "front-end tables",
    "application",
    "TFLM",
    "CMSIS-NN",
    "CMSIS-DSP",
    "C/C++ runtime",
    "tensor arena",
    "heap (reserved)",
    "stack (reserved)",
    "alignment",
)

_FLASH_SECTIONS = (".text", ".ARM.exidx", ".data")  # .data: its initial values live in flash
_RAM_SECTIONS = (".data", ".bss", ".heap", ".stack")
_OUT_SECTION = re.compile(r"^(\.[\w.]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)")
_IN_SECTION = re.compile(r"^ (\S+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S.*)$")
_IN_SECTION_NAME = re.compile(r"^ (\.\S+|COMMON)$")
_IN_SECTION_REST = re.compile(r"^\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(\S.*)$")
_FILL = re.compile(r"^ \*fill\*\s+0x[0-9a-f]+\s+0x([0-9a-f]+)")


@dataclasses.dataclass(frozen=True)
class Footprint:
    """Flash and RAM of a firmware by component (from its GNU ld map).

    Attributes:
        flash: Component -> bytes in flash (code, constants, initial values of ``.data``).
        ram: Component -> bytes in RAM (``.data``, ``.bss``, heap and stack reservations).
    """

    flash: dict[str, int]
    ram: dict[str, int]

    @property
    def flash_total(self) -> int:
        return sum(self.flash.values())

    @property
    def ram_total(self) -> int:
        return sum(self.ram.values())

    def to_dict(self) -> dict:
        return {
            "flash": self.flash,
            "ram": self.ram,
            "flash_total": self.flash_total,
            "ram_total": self.ram_total,
        }


def component(path: str, section: str) -> str:
    """The :data:`COMPONENTS` entry of one input section of the map."""
    if "g_example_input" in section:
        return "example input"
    if "g_tensor_arena" in section or "g_arena" in section:
        return "tensor arena"
    name = path.replace("\\", "/")
    if name.endswith("model_data.cc.o"):
        return "model"
    if name.endswith("frontend_tables.c.o"):
        return "front-end tables"
    if "/third_party/cmsis_nn/" in name:
        return "CMSIS-NN"
    if "/cmsis_dsp-" in name:
        return "CMSIS-DSP"
    if "/tflm/" in name:
        return "TFLM"
    if ".a(" in name or "/lib/gcc/" in name or name.startswith("/usr/"):
        return "C/C++ runtime"
    return "application"


def read_map(path: str | os.PathLike) -> Footprint:
    """Flash and RAM per component of a GNU ld map (``-Wl,-Map=``) of the Cortex-M firmware.

    The heap and stack are what the linker script reserves (the harness measures the stack
    actually used); linker padding is ``alignment``.
    """
    flash = dict.fromkeys(COMPONENTS, 0)
    ram = dict.fromkeys(COMPONENTS, 0)
    current = None
    pending = None  # an input section whose address / size / file are on the next line
    for line in Path(path).read_text(errors="replace").splitlines():
        m = _OUT_SECTION.match(line)
        if m:
            current, pending = m.group(1), None
            if current in (".heap", ".stack"):
                key = "heap (reserved)" if current == ".heap" else "stack (reserved)"
                ram[key] += int(m.group(2), 16)
            continue
        if line and not line[0].isspace():
            current, pending = None, None
            continue
        if current is None or current in (".heap", ".stack"):
            continue
        fill = _FILL.match(line)
        if fill:
            _add(flash, ram, current, "alignment", int(fill.group(1), 16))
            continue
        m = _IN_SECTION.match(line)
        if m and m.group(1).startswith((".", "COMMON")):
            _add(flash, ram, current, component(m.group(3), m.group(1)), int(m.group(2), 16))
            pending = None
            continue
        m = _IN_SECTION_NAME.match(line)
        if m:
            pending = m.group(1)
            continue
        m = _IN_SECTION_REST.match(line)
        if m and pending is not None:
            _add(flash, ram, current, component(m.group(2), pending), int(m.group(1), 16))
            pending = None
    return Footprint(
        flash={k: v for k, v in flash.items() if v}, ram={k: v for k, v in ram.items() if v}
    )


def _add(flash: dict, ram: dict, section: str, comp: str, size: int) -> None:
    if section in _FLASH_SECTIONS:
        flash[comp] += size
    if section in _RAM_SECTIONS:
        ram[comp] += size
