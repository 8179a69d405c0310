"""What a flatbuffer spends its bytes on, and the strings a device does not need.

TFLite Micro and LiteRT address tensors by index; the converter still stores a name per tensor
(the Keras layer path, tens of bytes each: 8 % of the light Conformer's flatbuffer). On a
microcontroller that is flash. :func:`strip_tensor_names` removes every name but those of the
model's inputs and outputs (which LiteRT users see) and returns them as a map, which the export
writes beside the model (``tensor_names.json``) for debugging. :func:`size_breakdown` says where
the bytes of a flatbuffer go (weights, names, quantization parameters, graph structure).

The rewrite goes through the TFLite schema's object API (``ModelT``) and TensorFlow's
``flatbuffer_utils``; everything but the names is carried over unchanged, which the export
checks the usual way (LiteRT and TFLM on the rewritten bytes). The copy for TFLite Micro
(:func:`micro_flatbuffer`) is written by :func:`_to_shared_bytes`, which stores what repeats once
(shapes, zero points, identical quantization and option tables, one empty buffer) and points
every use at it: a flatbuffer is a graph of offsets, and its readers follow offsets without
asking whether another field points to the same bytes.
"""

from __future__ import annotations

import flatbuffers
import numpy as np


def _model_object(tflite_bytes: bytes):
    from tensorflow.lite.python import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(bytearray(tflite_bytes), 0)


def _to_bytes(model) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


class _SharingBuilder(flatbuffers.Builder):
    """A flatbuffers builder that writes each distinct scalar vector once.

    Vectors are built back to front; when one ends, its bytes (length, elements) are compared
    with the vectors already written with the same element size and alignment, and a repeat is
    rolled back (the builder's head returns to where the vector started, padding included) and
    answered with the earlier vector's offset. Offsets count from the buffer's end, so an
    earlier offset stays valid while the buffer grows, and its alignment (also counted from the
    end) holds. Vectors of offsets (tables, strings) are not shared: their bytes are relative
    to where they lie, so equal bytes need not mean equal contents.
    """

    def __init__(self, initial_size: int = 1024):
        super().__init__(initial_size)
        self._vectors: dict[tuple[int, int, bytes], int] = {}
        self._vector_start = 0  # Offset() before StartVector: where a repeat rolls back to
        self._vector_key: tuple[int, int] = (0, 0)
        self._vector_has_offsets = False

    def StartVector(self, elemSize, numElems, alignment):  # noqa: N802, N803 (flatbuffers' API)
        self._vector_start = self.Offset()
        self._vector_key = (elemSize, alignment)
        self._vector_has_offsets = False
        return super().StartVector(elemSize, numElems, alignment)

    def PrependUOffsetTRelative(self, off):  # noqa: N802
        if self.nested:
            self._vector_has_offsets = True
        super().PrependUOffsetTRelative(off)

    def EndVector(self, numElems=None):  # noqa: N802, N803
        elem_size, alignment = self._vector_key
        count = self.vectorNumElems
        offset = super().EndVector(numElems)
        if self._vector_has_offsets:
            return offset
        head = self.Head()
        key = (elem_size, alignment, bytes(self.Bytes[head : head + 4 + elem_size * count]))
        earlier = self._vectors.get(key)
        if earlier is None:
            self._vectors[key] = offset
            return offset
        self.head = len(self.Bytes) - self._vector_start  # drop the repeat and its padding
        return earlier


class _PackOnce:
    """Stands for an object-API table wherever an equal one is used: packed at its first use,
    the same offset at every later one."""

    def __init__(self, table):
        self._table, self._offsets = table, {}

    def Pack(self, builder):  # noqa: N802 (the object API's name)
        if id(builder) not in self._offsets:
            self._offsets[id(builder)] = self._table.Pack(builder)
        return self._offsets[id(builder)]


def _content_key(value):
    """A hashable key that is equal for object-API values that pack to the same table."""
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, np.generic):
        return (value.dtype.str, value.item())
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return tuple(_content_key(v) for v in value)
    fields = sorted(vars(value).items())
    return (type(value).__name__, tuple((k, _content_key(v)) for k, v in fields))


