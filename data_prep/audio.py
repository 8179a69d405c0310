"""Reading audio files into the one signal format the rest of the project expects.

:func:`load_audio` returns a 1-D float32 NumPy array at a fixed sample rate, mono, with values in
[-1, 1] for integer PCM files. It is deliberately small and free of project state so that the
feature extractor, the device front-end (CMSIS-DSP twin) and the Android golden vectors all read
audio the same way.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from data_prep.errors import AudioError

#: soxr quality used for every resampling. "HQ" is soxr's default 20-bit quality: its pass band is
#: flat to ~91 % of Nyquist, far better than the log-Mel features can resolve, and it is several
#: times faster than "VHQ".
RESAMPLE_QUALITY = "HQ"


def load_audio(
    path: str | Path,
    sample_rate: int = 16000,
    *,
    start: float | None = None,
    end: float | None = None,
    min_duration: float = 0.1,
) -> np.ndarray:
    """Read an audio file as a mono float32 signal at ``sample_rate``.

    Any format and rate that libsndfile reads (WAV, FLAC, OGG, ...) is accepted. Channels are
    averaged to mono *before* resampling (cheaper, and the mean commutes with the linear
    resampler), and the signal is resampled with soxr when the file's rate differs.

    Args:
        path: The audio file.
        sample_rate: Rate of the returned signal, in Hz.
        start: Optional segment start, in seconds from the beginning of the file.
        end: Optional segment end, in seconds. An end past the end of the file is clipped to the
            file's length (segment tables such as DAIC-WOZ transcripts often overshoot by a few
            milliseconds); a start at or past the end is an error.
        min_duration: Shortest accepted signal (after segment selection), in seconds.

    Returns:
        1-D float32 array at ``sample_rate``.

    Raises:
        AudioError: The file is missing, unreadable or corrupt, empty, contains NaN/inf, is
            entirely digital silence, or is shorter than ``min_duration``. The message names the
            file, what is wrong and what to do about it.
        ValueError: ``sample_rate``, ``start``/``end`` or ``min_duration`` are invalid (a
            programming error, not a property of the file).
    """
    if not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if min_duration < 0:
        raise ValueError(f"min_duration must be >= 0 seconds, got {min_duration!r}")
    start = _optional_seconds("start", start)
    end = _optional_seconds("end", end)
    if start is not None and end is not None and end <= start:
        raise ValueError(f"segment end ({end} s) must be after its start ({start} s)")

    path = Path(path)
    data, file_rate = _read(path, start, end)

    if data.size == 0:
        raise AudioError(
            f"{path}: empty audio (0 samples"
            + (f" in segment {start}-{end} s" if start is not None or end is not None else "")
            + "); remove the file from the corpus or re-export it"
        )
    if not np.all(np.isfinite(data)):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise AudioError(
            f"{path}: audio contains {bad} NaN/inf sample(s) (a broken float file); re-export it "
            "as 16-bit PCM or remove it from the corpus"
        )
    # Mono mix first: averaging then resampling equals resampling then averaging (both are
    # linear), and it halves the resampling work for stereo files.
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    duration = mono.shape[0] / file_rate
    if duration < min_duration:
        raise AudioError(
            f"{path}: too short ({duration * 1000:.1f} ms, shorter than the minimum of "
            f"{min_duration * 1000:.0f} ms); remove it or lower min_duration"
        )
    # Exact zeros only: a recording with very quiet noise is still a recording, but a file of
    # digital zeros carries no information and would become a row of log floors.
    if not np.any(mono):
        raise AudioError(
            f"{path}: silent audio (all samples are exactly zero); remove the file from the "
            "corpus or check the export that produced it"
        )

    if file_rate != sample_rate:
        mono = soxr.resample(mono, file_rate, sample_rate, quality=RESAMPLE_QUALITY)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _optional_seconds(name: str, value: float | None) -> float | None:
    """Validate an optional time in seconds; NaN means "not given" (pandas' missing value)."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"segment {name} must be a finite number of seconds >= 0, got {value}")
    return value


def _read(path: Path, start: float | None, end: float | None) -> tuple[np.ndarray, int]:
    """Read ``[start, end)`` of ``path`` as a float32 ``[samples, channels]`` array and its rate."""
    if not path.is_file():
        raise AudioError(
            f"{path}: file not found; check the corpus root and that the manifest is up to date"
        )
    try:
        with sf.SoundFile(str(path)) as f:
            rate = int(f.samplerate)
            total = f.frames
            first = 0 if start is None else int(round(start * rate))
            last = total if end is None else min(total, int(round(end * rate)))
            if start is not None and first >= total:
                raise AudioError(
                    f"{path}: segment start {start} s is at or past the end of the file "
                    f"({total / rate:.3f} s); fix the segment table"
                )
            # Seek only when needed: some formats (e.g. a few OGG files) are not seekable.
            if first:
                f.seek(first)
            data = f.read(frames=max(0, last - first), dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError, OSError) as exc:
        # soundfile reports unknown formats, truncated headers and decoder errors through these.
        raise AudioError(
            f"{path}: unreadable or corrupt audio ({exc}); re-export it as WAV/FLAC or remove it "
            "from the corpus"
        ) from exc
    return data, rate
