"""The device front-end in Python on the real DSP library: log-Mel frame by frame with CMSIS-DSP.

A microcontroller computes the model's features with CMSIS-DSP's MFCC function, one frame per
hop, and this module does exactly that through the ``cmsisdsp`` Python package (the same C
sources compiled for the host). It is the tested twin of ``tflite/micro/audio_main.cc``: the
firmware uses the tables that :func:`mel_tables` builds (written to ``frontend_tables.c`` by
``keras_hrf.export.export``), so what is measured here is what the device computes, up to the
target's float rounding.

How ``arm_mfcc_f32`` becomes the training features (:mod:`data_prep.features`):

- **Window**: :func:`data_prep.features.window` (periodic Hann centred in the ``n_fft`` frame),
  cast to float32.
- **Mel filters**: :func:`data_prep.features.mel_filters` in CMSIS-DSP's sparse form: per band
  the first non-zero FFT bin (``filter_pos``), the number of bins up to the last non-zero one
  (``filter_len``), and those coefficients packed one band after the other.
- **No DCT**: an identity matrix in place of the DCT matrix, so the "MFCC" is the log-Mel itself.
- **The log offset.** ``arm_mfcc_f32`` adds a hard-coded ``1e-6`` before the natural log:
  the default ``log_offset``, so the result is the training features' ``log(mel + 1e-6)``
  directly (measured: at most 4e-5 apart on synthetic audio and 1.9e-4 on a RAVDESS test fold
  of 240 files - float32 FFT rounding; the int8 inputs differ in 1e-5 of the values, by one
  step; tests and ``benchmarks/results/device_frontend.json``). For another ``log_offset`` the
  frame is multiplied by the **input gain** ``g = 1e-6 / log_offset`` first and ``log(g)``
  subtracted afterwards:
  ``log(g mel + 1e-6) - log(g) = log(mel + log_offset)``.
- **The frame normalisation, and the guard sample.** ``arm_mfcc_f32`` divides the frame by its
  largest absolute sample ``m`` before the FFT (for the float32 FFT's dynamic range). The
  CMSIS-DSP in the ``cmsisdsp`` 1.10.x package (what is tested here) multiplies the magnitude
  spectrum back by ``m``, so the result does not depend on ``m``; the first MFCC sources
  (CMSIS-DSP 1.10.0, 2021) did not, and returned ``log(mel / m + 1e-6)`` - every value shifted
  by ``-log(m)``, the quiet bands of loud frames changed - and NaN for a silent frame (a
  division by ``m = 0``). The front-end makes every version give the training features: frame
  position ``guard_index`` is multiplied by a zero window coefficient (the window is
  zero-padded, and a periodic Hann starts at 0), so it can hold a **guard value** ``g`` - the
  largest possible ``|sample|`` after the input gain - without changing the spectrum; then
  ``m = g`` exactly for every frame of audio in [-1, 1], the scaling by ``1 / g`` and back is
  exact for the default ``g = 1``, and silence gives the log floor, not NaN. (Audio beyond full
  scale raises the guard to the frame's peak; with the tested library that changes nothing.)

The fixed-point path (``precision="q15"``, for MCUs without an FPU) runs ``arm_mfcc_q15``:

- **Input scaling**: samples go in as Q15, ``round(x * 32768)`` saturated to int16 - exactly the
  int16 PCM that an I2S/PDM microphone driver delivers, so a device passes its samples unchanged.
  ``arm_mfcc_q15`` normalises the frame to full scale for the FFT and multiplies the mel energies
  back by ``m / 32768`` in Q31 *before* the log, which truncates the quiet frames' energies to a
  few bits; so the frame is first shifted left by its block exponent (:func:`block_exponent`,
  exact: the peak goes into [16384, 32767]) and ``exponent * ln 2`` is subtracted afterwards.
  No guard sample and no input gain: the Q15 path normalises and scales back by design, and its
  log offset is CMSIS-DSP's own whatever ``log_offset`` is (see below).
- **Output conversion**: the result is a natural log in Q8.7 (``ln = out / 128``), computed from
  the Q15 RFFT's scaled spectrum and corrected inside CMSIS-DSP by ``(log2(n_fft) + 2 + 10) ln 2``.
  The Q15 filter coefficients are small (Slaney-normalised triangles peak at 0.002-0.02, i.e.
  65-700 in Q15), so each band is scaled by ``2^s_k`` (``s_k`` = :attr:`MelTables.q15_shift`,
  chosen to bring the band's peak into [0.5, 1)) before rounding, and the conversion removes it:
  ``log_mel_k = out_k / 128 - (s_k + exponent) ln 2``. The scaling also lowers the floor that
  CMSIS-DSP's fixed offset ``0x219`` (about 5e-4 of a full-scale band, added before the log)
  puts under quiet bands by ``s_k ln 2``. Outputs at or below the Q15 path's own floor (its
  output for digital silence, ``q15_floor_raw``) carry no information and are mapped to the
  training features' floor ``log(log_offset)``.
- **Error**: measured, not assumed (tests and ``benchmarks/device_frontend.py``): the Q8.7 step
  (0.008), the Q15 FFT of quiet frames and the higher floor make it much coarser than the float
  path. On a RAVDESS test fold (240 files, much of them near-silent pauses): median absolute
  error 0.05, 99th percentile 1.1, max 7.7 (a quiet band mapped to the floor); in bands above -8
  (speech) a median of ~0.02. Two thirds of the int8 input values move, by 2.2 steps on average;
  the int8 model's top-1 agrees with the training-feature input on 85 % of the utterances, and
  its UA stayed within 2 points (``benchmarks/results/device_frontend.json``).

Then the model's input: the normaliser and the input quantization of ``model_meta.json`` folded
into one multiply-add per value (:func:`fold_input_quantization`), what the firmware computes.

Public API: :class:`MelTables` / :func:`mel_tables` (the firmware's tables),
:class:`DeviceFrontend` (frames -> log-Mel -> int8 input), :func:`fold_input_quantization`
(rounding: :func:`data_prep.int8.round_half_away`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Any

import numpy as np

from data_prep.features import FeatureParams, fix_length, mel_filters, window
from data_prep.int8 import INT8_MAX, INT8_MIN, round_half_away

#: The offset that CMSIS-DSP's ``arm_mfcc_f32`` adds before the log (``arm_offset_f32(...,
#: 1.0e-6f, ...)``, hard-coded).
CMSIS_LOG_OFFSET = 1e-6

#: Accepted ``precision`` values: ``arm_mfcc_f32`` and ``arm_mfcc_q15``.
PRECISIONS = ("f32", "q15")

#: Scale of the Q8.7 output of ``arm_mfcc_q15`` (``ln = out / Q87_SCALE``).
Q87_SCALE = 128.0

_Q15_ONE = 32768.0


def _to_q15(x: np.ndarray) -> np.ndarray:
    """float -> Q15 (round to nearest, saturate), as ``arm_float_to_q15`` does."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64) * _Q15_ONE), -32768, 32767).astype(
        np.int16
    )


