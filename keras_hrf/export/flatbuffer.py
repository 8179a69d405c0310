"""Reading a TFLite flatbuffer, and the rules an exported model must satisfy.

The converter's own output is not trusted: after every conversion :func:`parse` reads the
flatbuffer back with the TFLite schema bindings that ship with TensorFlow
(``tensorflow.lite.python.schema_py_generated``) and :func:`problems` lists everything that would
stop the model from running as int8 under TensorFlow Lite Micro (see DESIGN.md, "TFLite Micro
compatibility"):

- an op that still computes in float inside an int8 model (a ``DEQUANTIZE -> float op ->
  QUANTIZE`` island, e.g. the ``NEG`` that Keras' ``LayerNormalization`` leaves behind);
- ``GELU``, which TFLM has no kernel for;
- a free (dynamic) dimension, which shows up as a ``-1`` in a shape signature or as run-time shape
  arithmetic (``SHAPE`` -> ``GATHER`` -> ``REDUCE_PROD``) that TFLM rejects;
- any op outside :data:`TFLM_OP_RESOLVER_METHODS`, the builtin kernels TFLM has (and the names of
  the ``MicroMutableOpResolver`` methods that register them, used for ``op_resolver.h``).
"""

from __future__ import annotations

import collections
import dataclasses
import functools

import numpy as np

#: Builtin op -> the ``tflite::MicroMutableOpResolver`` method that registers its kernel. These are
#: the builtin kernels of the tested TFLM build (``tflite-micro`` 0.dev20261023182759; method
#: names as in its ``micro_mutable_op_resolver.h``). An op missing here cannot run under TFLM.
TFLM_OP_RESOLVER_METHODS: dict[str, str] = {
    "ABS": "AddAbs",
    "ADD": "AddAdd",
    "ADD_N": "AddAddN",
    "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd",
    "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo",
    "CALL_ONCE": "AddCallOnce",
    "CAST": "AddCast",
    "CEIL": "AddCeil",
    "CONCATENATION": "AddConcatenation",
    "CONV_2D": "AddConv2D",
    "COS": "AddCos",
    "CUMSUM": "AddCumSum",
    "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize",
    "DIV": "AddDiv",
    "DYNAMIC_UPDATE_SLICE": "AddDynamicUpdateSlice",
    "ELU": "AddElu",
    "EMBEDDING_LOOKUP": "AddEmbeddingLookup",
    "EQUAL": "AddEqual",
    "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims",
    "FILL": "AddFill",
    "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected",
    "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd",
    "GREATER": "AddGreater",
    "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish",
    "IF": "AddIf",
    "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu",
    "LESS": "AddLess",
    "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog",
    "LOG_SOFTMAX": "AddLogSoftmax",
    "LOGICAL_AND": "AddLogicalAnd",
    "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr",
    "LOGISTIC": "AddLogistic",
    "MAX_POOL_2D": "AddMaxPool2D",
    "MAXIMUM": "AddMaximum",
    "MEAN": "AddMean",
    "MINIMUM": "AddMinimum",
    "MIRROR_PAD": "AddMirrorPad",
    "MUL": "AddMul",
    "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual",
    "PACK": "AddPack",
    "PAD": "AddPad",
    "PADV2": "AddPadV2",
    "PRELU": "AddPrelu",
    "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable",
    "REDUCE_ALL": "AddReduceAll",
    "REDUCE_MAX": "AddReduceMax",
    "REDUCE_MIN": "AddReduceMin",
    "RELU": "AddRelu",
    "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape",
    "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor",
    "REVERSE_V2": "AddReverseV2",
    "ROUND": "AddRound",
    "RSQRT": "AddRsqrt",
    "SELECT_V2": "AddSelectV2",
    "SHAPE": "AddShape",
    "SIN": "AddSin",
    "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd",
    "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit",
    "SPLIT_V": "AddSplitV",
    "SQRT": "AddSqrt",
    "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference",
    "SQUEEZE": "AddSqueeze",
    "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub",
    "SUM": "AddSum",
    "SVDF": "AddSvdf",
    "TANH": "AddTanh",
    "TRANSPOSE": "AddTranspose",
    "TRANSPOSE_CONV": "AddTransposeConv",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "UNPACK": "AddUnpack",
    "VAR_HANDLE": "AddVarHandle",
    "WHILE": "AddWhile",
    "ZEROS_LIKE": "AddZerosLike",
}

#: Ops that TFLM registers but only for float tensors; in an int8 model they mean a float island.
#: ``NEG`` is what Keras' ``LayerNormalization`` leaves (DESIGN.md).
FLOAT_ONLY_IN_TFLM = frozenset({"NEG"})

