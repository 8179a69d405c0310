"""What a flatbuffer spends its bytes on, and the strings a device does not need.

TFLite Micro and LiteRT address tensors by index; the converter still stores a name per tensor
(the Keras layer path, tens of bytes each: 8 % of the light Conformer's flatbuffer). On a
microcontroller that is flash. :func:`strip_tensor_names` removes every name but those of the
model's inputs and outputs (which LiteRT users see) and returns them as a map, which the export
writes beside the model (``tensor_names.json``) for debugging. :func:`size_breakdown` says where
the bytes of a flatbuffer go (weights, names, quantization parameters, graph structure).

The rewrite goes through the TFLite schema's object API (``ModelT``) and TensorFlow's
``flatbuffer_utils``; everything but the names is carried over unchanged, which the export
checks the usual way (LiteRT and TFLM on the rewritten bytes).
"""

from __future__ import annotations


def _model_object(tflite_bytes: bytes):
    from tensorflow.lite.python import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(bytearray(tflite_bytes), 0)


def _to_bytes(model) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


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
      :data:`TFLM_METADATA` (their buffers emptied, so buffer indices do not move).

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
    return _to_bytes(model)


def size_breakdown(tflite_bytes: bytes) -> dict[str, int]:
    """Bytes of a flatbuffer by what they hold.

    Returns:
        ``total``; ``weights`` (constant tensor data: weights, biases, shape constants);
        ``tensor_names``; ``quantization`` (scales as float32, zero points as int64, and any
        min / max); ``metadata`` (metadata buffers); ``structure`` (the rest: tensor and
        operator tables, shapes, options, offsets, alignment).
    """
    model = _model_object(tflite_bytes)
    meta_buffers = {m.buffer for m in model.metadata or []}
    weights = metadata = 0
    for i, buffer in enumerate(model.buffers or []):
        n = 0 if buffer.data is None else len(buffer.data)
        if i in meta_buffers:
            metadata += n
        else:
            weights += n
    names = quant = 0
    for subgraph in model.subgraphs or []:
        for tensor in subgraph.tensors or []:
            names += len(tensor.name or b"")
            q = tensor.quantization
            if q is None:
                continue
            for field, width in (("scale", 4), ("zeroPoint", 8), ("min", 4), ("max", 4)):
                values = getattr(q, field)
                quant += 0 if values is None else len(values) * width
    total = len(tflite_bytes)
    return {
        "total": total,
        "weights": weights,
        "tensor_names": names,
        "quantization": quant,
        "metadata": metadata,
        "structure": total - weights - names - quant - metadata,
    }
