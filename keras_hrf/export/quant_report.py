"""Per-layer quantization error of the int8 model against the float one, sorted by damage.

:func:`quant_report` runs TensorFlow's ``tf.lite.experimental.QuantizationDebugger`` on the
converter that :func:`keras_hrf.export.converter.convert` runs (:func:`~keras_hrf.export.converter.
make_converter`: same frozen batch-1 graph, full int8 with int8 input and output, per-channel
weights, the same seeded representative subset), so the int8 model it inspects is the deployed one
(checked: its logits equal those of :func:`~keras_hrf.export.converter.convert`'s flatbuffer). The
debugger adds a ``NumericVerify`` op after every quantized op that compares the op's dequantized
int8 output with the same op computed in float *on the same dequantized inputs*: each row is the
error that one op adds by itself, not the error accumulated from the ops before it.

The damage measure is ``rmse/scale``, the RMS error in int8 steps of the op's output tensor. Pure
rounding of a well-spread tensor gives ``1/sqrt(12) ~= 0.29``; much more means the op loses
precision beyond its output rounding (saturation at the calibrated range, coarse inputs to a
non-linear int8 kernel such as ``RSQRT`` or ``SOFTMAX``, weights that quantize badly).

It also measures the model end to end (float Keras logits vs int8 logits and argmax agreement) and
runs the *selective quantization* experiment the debugger supports: keep the worst ``N`` ops (or
all ops of one type) in float and see how much of the int8 error goes away. That is an analysis
only: a model with float ops is not a full-int8 model and does not run as intended under TFLite
Micro (:func:`keras_hrf.export.flatbuffer.problems` refuses it); it tells where a fix (bounded
attention logits, a better int8 LayerNorm, QAT) would pay off.

LiteRT without delegates. ``QuantizationDebugger`` runs its models in ``tf.lite.Interpreter``
with the default XNNPACK delegate, whose int8 ``BATCH_MATMUL`` in TensorFlow 2.21 ignores the zero
point of its second operand (found while writing this module: the attention ``A @ V`` outputs were
off by exactly ``zero_point(V) * scale(V)``, 18 int8 steps, while TFLite's builtin kernels, TFLite
Micro and ``ai_edge_litert`` agree with the float model). The debugger here is therefore run with
TFLite's builtin kernels (``BUILTIN_WITHOUT_DEFAULT_DELEGATES``), as
:mod:`keras_hrf.export.runtime_check` runs LiteRT.
"""

from __future__ import annotations

import dataclasses
import io
import math
import re
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from data_prep import int8 as quant
from keras_hrf import reparam, reports
from keras_hrf.export import flatbuffer
from keras_hrf.export import runtime_check as check_mod
from keras_hrf.export.converter import (
    _check_data,
    _converter_error,
    _quiet,
    _representative,
    device_graph,
    make_converter,
    tflite_input_shape,
)
from keras_hrf.export.flatbuffer import ConversionError

#: RMS error, in steps, of rounding a value spread evenly over many steps: ``1 / sqrt(12)``.
ROUNDING_RMSE_STEPS = 1.0 / math.sqrt(12.0)

#: Columns of :attr:`QuantReport.rows`, in order.
ROW_COLUMNS = (
    "rank",
    "op_type",
    "tensor",
    "layer",
    "scale",
    "zero_point",
    "num_elements",
    "rmse_scale",
    "max_abs_error",
    "mean_error",
    "stddev",
    "nonfinite",
    "tensor_name",
)

_NOTE_LOCAL = (
    "Each op is measured on its own (TFLite QuantizationDebugger: the float op gets the same "
    "dequantized inputs), so a row is the error that op adds, not the error accumulated before "
    "it. rmse/scale is the RMS error in int8 steps of the op's output (rounding alone: 0.29); "
    "max abs error is the mean over examples of the largest error. non-finite / overflow: the "
    "float op on the dequantized int8 inputs gave inf/NaN (e.g. RSQRT of a variance + epsilon "
    "that rounded to int8 zero, where the int8 kernel saturates); the other errors of such a "
    "row are over its finite elements."
)
_NOTE_SELECTIVE = (
    "Selective quantization is an analysis only: a model that keeps ops in float is not a "
    "full-int8 model and does not run as intended under TFLite Micro."
)