#: Tensor types allowed anywhere in an int8 model: int8 activations and weights, int32 biases and
#: shape/axis constants.
INT8_MODEL_TYPES = frozenset({"INT8", "INT32"})

#: Ops that compute shapes at run time; only a dimension unknown at conversion time needs them.
DYNAMIC_SHAPE_OPS = frozenset({"SHAPE"})


class ConversionError(ValueError):
    """A model cannot be converted into something that runs under TFLite Micro.

    ``str(error)`` is one line (for the CLI); ``error.problems`` lists every problem found.
    """

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


@dataclasses.dataclass(frozen=True)
class TensorInfo:
    """One tensor of a TFLite subgraph.

    Attributes:
        index: Tensor index in the subgraph.
        name: Tensor name (the converter derives it from the Keras layer path).
        dtype: Schema type name, e.g. ``"INT8"``, ``"INT32"``, ``"FLOAT32"``.
        shape: Static shape.
        shape_signature: Shape with ``-1`` for free dimensions (equal to ``shape`` if static).
        scales: Quantization scales (one per channel for per-channel weights; empty if none).
        zero_points: Quantization zero points.
        quantized_dimension: Channel axis of per-channel quantization.
        nbytes: Bytes of constant data stored in the flatbuffer (0 for activations).
    """

    index: int
    name: str
    dtype: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    quantized_dimension: int
    nbytes: int

    @property
    def is_constant(self) -> bool:
        """Whether the tensor holds constant data (a weight, bias or shape constant)."""
        return self.nbytes > 0