def _share_tables(model) -> None:
    """Equal quantization parameters and equal builtin options become one :class:`_PackOnce`."""
    shared: dict = {}

    def once(table):
        if table is None:
            return None
        return shared.setdefault(_content_key(table), _PackOnce(table))

    for subgraph in model.subgraphs or []:
        for tensor in subgraph.tensors or []:
            tensor.quantization = once(tensor.quantization)
        for op in subgraph.operators or []:
            op.builtinOptions = once(op.builtinOptions)
            op.builtinOptions2 = once(op.builtinOptions2)


def _share_empty_buffers(model) -> None:
    """Every tensor without data points at buffer 0 (the schema's empty sentinel), and the
    buffers nothing points at any more are dropped (the others renumbered, in order)."""
    buffers = model.buffers or []
    if not buffers or not _is_empty(buffers[0]):
        return
    tensors = [t for g in model.subgraphs or [] for t in g.tensors or []]
    for tensor in tensors:
        if _is_empty(buffers[tensor.buffer]):
            tensor.buffer = 0
    used = {0} | {t.buffer for t in tensors} | {m.buffer for m in model.metadata or []}
    new_index = {old: new for new, old in enumerate(sorted(used))}
    for tensor in tensors:
        tensor.buffer = new_index[tensor.buffer]
    for entry in model.metadata or []:
        entry.buffer = new_index[entry.buffer]
    model.buffers = [buffers[i] for i in sorted(used)]


def _is_empty(buffer) -> bool:
    return (buffer.data is None or len(buffer.data) == 0) and not buffer.offset and not buffer.size


def _to_shared_bytes(model) -> bytes:
    """``model`` packed with every repeat stored once (:class:`_SharingBuilder`,
    :func:`_share_tables`, :func:`_share_empty_buffers`). Changes ``model``."""
    _share_empty_buffers(model)
    _share_tables(model)
    builder = _SharingBuilder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")  # TFLite's file identifier
    return bytes(builder.Output())


def _text(value) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def strip_tensor_names(tflite_bytes: bytes) -> tuple[bytes, dict[str, dict[str, str]]]:
    """The flatbuffer without the names of its internal tensors (and without its description).

    Returns:
        ``(stripped bytes, names)`` where ``names[subgraph][tensor index] = name`` (as strings,
        JSON-ready) for every name removed.
    """
    model = _model_object(tflite_bytes)
    names: dict[str, dict[str, str]] = {}
    for g, subgraph in enumerate(model.subgraphs or []):
        keep = set(subgraph.inputs or []) | set(subgraph.outputs or [])
        removed = {}
        for i, tensor in enumerate(subgraph.tensors or []):
            if i not in keep and tensor.name:
                removed[str(i)] = _text(tensor.name)
                tensor.name = None
        names[str(g)] = removed
    model.description = None
    return _to_bytes(model), names


#: The metadata entries TFLite Micro reads (offline-planned tensor offsets,
#: ``micro_allocation_info.cc``; compressed tensors, ``compression.h``); the rest (the
#: converter's version strings) only LiteRT or tools read.
TFLM_METADATA = (b"OfflineMemoryAllocation", b"COMPRESSION_METADATA")

#: Builtin op -> the input index of its bias (the only int32 constants with per-channel
#: quantization the converter writes).
_BIAS_INPUT = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}