@dataclasses.dataclass
class QuantReport:
    """Per-layer and end-to-end quantization error of an int8 model (see :func:`quant_report`).

    Attributes:
        rows: One row per quantized op output (tensor), worst first (``rmse_scale`` descending),
            with the columns of :data:`ROW_COLUMNS`: ``op_type`` (TFLite builtin), ``tensor``
            (short name: Keras layer / op), ``layer`` (the Keras layer), ``scale`` and
            ``zero_point`` of the int8 tensor, ``num_elements``, ``rmse_scale`` (RMS error in
            int8 steps), ``max_abs_error`` and ``mean_error`` (float units, int8 minus float),
            ``stddev`` of the error, ``nonfinite`` (share of elements where the float op,
            run on the dequantized int8 inputs, gave inf/NaN: e.g. ``RSQRT`` of a variance
            that rounded to 0, where the int8 kernel saturates; the other errors are over the
            finite elements), ``tensor_name`` (the converter's full name, which
            ``QuantizationDebugOptions(denylisted_nodes=...)`` takes).
        end_to_end: Float Keras logits vs int8 logits on the evaluation examples:
            ``logits_rmse``, ``logits_max_abs``, ``agreement`` (argmax), ``num_examples``,
            ``int8_model`` (``"given"`` or ``"rebuilt"``) and, for a given flatbuffer,
            ``rebuilt_max_diff_steps`` (largest output difference between it and the model the
            debugger rebuilt; 0-1 when both come from the same model and calibration data).
        selective: The selective-quantization experiment, one row per variant: ``kept_float``
            (``"none"``, ``"top N"`` or an op type), ``kind`` (``"none"``, ``"nodes"``,
            ``"op_type"``), ``nodes`` (tensors asked to stay float), ``float_ops`` (ops that
            compute in float in the result), ``logits_rmse``, ``rmse_change`` (relative to full
            int8, negative = better), ``agreement``, ``size_bytes``, ``error`` (the
            quantizer's message if the variant failed, else empty).
        model_name: Name of the Keras model.
        num_debug: Examples the errors were measured on.
        num_samples: Representative examples used for calibration.
    """

    rows: pd.DataFrame
    end_to_end: dict[str, Any]
    selective: pd.DataFrame
    model_name: str = ""
    num_debug: int = 0
    num_samples: int = 0

    def by_op_type(self) -> pd.DataFrame:
        """The model-level view: which op types lose most.

        Returns:
            One row per op type, worst first (mean ``rmse_scale`` descending): ``op_type``,
            ``tensors``, ``mean_rmse_scale``, ``max_rmse_scale``, ``worst_tensor``,
            ``overflow_tensors`` (tensors with a non-finite float reference), and from the
            selective experiment (where it was run) ``logits_rmse_if_float``, ``rmse_change`` and
            ``agreement_if_float``: the end-to-end error with every op of that type kept in float.
        """
        r = self.rows
        if r.empty:
            return pd.DataFrame(
                columns=[
                    "op_type",
                    "tensors",
                    "mean_rmse_scale",
                    "max_rmse_scale",
                    "worst_tensor",
                    "overflow_tensors",
                ]
            )
        g = r.groupby("op_type", sort=False)
        out = pd.DataFrame(
            {
                "tensors": g.size(),
                "mean_rmse_scale": g["rmse_scale"].mean(),
                "max_rmse_scale": g["rmse_scale"].max(),
                # rows are sorted worst first, so the first of each group is its worst tensor
                "worst_tensor": g["tensor"].first(),
                "overflow_tensors": g["nonfinite"].apply(lambda v: int((v > 0).sum())),
            }
        )
        sel = self.selective
        if not sel.empty:
            ops = sel[(sel["kind"] == "op_type") & (sel["error"] == "")].set_index("kept_float")
            out["logits_rmse_if_float"] = ops["logits_rmse"].reindex(out.index)
            out["rmse_change"] = ops["rmse_change"].reindex(out.index)
            out["agreement_if_float"] = ops["agreement"].reindex(out.index)
        out = out.sort_values("mean_rmse_scale", ascending=False, kind="stable")
        return out.rename_axis("op_type").reset_index()

    def to_markdown(self, top: int = 20) -> str:
        """The report as Markdown: end to end, the ``top`` worst tensors, op types, selective."""
        e = self.end_to_end
        lines = [
            f"### Quantization report: {self.model_name or 'model'} (int8 vs float)",
            "",
            f"End to end on {e['num_examples']} examples: logits RMSE {e['logits_rmse']:.4f} "
            f"(largest error {e['logits_max_abs']:.4f}), argmax agreement "
            f"{100 * e['agreement']:.1f} % ({e['int8_model']} int8 model"
            + (
                f"; the debugger's rebuilt model differs from it by at most "
                f"{e['rebuilt_max_diff_steps']} output steps)"
                if e.get("rebuilt_max_diff_steps") is not None
                else ")"
            ),
            "",
            f"Worst {min(top, len(self.rows))} of {len(self.rows)} quantized tensors "
            f"({self.num_debug} examples, calibration on {self.num_samples}). {_NOTE_LOCAL}",
            "",
        ]
        head = ["#", "op", "tensor", "scale", "zp", "elements", "rmse/scale", "max abs err",
                "mean err", "non-finite"]  # fmt: skip
        body = [
            [
                str(r.rank),
                r.op_type,
                f"`{r.tensor}`",
                f"{r.scale:.4g}",
                str(r.zero_point),
                str(r.num_elements),
                f"{r.rmse_scale:.2f}",
                f"{r.max_abs_error:.4g}",
                f"{r.mean_error:+.3g}",
                f"{100 * r.nonfinite:.2g} %" if r.nonfinite > 0 else "",
            ]
            for r in self.rows.head(top).itertuples()
        ]
        lines += _table(head, body)
        ops = self.by_op_type()
        has_sel = "logits_rmse_if_float" in ops.columns
        lines += ["", "By op type (worst mean rmse/scale first):", ""]
        head = ["op", "tensors", "mean rmse/scale", "max rmse/scale", "worst tensor", "overflow"]
        if has_sel:
            head += ["logits RMSE if kept float", "change", "agreement if float"]
        body = []
        for r in ops.itertuples():
            row = [
                r.op_type,
                str(r.tensors),
                f"{r.mean_rmse_scale:.2f}",
                f"{r.max_rmse_scale:.2f}",
                f"`{r.worst_tensor}`",
                str(r.overflow_tensors) if r.overflow_tensors else "",
            ]
            if has_sel:
                row += [
                    _num(r.logits_rmse_if_float, ".4f"),
                    _pct_change(r.rmse_change),
                    _pct(r.agreement_if_float),
                ]
            body.append(row)
        lines += _table(head, body)
        if not self.selective.empty:
            lines += ["", f"Selective quantization. {_NOTE_SELECTIVE}", ""]
            head = ["kept in float", "tensors", "float ops", "logits RMSE", "change", "agreement",
                    "size"]  # fmt: skip
            body = [
                [
                    r.kept_float,
                    str(r.nodes),
                    str(r.float_ops),
                    _num(r.logits_rmse, ".4f"),
                    _pct_change(r.rmse_change),
                    _pct(r.agreement),
                    f"{r.size_bytes:,}" if r.size_bytes else "-",
                ]
                if not r.error
                else [r.kept_float, str(r.nodes), "-", f"failed: {r.error[:80]}", "-", "-", "-"]
                for r in self.selective.itertuples()
            ]
            lines += _table(head, body)
        return "\n".join(lines) + "\n"

    def plot(self, path: str | Path, top: int = 20) -> Path:
        """A PNG: the ``top`` worst tensors and the op types, by ``rmse_scale`` (matplotlib, Agg).

        Returns:
            The path written.
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        path = Path(path)
        rows = self.rows.head(top).iloc[::-1]
        ops = self.by_op_type().iloc[::-1]
        types = list(self.by_op_type()["op_type"])
        cmap = plt.get_cmap("tab20")
        colour = {t: cmap(i % 20) for i, t in enumerate(types)}
        fig, (ax1, ax2) = plt.subplots(
            1,
            2,
            figsize=(13, max(3.5, 0.32 * max(len(rows), len(ops)) + 1.5)),
            gridspec_kw={"width_ratios": [2, 1]},
        )
        ax1.barh(
            [f"{r.op_type}  {r.tensor}" for r in rows.itertuples()],
            rows["rmse_scale"],
            color=[colour[t] for t in rows["op_type"]],
        )
        ax1.set_title(f"worst {len(rows)} tensors: RMS error in int8 steps (one op at a time)")
        ax2.barh(ops["op_type"], ops["max_rmse_scale"], color="0.8")
        ax2.barh(
            ops["op_type"],
            ops["mean_rmse_scale"],
            color=[colour[t] for t in ops["op_type"]],
        )
        ax2.set_title("by op type: mean (colour), max (grey)")
        # One bad tensor can be 100x the rest: a log axis keeps the others readable.
        log = bool(len(rows)) and float(rows["rmse_scale"].max()) > 10 * ROUNDING_RMSE_STEPS
        for ax in (ax1, ax2):
            ax.axvline(ROUNDING_RMSE_STEPS, color="k", ls="--", lw=0.8)
            ax.set_xlabel("rmse / scale (dashed: rounding only, 0.29)")
            ax.tick_params(axis="y", labelsize=7)
            if log:
                ax.set_xscale("log")
                ax.set_xlim(left=0.05)
        e = self.end_to_end
        fig.suptitle(
            f"{self.model_name}: int8 vs float logits RMSE {e['logits_rmse']:.3f}, "
            f"agreement {100 * e['agreement']:.1f} %"
        )
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable figures (NaN as ``None``)."""
        return _plain(
            {
                "model": self.model_name,
                "num_debug": self.num_debug,
                "num_samples": self.num_samples,
                "end_to_end": dict(self.end_to_end),
                "rows": self.rows.to_dict(orient="records"),
                "by_op_type": self.by_op_type().to_dict(orient="records"),
                "selective": self.selective.to_dict(orient="records"),
            }
        )


