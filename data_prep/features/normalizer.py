"""Normalizer: per-mel standardisation with statistics of the training split only."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from data_prep.features.cache import atomic_write_bytes
from data_prep.features.params import FeatureParams

#: Whether :meth:`Normalizer.fit` leaves the log floor out of the statistics by default; the one
#: default of the project (``keras_hrf.training.TrainConfig.exclude_floor`` uses it).
DEFAULT_EXCLUDE_FLOOR = False


@dataclasses.dataclass(frozen=True, eq=False)
class Normalizer:
    """Per-mel standardisation ``(x - mean) / std`` with statistics from the training split.

    Fit it on training features only (validation/test statistics would leak), store it with the
    model (:meth:`save`), and apply the same object everywhere, including on the device.

    Attributes:
        mean: Per-mel mean, float32 ``[n_mels]``.
        std: Per-mel standard deviation, float32 ``[n_mels]`` (at least ``min_std``).
        exclude_floor: Whether the statistics ignored values at the log floor (see :meth:`fit`).
        floor: The floor value used for the exclusion, or None.
        feature_fingerprint: ``FeatureParams.fingerprint()`` of the fitted features, if known;
            lets a loader check that a normaliser matches the front-end.
    """

    mean: np.ndarray
    std: np.ndarray
    exclude_floor: bool = False
    floor: float | None = None
    feature_fingerprint: str | None = None

    #: Smallest standard deviation used, so a constant band (e.g. above a low-pass edge) does not
    #: blow up to inf.
    min_std = 1e-3
    #: Values within this distance of the floor count as floor: a mel energy of 1e-9 gives
    #: log(1e-6 + 1e-9) = floor + 1e-3, which is still "digital silence", not signal.
    floor_tolerance = 1e-2

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=np.float32).reshape(-1)
        std = np.asarray(self.std, dtype=np.float32).reshape(-1)
        if mean.shape != std.shape or mean.size == 0:
            raise ValueError(
                f"Normalizer mean and std must be equal-length vectors, got {mean.shape} "
                f"and {std.shape}"
            )
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
            raise ValueError("Normalizer mean/std must be finite and std > 0")
        mean.setflags(write=False)
        std.setflags(write=False)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        params: FeatureParams,
        *,
        exclude_floor: bool = DEFAULT_EXCLUDE_FLOOR,
    ) -> Normalizer:
        """Per-mel mean and std over every example and frame of ``features``.

        Args:
            features: Training features ``[N, frames, n_mels]`` (or ``[frames, n_mels]``).
            params: The parameters they were computed with: they give the floor and pad value,
                and their fingerprint is recorded so that a normaliser cannot silently be paired
                with another front-end.
            exclude_floor: If True, values at the log floor ``log(log_offset)`` - frames of
                exact digital zeros and floor padding - do not count, so the statistics describe
                the signal only; a band without any signal falls back to its all-value
                statistics. The default, :data:`DEFAULT_EXCLUDE_FLOOR` (False), is the one every
                committed experiment was trained with (``TrainConfig.exclude_floor`` takes it
                from here). Why it is an option: a microphone never produces exact zeros, while
                corpora (RAVDESS) and the fixed-length padding do, so with the floor included
                the statistics depend on how much silence a corpus has and on ``frames`` (on
                RAVDESS, appending 100 floor frames per example moves a band mean by up to 1.5
                and a std by 36 %, against 0 with the exclusion; benchmarks/features.py). On
                RAVDESS with the default (magnitude) features only 4 % of the values are at the
                floor, so the exclusion moves the per-mel means by ~0.2 on average; its cost is
                a slightly wider normalised range (int8 input resolution 35 instead of 38 steps
                per signal standard deviation). Its effect on accuracy has not been measured.

        Raises:
            ValueError: empty or non-finite features, or ``n_mels`` different from ``params``.
        """
        if not isinstance(params, FeatureParams):
            raise ValueError(
                f"Normalizer.fit needs the FeatureParams of the features, got {params!r}"
            )
        x = np.asarray(features)
        if x.ndim < 2 or x.size == 0:
            raise ValueError(f"Normalizer.fit expects [N, frames, n_mels], got shape {x.shape}")
        if x.shape[-1] != params.n_mels:
            raise ValueError(
                f"features have {x.shape[-1]} mel bands but params.n_mels is {params.n_mels}"
            )
        x = x.reshape(-1, x.shape[-1])
        floor = params.floor
        limits = None
        if exclude_floor:
            # Pad values that are not the floor (a custom pad_value) are not signal either.
            limits = [floor] + ([params.pad_value] if params.pad_value is not None else [])

        n_mels = x.shape[1]
        total = np.zeros(n_mels)
        total_sq = np.zeros(n_mels)
        count = np.zeros(n_mels)
        all_total = np.zeros(n_mels)
        all_sq = np.zeros(n_mels)
        # Chunked float64 sums: bounded memory on large corpora and no float32 cancellation.
        for lo in range(0, x.shape[0], 1 << 16):
            block = x[lo : lo + (1 << 16)].astype(np.float64)
            if not np.all(np.isfinite(block)):
                raise ValueError("Normalizer.fit got NaN/inf features")
            all_total += block.sum(axis=0)
            all_sq += np.square(block).sum(axis=0)
            if limits is None:
                continue
            keep = np.ones(block.shape, dtype=bool)
            for lim in limits:
                keep &= np.abs(block - lim) > cls.floor_tolerance
            total += np.where(keep, block, 0.0).sum(axis=0)
            total_sq += np.where(keep, np.square(block), 0.0).sum(axis=0)
            count += keep.sum(axis=0)
        if limits is None:
            total, total_sq, count = all_total, all_sq, np.full(n_mels, float(x.shape[0]))
        else:
            empty = count < 2
            total = np.where(empty, all_total, total)
            total_sq = np.where(empty, all_sq, total_sq)
            count = np.where(empty, float(x.shape[0]), count)
        mean = total / count
        var = np.maximum(total_sq / count - np.square(mean), 0.0)
        std = np.maximum(np.sqrt(var), cls.min_std)
        return cls(
            mean=mean,
            std=std,
            exclude_floor=bool(exclude_floor),
            floor=floor,
            feature_fingerprint=params.fingerprint(),
        )

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(x - mean) / std`` over the last axis, as float32."""
        x = np.asarray(x, dtype=np.float32)
        if x.shape[-1] != self.mean.size:
            raise ValueError(
                f"Normalizer was fitted on {self.mean.size} mel bands, got input with last axis "
                f"{x.shape[-1]}"
            )
        return ((x - self.mean) / self.std).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (lists of floats)."""
        return {
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "exclude_floor": self.exclude_floor,
            "floor": self.floor,
            "feature_fingerprint": self.feature_fingerprint,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Normalizer:
        """Inverse of :meth:`to_dict`; unknown keys are an error.

        Raises:
            ValueError: unknown or missing keys, or invalid values.
        """
        known = {"mean", "std", "exclude_floor", "floor", "feature_fingerprint"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown Normalizer key(s) {unknown}; known keys: {sorted(known)}")
        missing = sorted({"mean", "std"} - set(data))
        if missing:
            raise ValueError(f"Normalizer dict lacks {missing}")
        return cls(
            mean=np.asarray(data["mean"], dtype=np.float32),
            std=np.asarray(data["std"], dtype=np.float32),
            exclude_floor=bool(data.get("exclude_floor", False)),
            floor=None if data.get("floor") is None else float(data["floor"]),
            feature_fingerprint=data.get("feature_fingerprint"),
        )

    def save(self, path: str | Path) -> None:
        """Write the normaliser as JSON, atomically (a crash never leaves a truncated file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2)
        atomic_write_bytes(path, lambda f: f.write(text.encode("utf-8")))

    @classmethod
    def load(cls, path: str | Path) -> Normalizer:
        """Read a normaliser written by :meth:`save`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))
