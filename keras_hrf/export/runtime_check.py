"""Verification of a converted model in the real runtimes: LiteRT and TensorFlow Lite Micro.

:func:`check` runs the flatbuffer in ``ai_edge_litert`` (the interpreter Android ships; one thread,
no default delegates, i.e. XNNPACK off, so that the kernels are TFLite's builtin ones) and in the
TFLite Micro host interpreter (``tflite_micro.runtime``: the same reference kernels a
microcontroller runs), compares them, measures the smallest TFLM arena that works, and compares the
int8 model's decisions with the float Keras model's.

Arena sizes. The minimum is found by creating TFLM interpreters (which allocate and prepare every
tensor) with decreasing arenas. The recommended arena adds 10 % and 16 bytes and rounds up to a
whole KiB (:func:`recommended_arena`), because the host measurement is not exactly the device's:

- TFLM aligns the start of the arena to 16 bytes, so an arena buffer that is not ``alignas(16)``
  loses up to 15 bytes (the generated ``main.cc`` aligns it; the 16 bytes cover code that doesn't);
- optimised kernels (CMSIS-NN on Cortex-M, Xtensa, ...) request scratch buffers that the reference
  kernels measured here do not (e.g. for CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, SOFTMAX);
  the 10 % covers the usual amounts, and ``main.cc`` prints ``arena_used_bytes()`` so a device
  build can confirm;
- the host is 64-bit: TFLM's per-tensor and per-node structs hold pointers, so a 32-bit
  microcontroller needs a little *less* than measured here.
"""

from __future__ import annotations

import dataclasses
import math
import re
import statistics
from typing import Any

import numpy as np

from data_prep import int8 as quant
from keras_hrf import reports
from keras_hrf.device.runtimes import (
    TflmError,
    capture_output,
    run_litert,
    run_tflm,
    tflm_interpreter,
)
from keras_hrf.export import flatbuffer

#: Safety margin of the recommended arena over the measured minimum.
ARENA_MARGIN = 0.10
#: Bytes an arena buffer without 16-byte alignment can lose to TFLM's alignment of its start.
ARENA_ALIGNMENT_SLACK = 16
#: TFLM allocates in 16-byte aligned chunks; the arena search stops at this resolution.
ARENA_RESOLUTION = 16
#: Largest arena tried before declaring that the model does not fit at all.
ARENA_LIMIT = 1 << 30


def recommended_arena(min_bytes: int) -> int:
    """``min_bytes`` + 10 % + 16 bytes of alignment slack, rounded up to a whole KiB."""
    return int(math.ceil((min_bytes * (1 + ARENA_MARGIN) + ARENA_ALIGNMENT_SLACK) / 1024) * 1024)