def micro_flatbuffer(tflite_bytes: bytes) -> bytes:
    """The int8 flatbuffer as TFLite Micro needs it, for the firmware's C array.

    TFLite Micro reads fewer bytes of a model than LiteRT, and LiteRT refuses some of what it
    accepts, so the device gets its own copy (the ``.tflite`` for LiteRT stays complete):

    - per-channel zero points of a constant tensor that are all 0 (every int8 weight tensor) are
      stored once: TFLM's allocator expands a one-value zero-point array to every channel
      ("as a space-saving optimization", ``micro_allocator.cc``); LiteRT requires as many zero
      points as scales. 8 bytes (int64) per channel;
    - a per-channel int32 bias keeps only its first scale and zero point: the int8 kernels
      requantize with the input's and the filter's scales and read the bias's ``params.scale``
      (its first scale) at most, to check it against input x filter scale[0]. 12 bytes per
      channel;
    - every tensor name, the description, the signature defs and every metadata entry but
      :data:`TFLM_METADATA` (their buffers emptied);
    - what repeats is stored once (:func:`_to_shared_bytes`): equal shapes, zero points and
      other scalar vectors, equal quantization and option tables, and the empty buffers of the
      activations (all of them buffer 0, the schema's empty sentinel; buffers renumbered).

    The export runs TFLM on both flatbuffers and requires identical outputs
    (:func:`keras_hrf.export.export`).

    Returns:
        The slimmed flatbuffer.
    """
    from keras_hrf.export import flatbuffer

    info = flatbuffer.parse(tflite_bytes)  # the main subgraph, the one with the model's ops
    biases = {
        op.inputs[_BIAS_INPUT[op.name]]
        for op in info.ops
        if op.name in _BIAS_INPUT and len(op.inputs) > _BIAS_INPUT[op.name]
    }
    biases &= {t.index for t in info.tensors if t.dtype == "INT32"}
    model = _model_object(tflite_bytes)
    for g, subgraph in enumerate(model.subgraphs or []):
        subgraph.name = None
        for index, tensor in enumerate(subgraph.tensors or []):
            tensor.name = None
            q = tensor.quantization
            constant = tensor.buffer and model.buffers[tensor.buffer].data is not None
            if q is None or q.scale is None or len(q.scale) < 2 or not constant:
                continue
            zero_points = list(q.zeroPoint if q.zeroPoint is not None else [])
            if g == 0 and index in biases:  # a bias: one scale and zero point are all TFLM reads
                q.scale, q.zeroPoint = list(q.scale[:1]), zero_points[:1] or [0]
                q.quantizedDimension = 0
            elif zero_points and not any(zero_points):
                q.zeroPoint = [0]
    keep = []
    for entry in model.metadata or []:
        if _text(entry.name).encode() in TFLM_METADATA:
            keep.append(entry)
        else:
            model.buffers[entry.buffer].data = None
    model.metadata = keep or None
    model.signatureDefs = None
    model.description = None
    return _to_shared_bytes(model)


def size_breakdown(tflite_bytes: bytes) -> dict[str, int]:
    """Bytes of a flatbuffer by what they hold; what is stored once and used by several tensors
    (:func:`micro_flatbuffer`'s shared vectors) counts once.

    Returns:
        ``total``; ``weights`` (constant tensor data: weights, biases, shape constants);
        ``tensor_names``; ``quantization`` (scales as float32, zero points as int64, and any
        min / max); ``metadata`` (metadata buffers); ``structure`` (the rest: tensor and
        operator tables, shapes, options, offsets, alignment).
    """
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAs(bytearray(tflite_bytes), 0)
    meta_buffers = {model.Metadata(i).Buffer() for i in range(model.MetadataLength())}
    weights = metadata = 0
    for i in range(model.BuffersLength()):
        n = model.Buffers(i).DataLength()
        if i in meta_buffers:
            metadata += n
        else:
            weights += n
    names = quant = 0
    counted: set[int] = set()  # start positions of the quantization vectors counted
    # QuantizationParameters' vtable slots: min 4, max 6, scale 8, zero_point 10.
    fields = ((4, 4), (6, 4), (8, 4), (10, 8))  # (slot, bytes per value)
    for g in range(model.SubgraphsLength()):
        subgraph = model.Subgraphs(g)
        for t in range(subgraph.TensorsLength()):
            tensor = subgraph.Tensors(t)
            names += len(tensor.Name() or b"")
            q = tensor.Quantization()
            if q is None:
                continue
            for slot, width in fields:
                o = q._tab.Offset(slot)
                start = q._tab.Vector(o) if o else None
                if start is not None and start not in counted:
                    counted.add(start)
                    quant += q._tab.VectorLen(o) * width
    total = len(tflite_bytes)
    return {
        "total": total,
        "weights": weights,
        "tensor_names": names,
        "quantization": quant,
        "metadata": metadata,
        "structure": total - weights - names - quant - metadata,
    }
