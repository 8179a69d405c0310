"""FeatureParams: every number of the log-Mel front-end, the contract between training and the
device (see DESIGN.md, "Features"). Stored next to every exported model; its fingerprint names the
feature cache folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

#: Bump when the computation changes for identical parameters, so that cached features and
#: fingerprints recorded with exported models stop matching.
FEATURE_ALGORITHM_VERSION = 1

#: Accepted values of the string-valued parameters.
MEL_SCALES = ("slaney", "htk")
CROP_MODES = ("center", "start")


@dataclasses.dataclass(frozen=True)
class FeatureParams:
    """Every parameter of the log-Mel front-end; the contract between training and the device.

    Frozen (hashable, usable as a cache key) and validated on construction. Numeric fields are
    normalised to ``int``/``float``, so ``FeatureParams(fmin=0)`` and
    ``FeatureParams(fmin=0.0)`` are equal and share a :meth:`fingerprint`.
    """

    sample_rate: int = 16000
    """Sample rate, in Hz, that audio is resampled to before analysis."""

    n_fft: int = 512
    """FFT length in samples; also the length of one analysis frame. A power of two, because the
    device's real FFT (CMSIS-DSP ``arm_rfft_fast_f32``) only supports those."""

    win_length: int = 400
    """Length of the periodic Hann window, in samples (25 ms at 16 kHz). It is zero-padded to
    ``n_fft`` and centred in the frame: ``(n_fft - win_length) // 2`` zeros on the left (56 for the
    defaults), the rest on the right, as ``librosa.util.pad_center`` does."""

    hop_length: int = 160
    """Frame step, in samples (10 ms at 16 kHz)."""

    center: bool = False
    """If False, frame ``i`` covers samples ``[i * hop_length, i * hop_length + n_fft)`` and only
    complete frames are produced (what a streaming device does). If True, the signal is padded with
    ``n_fft // 2`` zeros on both sides first (librosa's default, not reproducible on a stream)."""

    power: float = 1.0
    """Exponent applied to the magnitude spectrum before the mel filters: 1.0 for magnitude, 2.0
    for power."""

    n_mels: int = 64
    """Number of mel bands."""

    fmin: float = 0.0
    """Lowest frequency of the mel filter bank, in Hz."""

    fmax: float = 8000.0
    """Highest frequency of the mel filter bank, in Hz; at most ``sample_rate / 2``."""

    mel: str = "slaney"
    """Mel scale: ``"slaney"`` (librosa ``htk=False``, linear below 1 kHz, the Auditory Toolbox
    scale) or ``"htk"`` (``htk=True``). Filters are area-normalised (``norm="slaney"``) both
    ways."""

    log_offset: float = 1e-6
    """Added to the mel energies before the natural log, so that digital silence maps to the finite
    floor ``log(log_offset)`` (about -13.8 for 1e-6) instead of ``-inf``."""

    frames: int = 300
    """Number of frames every example is cropped or padded to (3.0 s at hop 160 / 16 kHz)."""

    crop: str = "center"
    """Which frames to keep from a longer example: ``"center"`` (the middle ``frames``) or
    ``"start"`` (the first ``frames``, what a device that starts listening at speech onset sees)."""

    pad_value: float | None = None
    """Value of the frames appended to a shorter example (always at the end, so frame 0 stays at
    the start of the audio). ``None`` means the log floor ``log(log_offset)``, i.e. the features of
    digital silence; padding with 0.0 instead would insert a loud, non-existent sound."""

    min_duration: float = 0.1
    """Shortest usable audio, in seconds; shorter files are reported as bad, not padded."""

    def __post_init__(self) -> None:
        ints = ("sample_rate", "n_fft", "win_length", "hop_length", "n_mels", "frames")
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
                raise ValueError(f"FeatureParams.{name} must be a positive integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        floats = ("power", "fmin", "fmax", "log_offset", "min_duration")
        for name in floats:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise ValueError(f"FeatureParams.{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"FeatureParams.{name} must be finite, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not isinstance(self.center, bool | np.bool_):
            raise ValueError(f"FeatureParams.center must be True or False, got {self.center!r}")
        object.__setattr__(self, "center", bool(self.center))
        if self.pad_value is not None:
            if isinstance(self.pad_value, bool) or not isinstance(
                self.pad_value, int | float | np.number
            ):
                raise ValueError(
                    f"FeatureParams.pad_value must be a number or None (= log floor), "
                    f"got {self.pad_value!r}"
                )
            if not math.isfinite(self.pad_value):
                raise ValueError(f"FeatureParams.pad_value must be finite, got {self.pad_value!r}")
            object.__setattr__(self, "pad_value", float(self.pad_value))

        if self.n_fft & (self.n_fft - 1):
            raise ValueError(
                f"FeatureParams.n_fft must be a power of two (the device FFT requires it), "
                f"got {self.n_fft}"
            )
        if self.win_length > self.n_fft:
            raise ValueError(
                f"FeatureParams.win_length ({self.win_length}) must be <= n_fft ({self.n_fft})"
            )
        if self.power not in (1.0, 2.0):
            raise ValueError(
                f"FeatureParams.power must be 1.0 (magnitude) or 2.0 (power), got {self.power}"
            )
        if self.n_mels > self.n_fft // 2 + 1:
            raise ValueError(
                f"FeatureParams.n_mels ({self.n_mels}) must be <= n_fft // 2 + 1 "
                f"({self.n_fft // 2 + 1} FFT bins)"
            )
        nyquist = self.sample_rate / 2
        if not 0.0 <= self.fmin < self.fmax <= nyquist:
            raise ValueError(
                f"FeatureParams needs 0 <= fmin < fmax <= sample_rate / 2 ({nyquist:g} Hz), "
                f"got fmin={self.fmin:g}, fmax={self.fmax:g}"
            )
        if self.mel not in MEL_SCALES:
            raise ValueError(f"FeatureParams.mel must be one of {MEL_SCALES}, got {self.mel!r}")
        if self.log_offset <= 0:
            raise ValueError(f"FeatureParams.log_offset must be > 0, got {self.log_offset}")
        if self.crop not in CROP_MODES:
            raise ValueError(f"FeatureParams.crop must be one of {CROP_MODES}, got {self.crop!r}")
        if self.min_duration < 0:
            raise ValueError(f"FeatureParams.min_duration must be >= 0, got {self.min_duration}")

    @property
    def floor(self) -> float:
        """The log value of digital silence, ``log(log_offset)``."""
        return math.log(self.log_offset)

    @property
    def fill_value(self) -> float:
        """The value that :func:`fix_length` pads with (``pad_value``, or the floor if None)."""
        return self.floor if self.pad_value is None else self.pad_value

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-serialisable dict (the form stored next to exported models)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureParams:
        """Rebuild parameters from :meth:`to_dict` output.

        Missing keys take their defaults (so that files written before a field existed still
        load with the behaviour they were made with); unknown keys are an error, because silently
        ignoring e.g. a misspelt ``n_mel`` would make the device compute different features.

        Raises:
            ValueError: ``data`` has unknown keys or invalid values.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown FeatureParams key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**dict(data))

    def fingerprint(self) -> str:
        """A short stable hash of the parameters and :data:`FEATURE_ALGORITHM_VERSION`.

        Equal for equal parameters across processes, machines and Python versions (it hashes the
        canonical JSON, not Python's randomised ``hash``); used as the cache folder name.
        """
        payload = {"algorithm": FEATURE_ALGORITHM_VERSION, **self.to_dict()}
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