@dataclasses.dataclass(frozen=True)
class OpInfo:
    """One operator of a TFLite subgraph: its builtin name and tensor indices (-1 = absent)."""

    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class FlatbufferInfo:
    """What :func:`parse` reads from a ``.tflite`` flatbuffer (main subgraph).

    Attributes:
        ops: Operators in execution order.
        tensors: All tensors of the main subgraph.
        inputs: Indices of the subgraph's input tensors.
        outputs: Indices of its output tensors.
        size_bytes: Size of the whole flatbuffer.
        weight_bytes: Bytes of constant tensor data (weights, biases, constants).
        num_subgraphs: Subgraphs in the model (1 for a model without control flow).
    """

    ops: tuple[OpInfo, ...]
    tensors: tuple[TensorInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    size_bytes: int
    weight_bytes: int
    num_subgraphs: int

    @property
    def op_names(self) -> list[str]:
        """Builtin names of all ops, in execution order (with repeats)."""
        return [op.name for op in self.ops]

    @property
    def op_set(self) -> list[str]:
        """Distinct op names, sorted (what an op resolver must register)."""
        return sorted(set(self.op_names))

    @property
    def int8_ops(self) -> list[str]:
        """Distinct ops every instance of which reads and writes int8 tensors only (weights
        included; int32 biases and shape constants aside): those may be registered with TFLM's
        int8-only kernel variants (``Register_CONV_2D_INT8()``...), which link less code."""
        mixed = set()
        for op in self.ops:
            ids = [i for i in op.inputs + op.outputs if i >= 0]
            dtypes = {self.tensors[i].dtype for i in ids if not self.tensors[i].is_constant}
            weights = {
                self.tensors[i].dtype
                for i in ids
                if self.tensors[i].is_constant and self.tensors[i].dtype != "INT32"
            }
            if dtypes != {"INT8"} or not weights <= {"INT8"}:
                mixed.add(op.name)
        return sorted(set(self.op_names) - mixed)

    @property
    def op_counts(self) -> dict[str, int]:
        """How often each op occurs, most frequent first."""
        return dict(collections.Counter(self.op_names).most_common())

    @property
    def input(self) -> TensorInfo:
        """The (first) input tensor."""
        return self.tensors[self.inputs[0]]

    @property
    def output(self) -> TensorInfo:
        """The (first) output tensor."""
        return self.tensors[self.outputs[0]]


@functools.cache
def _schema():
    # Imported lazily: the bindings live in the tensorflow package, whose import is slow.
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


@functools.cache
def _enum_names(enum_name: str) -> dict[int, str]:
    enum = getattr(_schema(), enum_name)
    return {v: k for k, v in vars(enum).items() if not k.startswith("_") and isinstance(v, int)}


def parse(tflite_bytes: bytes) -> FlatbufferInfo:
    """Read ops, tensor types, quantization and sizes from a ``.tflite`` flatbuffer.

    Args:
        tflite_bytes: The flatbuffer.

    Returns:
        The main subgraph's :class:`FlatbufferInfo`.

    Raises:
        ConversionError: the bytes are not a TFLite flatbuffer.
    """
    schema = _schema()
    buf = bytes(tflite_bytes)
    # A TFLite flatbuffer carries the file identifier "TFL3" at bytes 4..8.
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise ConversionError("not a TFLite flatbuffer (no 'TFL3' file identifier)")
    model = schema.Model.GetRootAsModel(buf, 0)
    if model.SubgraphsLength() < 1:
        raise ConversionError("the TFLite flatbuffer has no subgraph")
    ops_names = _enum_names("BuiltinOperator")
    type_names = _enum_names("TensorType")
    sub = model.Subgraphs(0)

    tensors = []
    for i in range(sub.TensorsLength()):
        t = sub.Tensors(i)
        nbytes = 0
        if t.Buffer() < model.BuffersLength():
            b = model.Buffers(t.Buffer())
            # Large models store data outside the flatbuffer (offset > 1, size); ours inline.
            nbytes = b.DataLength() or (int(b.Size()) if b.Offset() > 1 else 0)
        q = t.Quantization()
        scales = tuple(float(q.Scale(j)) for j in range(q.ScaleLength())) if q else ()
        zeros = tuple(int(q.ZeroPoint(j)) for j in range(q.ZeroPointLength())) if q else ()
        shape = tuple(int(n) for n in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        sig = (
            tuple(int(n) for n in t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() else shape
        )
        tensors.append(
            TensorInfo(
                index=i,
                name=(t.Name() or b"").decode("utf-8", "replace"),
                dtype=type_names.get(t.Type(), f"TYPE_{t.Type()}"),
                shape=shape,
                shape_signature=sig,
                scales=scales,
                zero_points=zeros,
                quantized_dimension=int(q.QuantizedDimension()) if q else 0,
                nbytes=int(nbytes),
            )
        )

    ops = []
    for i in range(sub.OperatorsLength()):
        op = sub.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        # Codes above 127 live in BuiltinCode; older ones in DeprecatedBuiltinCode.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        name = ops_names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{(code.CustomCode() or b'').decode('utf-8', 'replace')}"
        ins = tuple(int(n) for n in op.InputsAsNumpy()) if op.InputsLength() else ()
        outs = tuple(int(n) for n in op.OutputsAsNumpy()) if op.OutputsLength() else ()
        ops.append(OpInfo(index=i, name=name, inputs=ins, outputs=outs))

    inputs = tuple(int(n) for n in sub.InputsAsNumpy()) if sub.InputsLength() else ()
    outputs = tuple(int(n) for n in sub.OutputsAsNumpy()) if sub.OutputsLength() else ()
    return FlatbufferInfo(
        ops=tuple(ops),
        tensors=tuple(tensors),
        inputs=inputs,
        outputs=outputs,
        size_bytes=len(buf),
        weight_bytes=sum(t.nbytes for t in tensors),
        num_subgraphs=model.SubgraphsLength(),
    )


def _where(info: FlatbufferInfo, op: OpInfo) -> str:
    # The output tensor's name carries the Keras layer path (e.g. "model/block0_ffn_fc1/...").
    names = [info.tensors[i].name for i in op.outputs if i >= 0]
    if not names:
        return f"{op.name} (op {op.index})"
    return f"{op.name} (op {op.index}, output {names[0]!r})"


def problems(info: FlatbufferInfo, quantization: str) -> list[str]:
    """Everything that stops ``info``'s model from running under TFLite Micro as intended.

    Args:
        info: A parsed flatbuffer.
        quantization: ``"int8"`` (every op must compute in int8, int8 input and output) or
            ``"float32"`` (float is fine; the other rules still apply).

    Returns:
        One human-readable line per problem; empty when the model is fine.
    """
    if quantization not in ("int8", "float32"):
        raise ValueError(f"quantization must be 'int8' or 'float32', got {quantization!r}")
    found: list[str] = []
    graph_inputs, graph_outputs = set(info.inputs), set(info.outputs)

    if info.num_subgraphs > 1:
        found.append(
            f"the model has {info.num_subgraphs} subgraphs (control flow); TFLM exports here "
            "must be a single straight-line subgraph"
        )
    for idx in info.inputs:
        t = info.tensors[idx]
        if any(n < 0 for n in t.shape_signature):
            found.append(
                f"input {t.name!r} has a free dimension (shape signature "
                f"{list(t.shape_signature)}); TFLM needs static shapes: rebuild with batch size 1"
            )
    dynamic = [op for op in info.ops if op.name in DYNAMIC_SHAPE_OPS]
    if dynamic:
        follow = sorted({op.name for op in info.ops if op.name in ("GATHER", "REDUCE_PROD")})
        found.append(
            f"a free batch dimension survives: {_where(info, dynamic[0])} computes shapes at run "
            f"time{' (with ' + '/'.join(follow) + ')' if follow else ''}; TFLM needs static "
            "shapes. convert() rebuilds the model with batch 1, so a layer reads its input shape "
            "at run time (e.g. ops.shape(x)[0]); use static shapes (x.shape) in it"
        )

    for op in info.ops:
        where = _where(info, op)
        if op.name == "GELU":
            found.append(
                f"{where}: TFLite Micro has no GELU kernel; build the model with activation "
                "'relu' or 'silu' (keras_hrf.models.blocks.ALLOWED_ACTIVATIONS)"
            )
        elif op.name.startswith("CUSTOM:"):
            found.append(f"{where}: custom ops are not registered by the exported op resolver")
        elif op.name not in TFLM_OP_RESOLVER_METHODS and op.name not in DYNAMIC_SHAPE_OPS:
            if op.name == "REDUCE_PROD" and dynamic:
                continue  # already reported as a free batch dimension
            found.append(f"{where}: TensorFlow Lite Micro has no kernel for {op.name}")
        if quantization != "int8":
            continue
        if op.name in FLOAT_ONLY_IN_TFLM:
            found.append(
                f"{where} computes in float inside the int8 model (TFLM's {op.name} kernel is "
                "float-only); Keras' LayerNormalization produces it: use keras_hrf.layers.LayerNorm"
            )
            continue
        floats = {
            info.tensors[i].dtype
            for i in op.inputs + op.outputs
            if i >= 0 and info.tensors[i].dtype not in INT8_MODEL_TYPES
        }
        if not floats:
            continue
        # The only float tensors allowed are a model's own float input/output at a QUANTIZE /
        # DEQUANTIZE boundary (a model with float I/O); anything else is a float island.
        if op.name == "QUANTIZE" and all(
            info.tensors[i].dtype in INT8_MODEL_TYPES or i in graph_inputs for i in op.inputs
        ):
            continue
        if op.name == "DEQUANTIZE" and all(
            info.tensors[i].dtype in INT8_MODEL_TYPES or i in graph_outputs for i in op.outputs
        ):
            continue
        found.append(
            f"{where} computes in {'/'.join(sorted(floats))} inside the int8 model; every op "
            "between the int8 input and output must be int8 (rewrite the layer it comes from "
            "with ops that have int8 kernels)"
        )

    if quantization == "int8":
        for label, idxs in (("input", info.inputs), ("output", info.outputs)):
            for idx in idxs:
                t = info.tensors[idx]
                if t.dtype != "INT8":
                    found.append(f"{label} {t.name!r} is {t.dtype}, expected INT8")
    return found


def validate(info: FlatbufferInfo, quantization: str) -> None:
    """Raise :class:`ConversionError` listing :func:`problems`, if there are any."""
    found = problems(info, quantization)
    if found:
        raise ConversionError(found)


def quantization_params(tensor: TensorInfo) -> tuple[float, int]:
    """``(scale, zero_point)`` of a per-tensor quantized tensor (``(1.0, 0)`` for float)."""
    if not tensor.scales:
        return 1.0, 0
    return float(tensor.scales[0]), int(tensor.zero_points[0] if tensor.zero_points else 0)


def numpy_dtype(tensor: TensorInfo) -> np.dtype:
    """The numpy dtype of a tensor type name."""
    return np.dtype(tensor.dtype.lower())


def as_input_batch(x: np.ndarray, input_shape) -> np.ndarray:
    """Features shaped as a batch for a flatbuffer's input tensor.

    Accepts one example or a batch, in the model's ``(frames, n_mels)`` layout or the
    flatbuffer's, which may add a trailing channel axis of 1 (``(frames, n_mels, 1)``, see
    :func:`keras_hrf.export.converter.tflite_input_shape`: same values in the same order).

    Args:
        x: ``[frames, n_mels]``, ``[N, frames, n_mels]`` or ``[N, frames, n_mels, 1]``.
        input_shape: The input tensor's shape, batch first (``[1, frames, n_mels(, 1)]``).

    Returns:
        ``x`` reshaped to ``(N,) + input_shape[1:]``.

    Raises:
        ValueError: ``x`` does not hold whole examples of the input's shape.
    """
    per = tuple(int(n) for n in input_shape[1:])
    core = per[:-1] if len(per) > 1 and per[-1] == 1 else per
    x = np.asarray(x)
    if x.shape in (core, per):
        x = x[None]
    if x.ndim not in (len(core) + 1, len(per) + 1) or tuple(x.shape[1 : 1 + len(core)]) != core:
        raise ValueError(
            f"samples have shape {x.shape}, the model input is {[int(n) for n in input_shape]} "
            "(batch 1)"
        )
    return x.reshape((len(x),) + per)
