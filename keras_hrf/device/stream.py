"""Emotion timeline of a long recording: a sliding window over the device front-end and TFLM.

The Python twin of ``tflite/micro/audio_main.cc``, on the same computation as the device:

1. log-Mel rows frame by frame with CMSIS-DSP (:class:`data_prep.device_frontend.DeviceFrontend`,
   the float path by default) and each row quantized to int8 with the folded normaliser, as the
   firmware fills its feature ring;
2. a window of the model's ``frames`` rows every ``hop`` seconds - window ``j`` covers rows
   ``[j * hop_rows, j * hop_rows + frames)`` - run through the TFLite Micro interpreter
   (``tflite_micro.runtime``, the reference kernels that a microcontroller runs);
3. the softmax posteriors smoothed over about ``smooth`` windows: a centred running median
   (``"median"``, the default: no lag, for offline timelines) or the firmware's causal
   exponential moving average with ``alpha = 2 / (smooth + 1)`` (``"ema"``);
4. consecutive windows with the same arg max merged into :class:`Segment` s.

Each window stands for the time around its centre: a boundary between two segments is put
half-way between the centres of the last window of one and the first of the next; the first
segment starts at 0 and the last ends at the end of the recording. Samples after the last full
window are not classified (as on the device); a recording shorter than one window gives one
window, padded with the log floor like the training features.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from data_prep.device_frontend import DeviceFrontend
from keras_hrf.device.meta import FILES, ModelMeta, load_meta
from keras_hrf.device.runtimes import capture_output, tflm_interpreter

#: Accepted ``smoothing`` values.
SMOOTHING = ("median", "ema")


@dataclasses.dataclass(frozen=True)
class Segment:
    """One stretch of the timeline.

    Attributes:
        start: Start, in seconds from the beginning of the recording.
        end: End, in seconds.
        label: The class name.
        confidence: Mean smoothed posterior of ``label`` over the segment's windows.
        windows: How many windows the segment holds.
    """

    start: float
    end: float
    label: str
    confidence: float
    windows: int


@dataclasses.dataclass(frozen=True)
class StreamResult:
    """A recording's timeline and what it was computed from.

    Attributes:
        segments: The timeline.
        labels: Class names, index = posterior column.
        centres: Centre of each window, in seconds ``[W]``.
        posteriors: Softmax of each window's dequantized int8 output ``[W, classes]``.
        smoothed: ``posteriors`` after smoothing (rows sum to 1) ``[W, classes]``.
        duration: Length of the recording, in seconds.
        window: Length of one window, in seconds.
        hop: Step between windows, in seconds (a whole number of frames).
        smooth: Windows of smoothing.
        smoothing: ``"median"`` or ``"ema"``.
    """

    segments: list[Segment]
    labels: tuple[str, ...]
    centres: np.ndarray
    posteriors: np.ndarray
    smoothed: np.ndarray
    duration: float
    window: float
    hop: float
    smooth: int
    smoothing: str

    def to_markdown(self) -> str:
        """The timeline as a Markdown table."""
        from keras_hrf.reports import markdown_table

        rows = [
            [f"{s.start:.2f}", f"{s.end:.2f}", s.label, f"{s.confidence:.2f}", s.windows]
            for s in self.segments
        ]
        return markdown_table(["start (s)", "end (s)", "label", "confidence", "windows"], rows)


def smooth_posteriors(posteriors: np.ndarray, smooth: int, smoothing: str = "median") -> np.ndarray:
    """Smooth per-window posteriors ``[W, classes]`` over about ``smooth`` windows.

    ``"median"``: per class, the median of windows ``[j - smooth // 2, j + (smooth - 1) // 2]``
    (clipped at the ends). ``"ema"``: ``s_0 = p_0``, ``s_j = alpha p_j + (1 - alpha) s_{j-1}``
    with ``alpha = 2 / (smooth + 1)``, as ``audio_main.cc`` does. ``smooth = 1`` changes nothing.
    Rows are renormalised to sum to 1 (a median of probabilities need not).

    Raises:
        ValueError: ``smooth < 1`` or an unknown ``smoothing``.
    """
    p = np.asarray(posteriors, dtype=np.float64)
    if not isinstance(smooth, int | np.integer) or smooth < 1:
        raise ValueError(f"smooth must be a whole number of windows >= 1, got {smooth!r}")
    if smoothing not in SMOOTHING:
        raise ValueError(f"smoothing must be one of {SMOOTHING}, got {smoothing!r}")
    if smooth == 1 or len(p) == 0:
        out = p.copy()
    elif smoothing == "median":
        before, after = smooth // 2, (smooth - 1) // 2
        out = np.stack(
            [np.median(p[max(0, j - before) : j + after + 1], axis=0) for j in range(len(p))]
        )
    else:
        alpha = 2.0 / (smooth + 1.0)
        out = np.empty_like(p)
        out[0] = p[0]
        for j in range(1, len(p)):
            out[j] = alpha * p[j] + (1.0 - alpha) * out[j - 1]
    total = out.sum(axis=1, keepdims=True)
    return (out / np.where(total > 0, total, 1.0)).astype(np.float32)


def segments_from(
    smoothed: np.ndarray, centres: np.ndarray, labels, duration: float
) -> list[Segment]:
    """Merge consecutive windows with the same arg max into segments (see the module docstring)."""
    smoothed = np.asarray(smoothed)
    if len(smoothed) == 0:
        return []
    best = smoothed.argmax(axis=1)
    segments = []
    first = 0
    for j in range(1, len(best) + 1):
        if j < len(best) and best[j] == best[first]:
            continue
        start = 0.0 if first == 0 else 0.5 * (centres[first - 1] + centres[first])
        end = duration if j == len(best) else 0.5 * (centres[j - 1] + centres[j])
        k = int(best[first])
        segments.append(
            Segment(
                start=float(start),
                end=float(end),
                label=str(labels[k]),
                confidence=float(smoothed[first:j, k].mean()),
                windows=j - first,
            )
        )
        first = j
    return segments


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def classify_stream(
    signal: np.ndarray,
    model: str | os.PathLike | ModelMeta,
    *,
    hop: float = 0.5,
    smooth: int = 3,
    smoothing: str = "median",
    precision: str = "f32",
) -> StreamResult:
    """The emotion timeline of one recording.

    Args:
        signal: Float audio in [-1, 1] at the model's sample rate
            (``feature_params.sample_rate`` of ``model_meta.json``).
        model: An export folder (``model_int8.tflite`` + ``model_meta.json``) or its loaded
            :class:`~keras_hrf.export.artifacts.ModelMeta`.
        hop: Seconds between windows, rounded to whole frames (at least one).
        smooth: Windows of posterior smoothing (1 = none).
        smoothing: ``"median"`` (centred) or ``"ema"`` (causal, as the firmware).
        precision: Device front-end: ``"f32"`` (``arm_mfcc_f32``) or ``"q15"``.

    Returns:
        A :class:`StreamResult`.

    Raises:
        ValueError: bad arguments, an empty or non-finite signal, or an unusable export.
        FileNotFoundError: the export has no int8 model.
    """
    meta = model if isinstance(model, ModelMeta) else load_meta(Path(model))
    if not (isinstance(hop, int | float) and math.isfinite(hop) and hop > 0):
        raise ValueError(f"hop must be a positive number of seconds, got {hop!r}")
    smooth_posteriors(np.zeros((0, 1)), smooth, smoothing)  # validates smooth and smoothing
    flat_path = meta.path / FILES["int8"]
    if not flat_path.is_file():
        raise FileNotFoundError(f"{flat_path} does not exist (is {meta.path} an export folder?)")
    frontend = DeviceFrontend.from_meta(meta, precision)
    params = frontend.params
    signal = np.asarray(signal, dtype=np.float32)
    duration = signal.size / params.sample_rate

    # Quantizing row by row equals quantizing each window (the folded quantization works per
    # value), and is what the firmware's feature ring holds.
    rows = frontend.quantization.quantize(frontend.log_mel(signal))
    if len(rows) < params.frames:
        floor = frontend.quantization.quantize(np.full((1, params.n_mels), params.fill_value))
        rows = np.concatenate([rows, np.repeat(floor, params.frames - len(rows), axis=0)])
    hop_rows = max(1, round(hop * params.sample_rate / params.hop_length))
    n_windows = 1 + (len(rows) - params.frames) // hop_rows

    interpreter = tflm_interpreter(flat_path.read_bytes(), meta.host_arena_bytes)  # 64-bit
    outputs = []
    with capture_output():  # TFLM prints through MicroPrintf; keep the CLI's output clean
        for j in range(n_windows):
            window = rows[j * hop_rows : j * hop_rows + params.frames]
            interpreter.set_input(np.ascontiguousarray(window.reshape(meta.input_shape)), 0)
            interpreter.invoke()
            outputs.append(np.array(interpreter.get_output(0)).reshape(-1))
    posteriors = _softmax(meta.logits(np.stack(outputs)).astype(np.float64)).astype(np.float32)

    # Window j spans samples [j * hop_rows * hop_length, ... + (frames - 1) * hop_length + n_fft).
    span = (params.frames - 1) * params.hop_length + params.n_fft
    starts = np.arange(n_windows) * hop_rows * params.hop_length
    centres = (starts + span / 2) / params.sample_rate
    smoothed = smooth_posteriors(posteriors, smooth, smoothing)
    return StreamResult(
        segments=segments_from(smoothed, centres, meta.labels, duration),
        labels=meta.labels,
        centres=centres,
        posteriors=posteriors,
        smoothed=smoothed,
        duration=duration,
        window=span / params.sample_rate,
        hop=hop_rows * params.hop_length / params.sample_rate,
        smooth=int(smooth),
        smoothing=smoothing,
    )


def stream_file(path: str | os.PathLike, model: str | os.PathLike, **kwargs) -> StreamResult:
    """:func:`classify_stream` of an audio file (any format and rate; resampled to the model's).

    Raises:
        data_prep.errors.AudioError: the file cannot be used.
    """
    from data_prep.audio import load_audio

    meta = load_meta(Path(model))
    params = meta.feature_params
    signal = load_audio(path, params.sample_rate, min_duration=params.min_duration)
    return classify_stream(signal, meta, **kwargs)


__all__ = [
    "SMOOTHING",
    "Segment",
    "StreamResult",
    "classify_stream",
    "segments_from",
    "smooth_posteriors",
    "stream_file",
]
