"""``model_meta.json``: what a device needs to know about an exported model, written and read
through one dataclass (:class:`ModelMeta`).

Reading it needs neither TensorFlow nor Keras (a device-side tool, the Android app's golden
tests and the streaming twin read it); the exporter (:func:`keras_hrf.export.export`) builds a
:class:`ModelMeta` and writes :meth:`ModelMeta.to_json`. :meth:`ModelMeta.features_to_input` turns
log-Mel features into the model's int8 input exactly as the exporter did: the device front-end and
the Android app reuse it as their reference.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from data_prep import int8
from data_prep.features import FeatureParams, Normalizer

#: Version of the ``model_meta.json`` layout; a loader refuses newer versions.
META_SCHEMA_VERSION = 1
META_NAME = "model_meta.json"

#: File names inside an export folder.
FILES = {
    "int8": "model_int8.tflite",
    "float32": "model_float32.tflite",
    "c_header": "model_data.h",
    "c_source": "model_data.cc",
    "op_resolver": "op_resolver.h",
    "example_input": "example_input.h",
    "frontend_h": "frontend_tables.h",
    "frontend_c": "frontend_tables.c",
    "meta": META_NAME,
    "report": "REPORT.md",
    "tensor_names": "tensor_names.json",
    "firmware": "firmware.json",
}

#: Keys ``model_meta.json`` must have (dotted = nested), checked by :meth:`ModelMeta.from_dict`.
REQUIRED_META_KEYS = (
    "schema_version",
    "labels",
    "feature_params",
    "normalizer",
    "input.shape",
    "input.dtype",
    "input.scale",
    "input.zero_point",
    "output.shape",
    "output.dtype",
    "output.scale",
    "output.zero_point",
    "arena.min_bytes",
    "arena.recommended_bytes",
    "ops",
    "files",
)


class MetaError(ValueError):
    """``model_meta.json`` is missing, malformed or from a newer schema."""


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """The model's input or output tensor.

    Attributes:
        name: Tensor name in the flatbuffer.
        shape: Shape, batch 1 first (input ``[1, frames, n_mels]`` or ``[1, frames, n_mels, 1]``).
        dtype: ``"int8"`` or ``"float32"``.
        scale: Quantization scale (1.0 for float).
        zero_point: Quantization zero point.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float
    zero_point: int

    @classmethod
    def from_dict(cls, d: Mapping) -> TensorSpec:
        return cls(
            name=str(d.get("name", "")),
            shape=tuple(int(n) for n in d["shape"]),
            dtype=str(d["dtype"]),
            scale=float(d["scale"]),
            zero_point=int(d["zero_point"]),
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "scale": self.scale,
            "zero_point": self.zero_point,
        }