def _plain(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _table(head: list[str], body: list[list[str]]) -> list[str]:
    return reports.markdown_table(head, body).splitlines()


def _num(v: float | None, fmt: str) -> str:
    return reports.num(v, fmt)


def _pct(v: float | None) -> str:
    return reports.pct(v, "%")


def _pct_change(v: float | None) -> str:
    return reports.pct(v, "%", signed=True)


# ------------------------------------------------------------------------------------ names


def _layer_of(part: str, layer_names: set[str]) -> tuple[str, str] | None:
    # "model_1/block0_ffn_norm_1/Rsqrt" -> ("block0_ffn_norm", "Rsqrt"). Rebuilt models (the
    # batch-1 copy) get "_1" suffixes on the model and layer names; strip them to match.
    comps = part.split("/")
    for i, c in enumerate(comps):
        name = c
        while True:
            if name in layer_names:
                return name, "/".join(comps[i + 1 :])
            stripped = re.sub(r"_\d+$", "", name)
            if stripped == name:
                break
            name = stripped
    return None


#: Fused-name parts that identify the main op of a FULLY_CONNECTED / CONV_2D output.
_MAIN_PART = re.compile(r"Tensordot|MatMul|BiasAdd|convolution|Conv2D|einsum", re.IGNORECASE)


def short_tensor_name(
    tensor_name: str, op_type: str, layer_names: set[str], output_layer: str | None = None
) -> tuple[str, str]:
    """A converter tensor name shortened to the Keras layer (and the op inside it).

    The converter names a fused op's output by joining the names of the TensorFlow ops it fused
    with ``;`` (e.g. a LayerNorm's last ``add`` + the next ``Dense``'s ``Tensordot`` and
    ``BiasAdd``). The main op is the last part that names a matmul/convolution for
    ``FULLY_CONNECTED`` / ``CONV_2D``, else the last part that names a Keras layer.

    Args:
        tensor_name: The converter's tensor name.
        op_type: The TFLite builtin that produced it.
        layer_names: Names of the Keras model's layers.
        output_layer: The layer whose output is the model output (named ``Identity``).

    Returns:
        ``(short name, layer)``; ``(tensor_name, "")`` when no Keras layer matches.
    """
    parts = [p for p in tensor_name.split(";") if p]
    found = [(p, _layer_of(p, layer_names)) for p in parts]
    found = [(p, m) for p, m in found if m is not None]
    if not found:
        if output_layer and re.fullmatch(r"Identity\d*", tensor_name):
            return f"{output_layer} (output)", output_layer
        return tensor_name, ""
    pick = found[-1]
    if op_type in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D"):
        mains = [f for f in found if _MAIN_PART.search(f[0].split("/")[-1])]
        pick = mains[-1] if mains else pick
    layer, rest = pick[1]
    return (f"{layer}/{rest}" if rest else layer), layer


# ------------------------------------------------------------------------------------ debugger


def _debugger(converter, debug_dataset, options):
    """``QuantizationDebugger`` whose interpreter uses TFLite's builtin kernels, no XNNPACK."""
    import tensorflow as tf
    from tensorflow.lite.python import interpreter as tfl_interpreter

    class _BuiltinKernelsDebugger(tf.lite.experimental.QuantizationDebugger):
        # The debugger builds tf.lite.Interpreter(model_content=...) with the default XNNPACK
        # delegate, whose int8 BATCH_MATMUL ignores the second operand's zero point (module
        # docstring). Same model, same options, builtin kernels.
        def _init_from_converter(self, options, converter, calibrated_model=None, float_model=None):
            super()._init_from_converter(options, converter, calibrated_model, float_model)
            self._quant_interpreter = tfl_interpreter.Interpreter(
                model_content=self.quant_model,
                experimental_op_resolver_type=(
                    tfl_interpreter.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
                ),
            )

    return _BuiltinKernelsDebugger(
        converter=converter, debug_dataset=debug_dataset, debug_options=options
    )


def _finite(diffs: np.ndarray) -> np.ndarray:
    d = np.asarray(diffs, dtype=np.float64).ravel()
    return d[np.isfinite(d)]


def _finite_metric(fn):
    def metric(diffs: np.ndarray) -> float:
        d = _finite(diffs)
        return float(fn(d)) if d.size else float("nan")

    return metric


#: Layer metrics given to the debugger: its defaults over the *finite* differences only, and the
#: share of non-finite ones. The float op runs on the dequantized int8 inputs, so it can overflow
#: where the Keras model does not: ``RSQRT`` of a variance (+ epsilon) that rounded to int8 zero
#: is ``inf`` (while the int8 kernel saturates), and one such element would make the RMSE ``inf``.
LAYER_METRICS = {
    "mean_squared_error": _finite_metric(lambda d: np.mean(d**2)),
    "max_abs_error": _finite_metric(lambda d: np.max(np.abs(d))),
    "mean_error": _finite_metric(np.mean),
    "stddev": _finite_metric(np.std),
    "nonfinite": lambda diffs: float(np.mean(~np.isfinite(np.asarray(diffs)))),
}


def _layer_frame(debugger, model: keras.Model) -> pd.DataFrame:
    buf = io.StringIO()
    debugger.layer_statistics_dump(buf)
    buf.seek(0)
    df = pd.read_csv(buf)
    df["rmse_scale"] = np.sqrt(df["mean_squared_error"]) / df["scale"]
    names = {layer.name for layer in model.layers}
    try:
        output_layer = model.outputs[0]._keras_history[0].name
    except (AttributeError, IndexError, TypeError):
        output_layer = model.layers[-1].name if model.layers else None
    short = [
        short_tensor_name(n, op, names, output_layer)
        for n, op in zip(df["tensor_name"], df["op_name"], strict=True)
    ]
    df["tensor"] = [s for s, _ in short]
    df["layer"] = [layer for _, layer in short]
    df = df.rename(columns={"op_name": "op_type"})
    df["zero_point"] = df["zero_point"].astype(int)
    df["num_elements"] = df["num_elements"].round().astype(int)
    df["rmse_scale"] = df["rmse_scale"].fillna(0.0)
    for col in ("max_abs_error", "mean_error", "stddev"):
        df[col] = df[col].fillna(0.0)
    df = df.sort_values("rmse_scale", ascending=False, kind="stable").reset_index(drop=True)
    df["rank"] = np.arange(1, len(df) + 1)
    return df[list(ROW_COLUMNS)]


def _logit_errors(int8_bytes: bytes, x: np.ndarray, float_logits: np.ndarray) -> dict[str, Any]:
    y = check_mod.predict(int8_bytes, x)
    err = y - float_logits
    return {
        "logits": y,
        "logits_rmse": float(np.sqrt(np.mean(err**2))),
        "logits_max_abs": float(np.max(np.abs(err))),
        "agreement": float(np.mean(y.argmax(-1) == float_logits.argmax(-1))),
    }


def _float_ops(int8_bytes: bytes) -> int:
    info = flatbuffer.parse(int8_bytes)
    return sum(
        1
        for op in info.ops
        if op.name not in ("DEQUANTIZE", "QUANTIZE")
        and any(o >= 0 and info.tensors[o].dtype == "FLOAT32" for o in op.outputs)
    )


def quant_report(
    model: keras.Model,
    data: np.ndarray,
    *,
    representative_data: np.ndarray | None = None,
    int8_model: bytes | None = None,
    num_samples: int = 200,
    seed: int = 0,
    num_debug: int = 100,
    keep_float: tuple[int, ...] = (1, 3, 5, 10),
    op_types: bool = True,
    merge: bool = False,
    space_to_depth: bool = True,
    one_channel_depthwise: bool = True,
) -> QuantReport:
    """Per-layer quantization error of the full-int8 model against the float Keras model.

    The int8 model is the one :func:`keras_hrf.export.converter.convert` makes of ``model`` with
    ``representative_data``, ``num_samples`` and ``seed`` (the same converter), inspected with
    ``tf.lite.experimental.QuantizationDebugger``. See the module docstring for what the numbers
    mean. A model that keeps ops in float (the selective experiment) is for analysis only: it does
    not run as intended under TFLite Micro.

    Args:
        model: The float model as deployed (HRF layers merged, :func:`keras_hrf.reparam.merge`).
        data: float32 ``[N, frames, n_mels]`` normalised features to measure on (held-out
            features measure saturation that calibration data hides); a seeded random subset of
            ``num_debug`` examples is used.
        representative_data: Calibration features (default: ``data``); pass the run's
            ``representative.npy`` to inspect the model that was exported.
        int8_model: The deployed int8 flatbuffer, to measure end to end (default: the model the
            debugger rebuilds, which gives the same logits when the calibration is the same).
        num_samples: Representative examples for calibration (as in ``convert``).
        seed: Seed of the calibration subset (as in ``convert``); the evaluation subset uses
            ``seed + 1``.
        num_debug: Examples to measure on.
        keep_float: Selective experiment: keep the worst ``N`` tensors in float, for each ``N``.
            Empty: skip.
        op_types: Selective experiment: keep all ops of one type in float, for each op type
            that adds error (not for ops that only move data, such as ``RESHAPE``).
        merge: Merge HRF layers first instead of refusing a model that still has them.
        space_to_depth, one_channel_depthwise: The graph rewrites of
            :func:`keras_hrf.export.converter.convert` (on by default there and here, so that
            the debugger's int8 model is the deployed one).

    Returns:
        The :class:`QuantReport`.

    Raises:
        ConversionError: HRF layers left (without ``merge``), bad data, or a converter failure.
    """
    import tensorflow as tf

    if not isinstance(model, keras.Model):
        raise ConversionError(f"expected a keras.Model, got {type(model).__name__}")
    if reparam.has_hrf(model):
        if not merge:
            raise ConversionError(
                f"model {model.name!r} still has HRF layers: call keras_hrf.reparam.merge(model) "
                "first (or pass merge=True); the deployed model is the merged one"
            )
        model = reparam.merge(model)
    if num_debug < 1:
        raise ConversionError(f"num_debug must be >= 1, got {num_debug}")
    shape = tuple(int(n) for n in model.inputs[0].shape[1:])
    data = _check_data(data, shape)
    rep = data if representative_data is None else representative_data
    model = device_graph(
        model, space_to_depth=space_to_depth, one_channel_depthwise=one_channel_depthwise
    )
    converter = make_converter(model, rep, "int8", num_samples, seed)

    eval_gen = _representative(data, num_debug, seed + 1, shape)
    x = np.concatenate([batch[0] for batch in eval_gen()])
    flat_shape = (1,) + tflite_input_shape(model)
    in_params: list[tuple[float, int]] = []

    def debug_dataset():
        # The debugger would quantize float inputs with np.round and a wrapping int8 cast; feed
        # int8 quantized as TFLite (and check.predict) do: round half away, clamp.
        for i in range(len(x)):
            yield [quant.quantize(x[i : i + 1].reshape(flat_shape), *in_params[0])]

    def _options(**kw):
        return tf.lite.experimental.QuantizationDebugOptions(
            layer_debug_metrics=LAYER_METRICS, **kw
        )

    try:
        with _quiet():
            debugger = _debugger(converter, debug_dataset, _options(fully_quantize=True))
            rebuilt = debugger.get_nondebug_quantized_model()
            in_params.append(flatbuffer.quantization_params(flatbuffer.parse(rebuilt).input))
            debugger.run()
    except ConversionError:
        raise
    except Exception as e:  # the converter / quantizer raise many types
        raise _converter_error(e) from e
    rows = _layer_frame(debugger, model)

    float_logits = np.asarray(model.predict(x, verbose=0, batch_size=64), dtype=np.float32)
    base = _logit_errors(int8_model if int8_model is not None else rebuilt, x, float_logits)
    end_to_end = {k: v for k, v in base.items() if k != "logits"}
    end_to_end["num_examples"] = len(x)
    end_to_end["int8_model"] = "given" if int8_model is not None else "rebuilt"
    if int8_model is not None:
        info = flatbuffer.parse(int8_model)
        s, z = flatbuffer.quantization_params(info.output)
        a = quant.quantize(base["logits"], s, z).astype(int)
        b = quant.quantize(check_mod.predict(rebuilt, x), s, z).astype(int)
        end_to_end["rebuilt_max_diff_steps"] = int(np.max(np.abs(a - b)))

    variants: list[tuple[str, str, dict]] = [("none", "none", {})]
    names = list(rows["tensor_name"])
    for n in sorted({int(n) for n in keep_float if n > 0}):
        if n <= len(names):
            variants.append((f"top {n}", "nodes", {"denylisted_nodes": names[:n]}))
    if op_types:
        # Op types that only move data (RESHAPE, STRIDED_SLICE, ...) add no error: skipped.
        lossy = rows.groupby("op_type", sort=False)["rmse_scale"].max()
        for t in lossy.index[lossy > 1e-6]:
            variants.append((t, "op_type", {"denylisted_ops": [t]}))
    rebuilt_base = _logit_errors(rebuilt, x, float_logits)["logits_rmse"]
    sel = []
    for label, kind, kw in variants:
        entry = {"kept_float": label, "kind": kind, "error": ""}
        entry["nodes"] = (
            len(kw.get("denylisted_nodes", ()))
            if kind != "op_type"
            else int((rows["op_type"] == label).sum())
        )
        try:
            if kind == "none":
                flat = rebuilt
            else:
                with _quiet():
                    debugger.options = _options(fully_quantize=True, **kw)
                    flat = debugger.get_nondebug_quantized_model()
            m = _logit_errors(flat, x, float_logits)
            entry |= {
                "float_ops": _float_ops(flat),
                "logits_rmse": m["logits_rmse"],
                "rmse_change": (m["logits_rmse"] - rebuilt_base) / rebuilt_base
                if rebuilt_base > 0
                else 0.0,
                "agreement": m["agreement"],
                "size_bytes": len(flat),
            }
        except Exception as e:  # one failed variant must not lose the report
            msg = str(e).strip().splitlines()
            entry |= {
                "float_ops": 0,
                "logits_rmse": float("nan"),
                "rmse_change": float("nan"),
                "agreement": float("nan"),
                "size_bytes": 0,
                "error": msg[0] if msg else type(e).__name__,
            }
        sel.append(entry)
    selective = pd.DataFrame(
        sel,
        columns=[
            "kept_float",
            "kind",
            "nodes",
            "float_ops",
            "logits_rmse",
            "rmse_change",
            "agreement",
            "size_bytes",
            "error",
        ],
    )
    return QuantReport(
        rows=rows,
        end_to_end=end_to_end,
        selective=selective,
        model_name=model.name,
        num_debug=len(x),
        num_samples=min(num_samples, len(rep)),
    )


__all__ = ["ROUNDING_RMSE_STEPS", "ROW_COLUMNS", "QuantReport", "quant_report", "short_tensor_name"]