@dataclasses.dataclass(frozen=True, eq=False)
class MelTables:
    """What ``arm_mfcc_init_f32`` / ``arm_mfcc_init_q15`` take, for one :class:`FeatureParams`.

    The firmware's ``frontend_tables.c`` holds exactly these arrays (same values, same order).

    Attributes:
        params: The feature parameters they implement.
        window: float32 ``[n_fft]``: :func:`data_prep.features.window` cast to float32.
        filter_pos: uint32 ``[n_mels]``: first FFT bin of each band.
        filter_len: uint32 ``[n_mels]``: bins per band, from its first to its last non-zero
            coefficient (inner zeros, if any, are kept as coefficients).
        filter_coefs: float32 ``[sum(filter_len)]``: the bands' coefficients, packed.
        dct: float32 ``[n_mels * n_mels]``: the identity, row-major, in place of the DCT.
        input_gain: ``1e-6 / log_offset`` (1 by default): the frame is multiplied by it and
            ``log(input_gain)`` subtracted from the result (see the module docstring).
        guard_index: A frame position whose window coefficient is 0; the front-end writes
            ``input_gain`` (the largest possible ``|sample|``) there before ``arm_mfcc_f32``.
        window_q15: int16 ``[n_fft]``: the window in Q15.
        filter_coefs_q15: int16: ``filter_coefs`` of band k times ``2^q15_shift[k]``, in Q15.
        q15_shift: int8 ``[n_mels]``: per-band power-of-two scaling of the Q15 coefficients.
        dct_q15: int16 ``[n_mels * n_mels]``: the identity in Q15 (``0x7FFF`` on the diagonal,
            1.0 is not representable; the 3e-5 relative loss is below the Q8.7 step).
    """

    params: FeatureParams
    window: np.ndarray
    filter_pos: np.ndarray
    filter_len: np.ndarray
    filter_coefs: np.ndarray
    dct: np.ndarray
    input_gain: float
    guard_index: int
    window_q15: np.ndarray
    filter_coefs_q15: np.ndarray
    q15_shift: np.ndarray
    dct_q15: np.ndarray

    def dense_filters(self) -> np.ndarray:
        """The sparse float32 filters expanded back to ``[n_mels, n_fft // 2 + 1]``."""
        out = np.zeros((self.params.n_mels, self.params.n_fft // 2 + 1), dtype=np.float32)
        offset = 0
        for k, (pos, length) in enumerate(zip(self.filter_pos, self.filter_len, strict=True)):
            out[k, pos : pos + length] = self.filter_coefs[offset : offset + length]
            offset += length
        return out


def _check_params(params: FeatureParams) -> None:
    if not isinstance(params, FeatureParams):
        raise ValueError(f"expected FeatureParams, got {type(params).__name__}")
    if params.power != 1.0:
        raise ValueError(
            f"the device front-end needs FeatureParams.power == 1.0: arm_mfcc computes the "
            f"magnitude spectrum, got power={params.power}"
        )
    if params.center:
        raise ValueError(
            "the device front-end needs FeatureParams.center == False: a stream has no future "
            "samples to centre-pad with"
        )


@functools.lru_cache(maxsize=8)
def mel_tables(params: FeatureParams) -> MelTables:
    """The CMSIS-DSP MFCC tables that compute ``params``' log-Mel (see the module docstring).

    Raises:
        ValueError: parameters the device front-end cannot reproduce (``power`` other than 1, or
            ``center=True``).
    """
    _check_params(params)
    win64 = window(params)
    zeros = np.flatnonzero(win64 == 0.0)
    if zeros.size == 0:  # cannot happen: a periodic Hann starts at 0; kept for safety
        raise ValueError("the window has no zero coefficient to hold the guard sample")
    fb = mel_filters(params)
    pos, lens, coefs, coefs_q15, shifts = [], [], [], [], []
    for row in fb:
        nz = np.flatnonzero(row)
        if nz.size == 0:
            # An empty band (too many mels for the FFT): one zero coefficient, so that every
            # CMSIS-DSP build (some assume length >= 1) gives 0 -> log floor, as librosa does.
            first, last = 0, 0
        else:
            first, last = int(nz[0]), int(nz[-1])
        band = np.asarray(row[first : last + 1], dtype=np.float32)
        peak = float(np.max(np.abs(band)))
        # Largest power of two that keeps the band's peak below 1 - 2^-15 in Q15.
        shift = 0 if peak == 0.0 else int(math.floor(math.log2((32767 / 32768) / peak)))
        shift = max(-15, min(15, shift))
        pos.append(first)
        lens.append(last - first + 1)
        coefs.append(band)
        coefs_q15.append(_to_q15(band.astype(np.float64) * 2.0**shift))
        shifts.append(shift)
    n_mels = params.n_mels
    dct_q15 = np.zeros((n_mels, n_mels), dtype=np.int16)
    np.fill_diagonal(dct_q15, 32767)
    arrays = {
        "window": win64.astype(np.float32),
        "filter_pos": np.asarray(pos, dtype=np.uint32),
        "filter_len": np.asarray(lens, dtype=np.uint32),
        "filter_coefs": np.concatenate(coefs).astype(np.float32),
        "dct": np.eye(n_mels, dtype=np.float32).reshape(-1),
        "window_q15": _to_q15(win64),
        "filter_coefs_q15": np.concatenate(coefs_q15),
        "q15_shift": np.asarray(shifts, dtype=np.int8),
        "dct_q15": dct_q15.reshape(-1),
    }
    for value in arrays.values():
        value.setflags(write=False)
    return MelTables(
        params=params,
        input_gain=float(CMSIS_LOG_OFFSET / params.log_offset),
        guard_index=int(zeros[0]),
        **arrays,
    )


def block_exponent(frame_q15: np.ndarray) -> int:
    """Left shift that brings a Q15 frame's peak into [16384, 32767] (0 for digital silence).

    ``arm_mfcc_q15`` normalises the frame to full scale for the FFT but multiplies the mel
    energies back by ``peak / 32768`` in Q31 *before* the log, truncating them: a frame peaking at
    a few LSB loses almost every bit (measured on 12 RAVDESS files, whose pauses peak below 33
    LSB: median error 0.76 without this, 0.12 with it). Shifting the int16 samples left first is
    exact (no saturation by construction) and leaves only a factor 1-2 for that rescale; the
    front-end subtracts ``exponent * ln 2`` afterwards. On a device: ``arm_absmax_q15``, then
    ``__CLZ``.
    """
    peak = int(np.max(np.abs(np.asarray(frame_q15, dtype=np.int32))))
    if peak == 0:
        return 0
    return max(0, 14 - (peak.bit_length() - 1))


def fold_input_quantization(
    mean: np.ndarray, std: np.ndarray, scale: float, zero_point: int
) -> tuple[np.ndarray, np.ndarray]:
    """Normaliser and input quantization folded into ``q = round(x * a_k + b_k)`` per mel band.

    ``(x - mean_k) / std_k / scale + zp = x * a_k + b_k`` with ``a_k = 1 / (std_k * scale)`` and
    ``b_k = zp - mean_k * a_k``. Exact in real arithmetic; in float32 the two forms round
    differently, so a value that lands within ~1e-6 of a rounding boundary can come out one step
    apart from the exporter's two-step path (``keras_hrf.device.meta.features_to_input``).
    How often is measured (tests: 0 to a few per million values).

    Returns:
        ``(a, b)``, float32 ``[n_mels]`` each (computed in float64, then rounded once).
    """
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    std = np.asarray(std, dtype=np.float64).reshape(-1)
    if mean.shape != std.shape or not np.all(std > 0) or not scale > 0:
        raise ValueError("fold_input_quantization needs equal-length mean/std, std > 0, scale > 0")
    a = 1.0 / (std * float(scale))
    b = float(zero_point) - mean * a
    return a.astype(np.float32), b.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class InputQuantization:
    """The model input's normaliser and int8 quantization, as the device applies them.

    Attributes:
        mean: Normaliser mean, float32 ``[n_mels]``.
        std: Normaliser std, float32 ``[n_mels]``.
        scale: Input scale of the int8 model.
        zero_point: Input zero point.
        a: Folded multiplier (:func:`fold_input_quantization`).
        b: Folded offset.
    """

    mean: np.ndarray
    std: np.ndarray
    scale: float
    zero_point: int
    a: np.ndarray
    b: np.ndarray

    @classmethod
    def create(cls, normalizer, scale: float, zero_point: int) -> InputQuantization:
        """From a :class:`data_prep.features.Normalizer` and the input's scale and zero point."""
        a, b = fold_input_quantization(normalizer.mean, normalizer.std, scale, zero_point)
        return cls(
            mean=np.asarray(normalizer.mean, dtype=np.float32),
            std=np.asarray(normalizer.std, dtype=np.float32),
            scale=float(scale),
            zero_point=int(zero_point),
            a=a,
            b=b,
        )

    def quantize(self, features: np.ndarray) -> np.ndarray:
        """log-Mel ``[..., n_mels]`` -> int8 with one float32 multiply-add per value, like the
        firmware: ``clamp(round_half_away(x * a_k + b_k), -128, 127)``."""
        x = np.asarray(features, dtype=np.float32)
        if x.shape[-1] != self.a.size:
            raise ValueError(f"expected {self.a.size} mel bands, got shape {x.shape}")
        q = round_half_away(np.asarray(x * self.a + self.b, dtype=np.float32))
        return np.clip(q, INT8_MIN, INT8_MAX).astype(np.int8)


class DeviceFrontend:
    """log-Mel features computed frame by frame with CMSIS-DSP, as the firmware computes them.

    Example::

        fe = DeviceFrontend.from_meta(load_meta("exports/ser"))  # keras_hrf.device.load_meta
        x = fe.to_input(fe.features(signal))                   # int8 [1, frames, n_mels]

    Args:
        params: The feature parameters (``power`` 1, ``center`` False).
        precision: ``"f32"`` (``arm_mfcc_f32``) or ``"q15"`` (``arm_mfcc_q15``).
        quantization: The model input's :class:`InputQuantization`, for :meth:`to_input`.
    """

    def __init__(
        self,
        params: FeatureParams = FeatureParams(),  # noqa: B008
        precision: str = "f32",
        quantization: InputQuantization | None = None,
    ) -> None:
        import cmsisdsp

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.params = params
        self.precision = precision
        self.quantization = quantization
        self.tables = t = mel_tables(params)
        self._dsp = cmsisdsp
        n_fft, n_mels = params.n_fft, params.n_mels
        pos, lens = np.array(t.filter_pos), np.array(t.filter_len)
        if precision == "f32":
            self._mfcc = cmsisdsp.arm_mfcc_instance_f32()
            status = cmsisdsp.arm_mfcc_init_f32(
                self._mfcc, n_fft, n_mels, n_mels, t.dct, pos, lens, t.filter_coefs, t.window
            )
            # 2 * n_fft floats: enough for the RFFT build (n_fft + 2) and the CFFT one (2 n_fft).
            self._tmp = np.zeros(2 * n_fft, dtype=np.float32)
        else:
            self._mfcc = cmsisdsp.arm_mfcc_instance_q15()
            status = cmsisdsp.arm_mfcc_init_q15(
                self._mfcc,
                n_fft,
                n_mels,
                n_mels,
                t.dct_q15,
                pos,
                lens,
                t.filter_coefs_q15,
                t.window_q15,
            )
            self._tmp = np.zeros(2 * n_fft, dtype=np.int32)
            self._shift_ln = (t.q15_shift.astype(np.float64) * math.log(2.0)).astype(np.float32)
            # Digital silence gives the Q15 path's lowest output; anything at or below it is
            # "below resolution" and becomes the training features' floor.
            self.q15_floor_raw = self._mfcc_q15(np.zeros(n_fft, dtype=np.int16))
        if status != 0:
            raise ValueError(f"arm_mfcc_init_{precision} failed with status {status}")

    @classmethod
    def from_meta(cls, meta: Any, precision: str = "f32") -> DeviceFrontend:
        """A front-end for an exported model.

        Args:
            meta: The export's metadata, :func:`keras_hrf.device.load_meta` of its folder (any
                object with ``feature_params``, ``normalizer``, ``input_dtype``,
                ``input_scale`` and ``input_zero_point``: data_prep does not import keras_hrf).
            precision: ``"f32"`` or ``"q15"``.
        """
        if isinstance(meta, str | os.PathLike):
            raise TypeError(
                "DeviceFrontend.from_meta takes the loaded metadata: "
                "DeviceFrontend.from_meta(keras_hrf.device.load_meta(folder))"
            )
        if meta.input_dtype != "int8":
            raise ValueError(f"the device front-end feeds int8 models, got {meta.input_dtype}")
        quant = InputQuantization.create(meta.normalizer, meta.input_scale, meta.input_zero_point)
        return cls(meta.feature_params, precision, quant)

    # ------------------------------------------------------------------------------ one frame

    def _mfcc_q15(self, frame_q15: np.ndarray) -> np.ndarray:
        status, out = self._dsp.arm_mfcc_q15(self._mfcc, frame_q15, self._tmp)
        if status != 0:
            raise RuntimeError(f"arm_mfcc_q15 failed with status {status}")
        return np.asarray(out, dtype=np.int16)

    def frame(self, samples: np.ndarray) -> np.ndarray:
        """log-Mel of one frame of ``n_fft`` samples (float audio in [-1, 1]).

        Returns:
            float32 ``[n_mels]``, natural log, comparable with :func:`data_prep.features.log_mel`.
        """
        x = np.asarray(samples, dtype=np.float32)
        if x.shape != (self.params.n_fft,):
            raise ValueError(f"a frame has {self.params.n_fft} samples, got shape {x.shape}")
        if self.precision == "q15":
            q = _to_q15(x).astype(np.int32)
            exponent = block_exponent(q)
            raw = self._mfcc_q15((q << exponent).astype(np.int16))
            y = raw.astype(np.float32) / np.float32(Q87_SCALE) - (
                self._shift_ln + np.float32(exponent * math.log(2.0))
            )
            return np.where(raw <= self.q15_floor_raw, np.float32(self.params.floor), y).astype(
                np.float32
            )
        t = self.tables
        # A copy: the frame is a view into the caller's signal, and arm_mfcc works in place.
        x = x * np.float32(t.input_gain) if t.input_gain != 1.0 else x.copy()
        x[t.guard_index] = max(t.input_gain, float(np.max(np.abs(x))))
        out = np.asarray(self._dsp.arm_mfcc_f32(self._mfcc, x, self._tmp), dtype=np.float32)
        if t.input_gain != 1.0:
            out = out - np.float32(math.log(t.input_gain))
        return out

    # ------------------------------------------------------------------------ whole signals

    def log_mel(self, signal: np.ndarray) -> np.ndarray:
        """All frames of a signal, one ``arm_mfcc`` call per hop.

        Frames as :func:`data_prep.features.log_mel` makes them (``center=False``): frame ``i``
        covers samples ``[i * hop, i * hop + n_fft)``; a signal shorter than ``n_fft`` is
        zero-padded to one frame.

        Returns:
            float32 ``[n_frames, n_mels]``.

        Raises:
            ValueError: the signal is not 1-D, is empty, or has NaN/inf.
        """
        p = self.params
        x = np.asarray(signal, dtype=np.float32)
        if x.ndim != 1 or x.size == 0:
            raise ValueError(f"expected a non-empty 1-D signal, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise ValueError("the signal has NaN/inf values")
        if x.size < p.n_fft:
            x = np.pad(x, (0, p.n_fft - x.size))
        n = 1 + (x.size - p.n_fft) // p.hop_length
        out = np.empty((n, p.n_mels), dtype=np.float32)
        for i in range(n):
            out[i] = self.frame(x[i * p.hop_length : i * p.hop_length + p.n_fft])
        return out

    def features(self, signal: np.ndarray) -> np.ndarray:
        """Fixed-length features of one utterance, as :func:`data_prep.features.extract` makes
        them (:meth:`log_mel`, then :func:`data_prep.features.fix_length`)."""
        return fix_length(self.log_mel(signal), self.params)

    def to_input(self, features: np.ndarray) -> np.ndarray:
        """Fixed-length features ``[frames, n_mels]`` -> the int8 input tensor ``[1, frames,
        n_mels]``, with the folded normaliser + quantization the firmware uses.

        Raises:
            ValueError: no :class:`InputQuantization` was given (use :meth:`from_meta`).
        """
        if self.quantization is None:
            raise ValueError("this DeviceFrontend has no input quantization; use from_meta()")
        x = np.asarray(features, dtype=np.float32)
        if x.shape != (self.params.frames, self.params.n_mels):
            raise ValueError(
                f"expected features [{self.params.frames}, {self.params.n_mels}], got {x.shape}"
            )
        return self.quantization.quantize(x)[None]


__all__ = [
    "CMSIS_LOG_OFFSET",
    "PRECISIONS",
    "Q87_SCALE",
    "DeviceFrontend",
    "InputQuantization",
    "MelTables",
    "fold_input_quantization",
    "mel_tables",
]