@dataclasses.dataclass(frozen=True)
class ArenaSpec:
    """TFLite Micro arena of the model.

    Attributes:
        min_bytes: The smallest arena measured to work: TFLM's ``arena_used_bytes()`` on a
            32-bit Cortex-M build where the export could run one (CMSIS-NN kernels and their
            scratch buffers), else the smallest arena the 64-bit host interpreter accepts.
        recommended_bytes: What the firmware should allocate.
        measured_with: Where ``min_bytes`` was measured.
        host_min_bytes: The 64-bit host interpreter's minimum (None if not measured).
        host_recommended_bytes: The arena for a 64-bit build (the Python TFLM interpreter, a
            host firmware): TFLM's records hold pointers, so it needs more than a
            microcontroller. None: ``recommended_bytes`` serves both.
    """

    min_bytes: int
    recommended_bytes: int
    measured_with: str = ""
    host_min_bytes: int | None = None
    host_recommended_bytes: int | None = None

    @property
    def host_bytes(self) -> int:
        """The arena for a 64-bit build."""
        return self.host_recommended_bytes or self.recommended_bytes

    @classmethod
    def from_dict(cls, d: Mapping) -> ArenaSpec:
        return cls(
            min_bytes=int(d["min_bytes"]),
            recommended_bytes=int(d["recommended_bytes"]),
            measured_with=str(d.get("measured_with", "")),
            host_min_bytes=None if d.get("host_min_bytes") is None else int(d["host_min_bytes"]),
            host_recommended_bytes=(
                None
                if d.get("host_recommended_bytes") is None
                else int(d["host_recommended_bytes"])
            ),
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ModelMeta:
    """A validated ``model_meta.json`` (schema :data:`META_SCHEMA_VERSION`).

    Attributes:
        labels: Class names, index = output position.
        feature_params: The front-end's :class:`~data_prep.features.FeatureParams`.
        normalizer: The training split's :class:`~data_prep.features.Normalizer`.
        input: The input tensor.
        output: The output tensor.
        arena: The TFLM arena.
        ops: Distinct ops of the int8 model.
        files: Role -> file name inside the export folder (:data:`FILES`).
        op_counts: Op -> how many times it occurs.
        sizes: ``int8_bytes``, ``float32_bytes``, ``weight_bytes``.
        macs: Multiply-accumulates per inference (``None`` if unknown).
        check: What the exporter's runtime check measured.
        example: The device example input (``source``, ``sample_index``, ``expected_index``,
            ``expected_label``).
        sha256: File name -> SHA-256 of the flatbuffers.
        origin: Where the model came from (family, size, HRF configuration, seed, ...).
        created_with: Package versions of the export.
        schema_version: Layout version.
        path: The export folder it was read from (not stored in the file).
    """

    labels: tuple[str, ...]
    feature_params: FeatureParams
    normalizer: Normalizer
    input: TensorSpec
    output: TensorSpec
    arena: ArenaSpec
    ops: tuple[str, ...]
    files: dict[str, str] = dataclasses.field(default_factory=lambda: dict(FILES))
    op_counts: dict[str, int] = dataclasses.field(default_factory=dict)
    sizes: dict[str, int] = dataclasses.field(default_factory=dict)
    macs: int | None = None
    check: dict[str, Any] = dataclasses.field(default_factory=dict)
    example: dict[str, Any] = dataclasses.field(default_factory=dict)
    sha256: dict[str, str] = dataclasses.field(default_factory=dict)
    origin: dict[str, Any] = dataclasses.field(default_factory=dict)
    created_with: dict[str, str] = dataclasses.field(default_factory=dict)
    schema_version: int = META_SCHEMA_VERSION
    path: Path | None = dataclasses.field(default=None, compare=False)

    # ------------------------------------------------------------------------- shortcuts
    @property
    def input_shape(self) -> tuple[int, ...]:
        """Model input shape (batch 1)."""
        return self.input.shape

    @property
    def input_scale(self) -> float:
        return self.input.scale

    @property
    def input_zero_point(self) -> int:
        return self.input.zero_point

    @property
    def input_dtype(self) -> str:
        return self.input.dtype

    @property
    def output_scale(self) -> float:
        return self.output.scale

    @property
    def output_zero_point(self) -> int:
        return self.output.zero_point

    @property
    def arena_bytes(self) -> int:
        """Recommended TFLM arena on the device (32-bit where measured there)."""
        return self.arena.recommended_bytes

    @property
    def host_arena_bytes(self) -> int:
        """The TFLM arena of a 64-bit build: the Python interpreter, a host firmware."""
        return self.arena.host_bytes

    @property
    def raw(self) -> dict:
        """The whole JSON document (:meth:`to_dict`)."""
        return self.to_dict()

    # ----------------------------------------------------------------------------- use
    def features_to_input(self, features: np.ndarray) -> np.ndarray:
        """Fixed-length log-Mel features ``[frames, n_mels]`` -> the model's input tensor.

        Normalises with the stored mean/std, then quantizes with the input scale and zero point
        the way TFLite's ``QUANTIZE`` does (:func:`data_prep.int8.quantize`).

        Returns:
            The input tensor (``input.shape``, e.g. ``[1, frames, n_mels]``), int8 (or float32
            for a float model).
        """
        return features_to_input(
            features,
            self.normalizer,
            self.input_scale,
            self.input_zero_point,
            self.input_dtype,
            input_shape=self.input_shape,
        )

    def logits(self, output: np.ndarray) -> np.ndarray:
        """Dequantized model output (float logits)."""
        if self.input_dtype != "int8":
            return np.asarray(output, dtype=np.float32)
        return int8.dequantize(output, self.output_scale, self.output_zero_point)

    def label_of(self, output: np.ndarray) -> str:
        """The class name of the highest output."""
        return self.labels[int(np.asarray(output).reshape(-1).argmax())]

    # ---------------------------------------------------------------------------- JSON
    def to_dict(self) -> dict:
        """The ``model_meta.json`` document."""
        return {
            "schema_version": self.schema_version,
            "labels": list(self.labels),
            "feature_params": self.feature_params.to_dict(),
            "normalizer": self.normalizer.to_dict(),
            "input": self.input.to_dict(),
            "output": self.output.to_dict(),
            "arena": self.arena.to_dict(),
            "ops": list(self.ops),
            "op_counts": dict(self.op_counts),
            "sizes": dict(self.sizes),
            "macs": self.macs,
            "check": dict(self.check),
            "example": dict(self.example),
            "files": dict(self.files),
            "sha256": dict(self.sha256),
            "origin": dict(self.origin),
            "created_with": dict(self.created_with),
        }

    def to_json(self) -> str:
        """The document as indented JSON (no NaN: a device parser would choke on it).

        Raises:
            ValueError: a value (e.g. in ``origin``) is not JSON-serialisable.
        """
        try:
            return json.dumps(self.to_dict(), indent=2, allow_nan=False, default=_jsonable) + "\n"
        except (TypeError, ValueError) as e:
            raise ValueError(f"model metadata must be JSON-serialisable: {e}") from e

    @classmethod
    def from_dict(cls, doc: Any, source: str = "model_meta.json", path: Path | None = None):
        """Validate a ``model_meta.json`` document.

        Raises:
            MetaError: not an object, a required key missing (the message names it, e.g.
                ``'input.scale'``), a newer ``schema_version``, an input that is not
                ``[1, frames, n_mels(, 1)]``, or invalid feature parameters / normaliser.
        """
        if not isinstance(doc, dict):
            raise MetaError(f"{source}: expected a JSON object")
        for key in REQUIRED_META_KEYS:
            try:
                _get(doc, key)
            except KeyError:
                raise MetaError(f"{source}: missing key {key!r}") from None
        version = doc["schema_version"]
        if not isinstance(version, int) or version > META_SCHEMA_VERSION or version < 1:
            raise MetaError(
                f"{source}: schema_version {version!r} is not supported (this keras_hrf reads "
                f"versions 1..{META_SCHEMA_VERSION}); update keras_hrf"
            )
        try:
            params = FeatureParams.from_dict(doc["feature_params"])
            normalizer = Normalizer.from_dict(doc["normalizer"])
        except (TypeError, ValueError) as e:
            raise MetaError(f"{source}: {e}") from e
        inp, out = TensorSpec.from_dict(doc["input"]), TensorSpec.from_dict(doc["output"])
        shape = inp.shape
        if len(shape) not in (3, 4) or (len(shape) == 4 and shape[3] != 1):
            raise MetaError(
                f"{source}: input.shape {list(shape)} is not [1, frames, n_mels] or "
                "[1, frames, n_mels, 1]"
            )
        if normalizer.mean.size != shape[2] or params.n_mels != shape[2]:
            raise MetaError(
                f"{source}: input has {shape[2]} mel bands but feature_params.n_mels is "
                f"{params.n_mels} and the normaliser has {normalizer.mean.size}"
            )
        labels = tuple(str(v) for v in doc["labels"])
        if len(labels) != int(np.prod(out.shape)):
            raise MetaError(f"{source}: {len(labels)} labels for output {list(out.shape)}")
        return cls(
            labels=labels,
            feature_params=params,
            normalizer=normalizer,
            input=inp,
            output=out,
            arena=ArenaSpec.from_dict(doc["arena"]),
            ops=tuple(doc["ops"]),
            files=dict(doc["files"]),
            op_counts=dict(doc.get("op_counts") or {}),
            sizes=dict(doc.get("sizes") or {}),
            macs=doc.get("macs"),
            check=dict(doc.get("check") or {}),
            example=dict(doc.get("example") or {}),
            sha256=dict(doc.get("sha256") or {}),
            origin=dict(doc.get("origin") or {}),
            created_with=dict(doc.get("created_with") or {}),
            schema_version=version,
            path=path,
        )


def features_to_input(
    features: np.ndarray,
    normalizer,
    scale: float,
    zero_point: int,
    dtype: str = "int8",
    input_shape: Sequence[int] | None = None,
) -> np.ndarray:
    """Normalise ``[frames, n_mels]`` features and quantize them to a batch-1 input tensor.

    ``input_shape`` (the flatbuffer's, e.g. ``[1, frames, n_mels, 1]``) sets the returned shape;
    default ``[1, frames, n_mels]``.
    """
    x = np.asarray(features, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[0] != 1:
        raise ValueError(f"expected features [frames, n_mels], got shape {np.shape(features)}")
    x = normalizer.transform(x)
    if input_shape is not None:
        x = x.reshape(tuple(int(n) for n in input_shape))
    return int8.quantize(x, scale, zero_point) if dtype == "int8" else x.astype(np.float32)


def load_meta(path: str | os.PathLike) -> ModelMeta:
    """Read and validate an export's ``model_meta.json``.

    Args:
        path: The export folder or the JSON file itself.

    Raises:
        MetaError: the file is missing or not JSON, or :meth:`ModelMeta.from_dict` refuses it.
    """
    p = Path(path)
    file = p / META_NAME if p.is_dir() else p
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise MetaError(f"{file}: no such file (is this an export folder?)") from e
    except json.JSONDecodeError as e:
        raise MetaError(f"{file}: not valid JSON ({e})") from e
    return ModelMeta.from_dict(doc, source=str(file), path=file.parent)


def _get(doc: Mapping, dotted: str):
    cur: Any = doc
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            raise KeyError(dotted)
        cur = cur[part]
    return cur


def _jsonable(obj):
    # Provenance often holds config objects (an HRFConfig, a FeatureParams): store their dict
    # form. Anything else is an error rather than a lossy repr().
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