def predict(tflite_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """Float outputs of a converted model for float inputs, via LiteRT (the reference runtime).

    An int8 model gets ``x`` quantized with its input scale and zero point, and its int8 outputs
    are dequantized, so the result is comparable with the float Keras model's logits.

    Args:
        tflite_bytes: The flatbuffer.
        x: float32 ``[N, frames, n_mels]`` normalised features.

    Returns:
        float32 ``[N, classes]``.
    """
    info = flatbuffer.parse(tflite_bytes)
    x = flatbuffer.as_input_batch(np.asarray(x, dtype=np.float32), info.input.shape)
    if info.input.dtype != "INT8":
        return run_litert(tflite_bytes, x)[0].astype(np.float32)
    q = quant.quantize(x, *flatbuffer.quantization_params(info.input))
    out = run_litert(tflite_bytes, q)[0]
    return quant.dequantize(out, *flatbuffer.quantization_params(info.output))


def _tflm_creates(tflite_bytes: bytes, arena_size: int) -> bool:
    try:
        tflm_interpreter(tflite_bytes, arena_size)
    except TflmError:
        return False
    return True


_ARENA_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")


def _allocation_record(tflite_bytes: bytes, arena_size: int) -> int | None:
    """What TFLM recorded allocating with ``arena_size`` (``arena_size`` itself if it printed no
    record), or ``None`` if the model does not fit: one creation answers both questions."""
    try:
        it = tflm_interpreter(tflite_bytes, arena_size)
    except TflmError:
        return None
    with capture_output() as captured:
        it.print_allocations()
    m = _ARENA_TOTAL.search(captured[0])
    return int(m.group(1)) if m else arena_size


def min_tflm_arena(tflite_bytes: bytes) -> int:
    """The smallest TFLM arena (to 16 bytes) with which the model allocates and prepares.

    The search never creates an interpreter far below the minimum: there the TFLM host
    interpreter does not always fail cleanly, it can crash the process (segmentation faults
    measured at some sizes 15-45 KB below the minimum of the three families, both LayerNorm
    lowerings, never at or above TFLM's own record of what it allocated). So it starts from an
    arena that surely fits (64 MiB, doubled up to 1 GiB), reads that record (a lower bound of
    the minimum: from a few hundred bytes to ~16 KB short) and probes only upwards from it,
    then bisects. There is deliberately no "start from this size" option: a start that is too
    small is exactly what can crash the process.

    Args:
        tflite_bytes: The flatbuffer.

    Raises:
        TflmError: the model does not allocate even with a 1 GiB arena (not an arena problem).
    """
    hi = _SEARCH_START
    while (recorded := _allocation_record(tflite_bytes, hi)) is None:
        if hi >= ARENA_LIMIT:
            tflm_interpreter(tflite_bytes, hi)  # raises with TFLM's reason
        hi *= 2
    if recorded >= hi:
        return hi
    step = ARENA_RESOLUTION
    recorded = -(-recorded // step) * step
    if _tflm_creates(tflite_bytes, recorded):
        # Below the record only in 16-byte steps, at most _BELOW_RECORD bytes: never near the
        # sizes where TFLM crashes.
        hi = recorded
        while recorded - hi < _BELOW_RECORD and _tflm_creates(tflite_bytes, hi - step):
            hi -= step
        return hi
    # Up from the record with growing steps until it fits, then bisect.
    lo = recorded
    while lo + step < hi and not _tflm_creates(tflite_bytes, lo + step):
        lo, step = lo + step, step * 2
    hi = min(hi, lo + step)
    while hi - lo > ARENA_RESOLUTION:
        mid = (lo + hi) // 2 // ARENA_RESOLUTION * ARENA_RESOLUTION
        if mid <= lo:
            break
        if _tflm_creates(tflite_bytes, mid):
            hi = mid
        else:
            lo = mid
    return hi


#: First arena of the search: larger than any model of this project needs (the large presets
#: need under 4 MiB); the host allocates it without touching most of its pages.
_SEARCH_START = 64 * 1024 * 1024
#: How far below TFLM's allocation record the search may probe (it has never been needed).
_BELOW_RECORD = 1024


_UNKNOWN_OP = re.compile(r"Didn't find op for builtin opcode '([A-Z0-9_]+)'")
_NODE_FAILED = re.compile(r"Node ([A-Z0-9_]+) \(number (\d+)\) failed to (\w+)")


def unsupported_ops(messages: str) -> dict[str, str]:
    """Ops that TFLM refused, with the reason, from TFLM's captured messages."""
    found: dict[str, str] = {}
    lines = [ln.strip() for ln in messages.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        m = _UNKNOWN_OP.search(line)
        if m:
            found.setdefault(m.group(1), "TFLM has no kernel for this op")
        m = _NODE_FAILED.search(line)
        if m:
            # The kernel's own complaint (e.g. "Type INT8 (9) not supported.") precedes this line.
            reason = lines[i - 1] if i > 0 else line
            found.setdefault(m.group(1), f"{reason} (node {m.group(2)} failed to {m.group(3)})")
    return found


# -------------------------------------------------------------------------------------- report


@dataclasses.dataclass
class CheckReport:
    """Figures of one converted model, from :func:`check`.

    Attributes:
        quantization: ``"int8"`` or ``"float32"`` (from the input tensor type).
        ops: Builtin op names in execution order.
        op_counts: Occurrences of each op.
        flatbuffer_bytes: Size of the ``.tflite`` file (flash on a microcontroller).
        weight_bytes: Bytes of constant tensor data in it.
        macs: Multiply-accumulates per inference (from the Keras model), or None.
        input: Input tensor ``shape``, ``dtype``, ``scale``, ``zero_point``.
        output: Output tensor, same keys.
        problems: What :func:`keras_hrf.export.flatbuffer.problems` finds (empty = fine).
        tflm_ok: Whether TFLM created an interpreter and ran every sample.
        tflm_errors: TFLM's messages when it failed.
        tflm_unsupported_ops: Ops TFLM refused -> the reason it printed.
        arena_min: Smallest TFLM arena that works (host measurement), or None.
        arena_recommended: :func:`recommended_arena` of it, or None.
        num_samples: Examples run through both runtimes.
        litert_tflm_max_diff: Largest output difference LiteRT vs TFLM (int8 steps, or float).
        litert_tflm_max_abs_diff: The same in logit units (dequantized), comparable with
            ``float_max_abs_diff``.
        litert_tflm_argmax_agreement: Fraction of samples where both runtimes pick the same class.
        float_reference: Where the float outputs came from (``"keras"``/``"float_outputs"``).
        argmax_agreement: Fraction of samples where the converted model's top class equals the
            float model's.
        float_max_abs_diff: Largest |dequantized output - float output| (logit units).
        litert_ms: Median LiteRT invocation time on this host, ms (1 thread).
        tflm_ms: Median TFLM invocation time on this host, ms (reference kernels).
        litert_kernels_max_diff: Largest output difference between LiteRT's optimised and its
            reference kernels (int8 steps): how far two correct kernel sets drift apart on
            this model, the yardstick for ``litert_tflm_max_diff``.
    """

    quantization: str
    ops: list[str]
    op_counts: dict[str, int]
    flatbuffer_bytes: int
    weight_bytes: int
    macs: int | None
    input: dict[str, Any]
    output: dict[str, Any]
    problems: list[str]
    tflm_ok: bool
    tflm_errors: list[str]
    tflm_unsupported_ops: dict[str, str]
    arena_min: int | None
    arena_recommended: int | None
    num_samples: int
    litert_tflm_max_diff: float | None
    litert_tflm_max_abs_diff: float | None
    litert_tflm_argmax_agreement: float | None
    float_reference: str | None
    argmax_agreement: float | None
    float_max_abs_diff: float | None
    litert_ms: float | None
    tflm_ms: float | None
    litert_kernels_max_diff: float | None = None

    @property
    def ok(self) -> bool:
        """No flatbuffer problem and TFLM ran the model."""
        return not self.problems and self.tflm_ok

    @property
    def op_set(self) -> list[str]:
        """Distinct ops, sorted."""
        return sorted(self.op_counts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict of every field (plus ``ok``)."""
        d = dataclasses.asdict(self)
        d["ok"] = self.ok
        return d

    def to_markdown(self, title: str | None = None) -> str:
        """The figures as Markdown tables (the body of an export's REPORT.md)."""

        def fmt(v, unit=""):
            return reports.num(v, unit=unit)

        diff_unit = " int8 steps" if self.quantization == "int8" else ""
        lines = [f"# {title}", ""] if title else []
        lines += [
            "| figure | value |",
            "| --- | --- |",
            f"| quantization | {self.quantization} |",
            f"| flatbuffer (flash) | {fmt(self.flatbuffer_bytes, ' B')} |",
            f"| weights | {fmt(self.weight_bytes, ' B')} |",
            f"| MACs / inference | {fmt(self.macs)} |",
            f"| TFLM arena, measured minimum | {fmt(self.arena_min, ' B')} |",
            f"| TFLM arena, recommended | {fmt(self.arena_recommended, ' B')} |",
            f"| input | {_tensor_md(self.input)} |",
            f"| output | {_tensor_md(self.output)} |",
            f"| samples checked | {self.num_samples} |",
            f"| LiteRT vs TFLM, max output difference "
            f"| {fmt(self.litert_tflm_max_diff, diff_unit)} "
            f"({fmt(self.litert_tflm_max_abs_diff)} in logits) |",
            f"| LiteRT vs TFLM, same top-1 "
            f"| {reports.pct(self.litert_tflm_argmax_agreement, '%')} |",
            f"| LiteRT optimised vs reference kernels, max output difference "
            f"| {fmt(self.litert_kernels_max_diff, diff_unit)} |",
            f"| top-1 agreement with the float model | {reports.pct(self.argmax_agreement, '%')}"
            f"{'' if self.float_reference is None else f' ({self.float_reference})'} |",
            f"| max abs logit error vs float | {fmt(self.float_max_abs_diff)} |",
            f"| LiteRT latency (host, 1 thread) | {fmt(self.litert_ms, ' ms')} |",
            f"| TFLM latency (host, reference kernels) | {fmt(self.tflm_ms, ' ms')} |",
            f"| runs under TFLM | {'yes' if self.tflm_ok else 'NO'} |",
            "",
            "## Ops",
            "",
            "| op | count | TFLM resolver method |",
            "| --- | --- | --- |",
        ]
        for name, count in sorted(self.op_counts.items()):
            method = flatbuffer.TFLM_OP_RESOLVER_METHODS.get(name, "none (not in TFLM)")
            lines.append(f"| {name} | {count} | `{method}` |")
        if self.problems or self.tflm_unsupported_ops or self.tflm_errors:
            lines += ["", "## Problems", ""]
            lines += [f"- {p}" for p in self.problems]
            refused = self.tflm_unsupported_ops.items()
            lines += [f"- TFLM refuses {op}: {why}" for op, why in refused]
            if not self.tflm_unsupported_ops:
                lines += [f"- TFLM: {m}" for m in self.tflm_errors]
        lines += [
            "",
            "Arena: measured on the host with TFLM's reference kernels; the recommendation adds "
            "10 % and 16 bytes (alignment) and rounds up to 1 KiB, for optimised kernels' scratch "
            "buffers (see keras_hrf/export/check.py).",
            "",
        ]
        return "\n".join(lines)


def _tensor_md(t: dict[str, Any]) -> str:
    shape = "x".join(str(n) for n in t.get("shape", []))
    if t.get("dtype") == "int8":
        return f"{t['dtype']} [{shape}], scale {t['scale']:.6g}, zero point {t['zero_point']}"
    return f"{t.get('dtype')} [{shape}]"


def tensor_dict(t: flatbuffer.TensorInfo) -> dict[str, Any]:
    """``shape``, ``dtype`` (numpy name), ``scale``, ``zero_point`` of a tensor (JSON-able)."""
    scale, zero = flatbuffer.quantization_params(t)
    return {
        "name": t.name,
        "shape": list(t.shape),
        "dtype": str(flatbuffer.numpy_dtype(t)),
        "scale": scale,
        "zero_point": zero,
    }


#: Examples :func:`check` generates when it is given no samples.
DEFAULT_RANDOM_SAMPLES = 8


def check(
    tflite_bytes: bytes,
    samples: np.ndarray | None = None,
    keras_model=None,
    float_outputs: np.ndarray | None = None,
) -> CheckReport:
    """Run a converted model in LiteRT and TFLite Micro and collect its deployment figures.

    Args:
        tflite_bytes: The flatbuffer from :func:`keras_hrf.export.converter.convert`.
        samples: float32 ``[N, frames, n_mels]`` normalised features (the model's float input
            space); an int8 model gets them quantized with its input scale and zero point.
            ``None``: 8 seeded standard-normal windows (normalised features are roughly
            N(0, 1)), enough to compare the runtimes but not to judge accuracy.
        keras_model: The float Keras model the flatbuffer came from: gives the float reference
            outputs (``predict``) and the MACs.
        float_outputs: Float reference outputs ``[N, classes]`` instead of ``keras_model``'s
            (e.g. from the float32 flatbuffer).

    Returns:
        A :class:`CheckReport`. Problems are reported in it, not raised, so a failing model still
        gets its figures.
    """
    return run_check(tflite_bytes, samples, keras_model, float_outputs)[0]


def run_check(
    tflite_bytes: bytes,
    samples: np.ndarray | None = None,
    keras_model=None,
    float_outputs: np.ndarray | None = None,
) -> tuple[CheckReport, dict[str, np.ndarray | None]]:
    """:func:`check`, also returning the raw outputs.

    Returns:
        ``(report, outputs)`` with ``outputs`` keys ``"input"`` (what the model was fed),
        ``"litert"``, ``"tflm"`` (None if TFLM failed) and ``"float"`` (None without a
        reference), so that callers need not run the samples again.
    """
    info = flatbuffer.parse(tflite_bytes)
    inp, out = info.input, info.output
    quantization = "int8" if inp.dtype == "INT8" else "float32"
    if samples is None:
        rng = np.random.default_rng(0)
        samples = rng.standard_normal((DEFAULT_RANDOM_SAMPLES,) + tuple(inp.shape[1:]))
    x = flatbuffer.as_input_batch(np.asarray(samples, dtype=np.float32), inp.shape)
    in_scale, in_zero = flatbuffer.quantization_params(inp)
    out_scale, out_zero = flatbuffer.quantization_params(out)
    model_in = quant.quantize(x, in_scale, in_zero) if quantization == "int8" else x

    litert_out, litert_times = run_litert(tflite_bytes, model_in)
    litert_ref_out, _ = run_litert(tflite_bytes, model_in, reference_kernels=True)
    d = np.abs(litert_out.astype(np.float64) - litert_ref_out.astype(np.float64)).max()
    kernels_diff = int(d) if quantization == "int8" else float(d)

    tflm_errors: list[str] = []
    unsupported: dict[str, str] = {}
    tflm_out, tflm_times, arena_min = None, [], None
    try:
        arena_min = min_tflm_arena(tflite_bytes)
        tflm_out, tflm_times = run_tflm(tflite_bytes, model_in, arena_min)
    except TflmError as e:
        tflm_errors = [str(e)] + [ln for ln in e.messages.splitlines() if ln.strip()]
        unsupported = unsupported_ops(e.messages)
        arena_min = None

    diff = abs_diff = runtime_agreement = None
    if tflm_out is not None:
        d = np.abs(litert_out.astype(np.float64) - tflm_out.astype(np.float64)).max()
        diff = int(d) if quantization == "int8" else float(d)
        abs_diff = float(d * out_scale) if quantization == "int8" else float(d)
        runtime_agreement = float(np.mean(litert_out.argmax(-1) == tflm_out.argmax(-1)))

    reference, ref_name, macs = None, None, None
    if keras_model is not None:
        from keras_hrf import models, reparam

        keras_shape = (len(x),) + tuple(int(n) for n in keras_model.inputs[0].shape[1:])
        reference = np.asarray(
            keras_model.predict(x.reshape(keras_shape), verbose=0, batch_size=32)
        )
        ref_name = "keras"
        deployed = reparam.merge(keras_model) if reparam.has_hrf(keras_model) else keras_model
        macs = models.count_macs(deployed)
    if float_outputs is not None:
        reference, ref_name = np.asarray(float_outputs, dtype=np.float32), "float_outputs"
    agreement = max_abs = None
    if reference is not None:
        if reference.shape != litert_out.shape:
            raise ValueError(
                f"float outputs have shape {reference.shape}, the model gives {litert_out.shape}"
            )
        deq = (
            quant.dequantize(litert_out, out_scale, out_zero)
            if quantization == "int8"
            else (litert_out)
        )
        agreement = float(np.mean(deq.argmax(-1) == reference.argmax(-1)))
        max_abs = float(np.abs(deq - reference).max())

    arena_rec = recommended_arena(arena_min) if arena_min is not None else None
    report = CheckReport(
        quantization=quantization,
        ops=info.op_names,
        op_counts=info.op_counts,
        flatbuffer_bytes=info.size_bytes,
        weight_bytes=info.weight_bytes,
        macs=macs,
        input=tensor_dict(inp),
        output=tensor_dict(out),
        problems=flatbuffer.problems(info, quantization),
        tflm_ok=tflm_out is not None,
        tflm_errors=tflm_errors,
        tflm_unsupported_ops=unsupported,
        arena_min=arena_min,
        arena_recommended=arena_rec,
        num_samples=len(x),
        litert_tflm_max_diff=diff,
        litert_tflm_max_abs_diff=abs_diff,
        litert_tflm_argmax_agreement=runtime_agreement,
        float_reference=ref_name,
        argmax_agreement=agreement,
        float_max_abs_diff=max_abs,
        litert_ms=1e3 * statistics.median(litert_times) if litert_times else None,
        tflm_ms=1e3 * statistics.median(tflm_times) if tflm_times else None,
        litert_kernels_max_diff=kernels_diff,
    )
    outputs = {"input": model_in, "litert": litert_out, "tflm": tflm_out, "float": reference}
    return report, outputs
