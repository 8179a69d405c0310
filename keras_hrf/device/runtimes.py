"""The two runtimes a deployed model meets, as the reference: LiteRT (Android) and the TFLite
Micro host interpreter (the reference kernels a microcontroller runs).

Neither needs TensorFlow or Keras (``ai_edge_litert`` and ``tflite_micro`` are standalone), so
reading and running an export is possible from a device-side tool. TFLM reports its errors
(allocation failures, unknown ops) on the C-level stdout/stderr, which :func:`capture_output`
collects.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time

import numpy as np


@contextlib.contextmanager
def capture_output():
    """Capture what C/C++ code writes to file descriptors 1 and 2 (TFLM's ``MicroPrintf``).

    Yields a list that receives the captured text (one string) when the block exits. A temporary
    file rather than a pipe, so a chatty library cannot fill a pipe buffer and block.
    """
    result: list[str] = []
    with tempfile.TemporaryFile() as sink:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield result
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            result.append(sink.read().decode("utf-8", "replace").replace("\r", ""))


def litert_interpreter(tflite_bytes: bytes, reference_kernels: bool = False):
    """A LiteRT interpreter as the reference runtime: 1 thread, no default delegates.

    Args:
        tflite_bytes: The flatbuffer.
        reference_kernels: Use LiteRT's reference kernels instead of its optimised ones (what
            phones run): a yardstick for how much two correct int8 kernel sets disagree.
    """
    from ai_edge_litert import interpreter as litert

    resolver = (
        litert.OpResolverType.BUILTIN_REF
        if reference_kernels
        else litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    )
    it = litert.Interpreter(
        model_content=bytes(tflite_bytes), num_threads=1, experimental_op_resolver_type=resolver
    )
    it.allocate_tensors()
    return it


def run_litert(
    tflite_bytes: bytes, inputs: np.ndarray, reference_kernels: bool = False
) -> tuple[np.ndarray, list[float]]:
    """Run every example of ``inputs`` (already in the model's input dtype) through LiteRT.

    Returns:
        ``(outputs [N, ...], per-invocation seconds)``.
    """
    it = litert_interpreter(tflite_bytes, reference_kernels)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    outputs, times = [], []
    for x in inputs:
        it.set_tensor(inp["index"], x[None].astype(inp["dtype"], copy=False))
        t = time.perf_counter()
        it.invoke()
        times.append(time.perf_counter() - t)
        outputs.append(it.get_tensor(out["index"])[0].copy())
    return np.stack(outputs), times


class TflmError(RuntimeError):
    """TFLM could not create an interpreter; ``messages`` is what TFLM printed."""

    def __init__(self, message: str, messages: str):
        super().__init__(message)
        self.messages = messages


def tflm_interpreter(tflite_bytes: bytes, arena_size: int):
    """A TFLM host interpreter, with TFLM's own error messages captured on failure.

    Raises:
        TflmError: the interpreter could not be created (unknown op, arena too small, a kernel
            that rejects its tensor types in Prepare, ...), with TFLM's messages.
    """
    from tflite_micro import runtime

    try:
        with capture_output() as captured:
            it = runtime.Interpreter.from_bytes(bytes(tflite_bytes), arena_size=int(arena_size))
    except RuntimeError as e:
        raise TflmError(str(e), captured[0] if captured else "") from e
    return it


def run_tflm(
    tflite_bytes: bytes, inputs: np.ndarray, arena_size: int
) -> tuple[np.ndarray, list[float]]:
    """Run every example of ``inputs`` through the TFLM host interpreter.

    Returns:
        ``(outputs [N, ...], per-invocation seconds)``.
    """
    it = tflm_interpreter(tflite_bytes, arena_size)
    outputs, times = [], []
    try:
        with capture_output() as captured:
            for x in inputs:
                it.set_input(np.ascontiguousarray(x[None]), 0)
                t = time.perf_counter()
                it.invoke()
                times.append(time.perf_counter() - t)
                outputs.append(np.array(it.get_output(0))[0])
    except RuntimeError as e:
        raise TflmError(f"TFLM invoke failed: {e}", captured[0] if captured else "") from e
    return np.stack(outputs), times
