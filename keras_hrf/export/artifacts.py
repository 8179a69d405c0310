"""The export folder: flatbuffers, C sources, ``model_meta.json`` and ``REPORT.md``.

:func:`export` writes everything a device needs into a temporary folder next to ``out_dir`` and
swaps it in at the end, so ``out_dir`` is either the complete old export or the complete new one,
never a mixture. The metadata is a :class:`keras_hrf.device.ModelMeta`, read back by
:func:`keras_hrf.device.load_meta`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from keras_hrf import reparam, reports
from keras_hrf.device.meta import (
    FILES,
    META_SCHEMA_VERSION,
    ArenaSpec,
    ModelMeta,
    TensorSpec,
)
from keras_hrf.export import csource, firmware_report, flatbuffer, frontend_tables, slim
from keras_hrf.export.converter import convert
from keras_hrf.export.flatbuffer import ConversionError
from keras_hrf.export.runtime_check import CheckReport, run_check
from keras_hrf.layers.layer_norm import LayerNorm

#: Samples checked in the runtimes when ``export`` is given none.
DEFAULT_CHECK_SAMPLES = 32


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """What :func:`export` wrote.

    Attributes:
        out_dir: The export folder.
        files: Role (see :data:`FILES`) -> path.
        report: The int8 model's :class:`~keras_hrf.export.runtime_check.CheckReport`.
        meta: The ``model_meta.json`` content.
        int8_bytes: The int8 flatbuffer (as in ``model_int8.tflite``).
        float32_bytes: The float32 flatbuffer.
        firmware: The firmware measurements (None where no target was built).
    """

    out_dir: Path
    files: dict[str, Path]
    report: CheckReport
    meta: ModelMeta
    int8_bytes: bytes
    float32_bytes: bytes
    firmware: firmware_report.FirmwareReport | None = None


def versions() -> dict[str, str]:
    """Versions of the packages that produced an export (recorded in model_meta.json)."""
    import importlib.metadata as md

    import keras_hrf

    out = {"keras_hrf": keras_hrf.__version__, "keras": keras.__version__}
    for dist in ("tensorflow", "ai-edge-litert", "tflite-micro"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return out


def _pick_example(int8_out: np.ndarray, reference: np.ndarray) -> int:
    # The device example should give the same label on any correct TFLM build, so take the sample
    # whose int8 top-1 leads its runner-up by the most steps (among those where int8 and float
    # agree): optimised kernels differing by a step or two cannot flip it.
    top2 = np.sort(int8_out.astype(np.int32), axis=-1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    agree = int8_out.argmax(-1) == reference.argmax(-1)
    margin = np.where(agree, margin, margin - 1000)
    return int(margin.argmax())


def _validate_export_args(model, labels, feature_params, normalizer, shape) -> list[str]:
    labels = list(labels)
    n_out = int(model.outputs[0].shape[-1])
    if not all(isinstance(v, str) and v for v in labels) or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be distinct non-empty strings, got {labels!r}")
    if len(labels) != n_out:
        raise ValueError(f"{len(labels)} labels for a model with {n_out} outputs")
    frames, mels = shape
    if getattr(feature_params, "n_mels", mels) != mels:
        raise ValueError(f"feature_params.n_mels={feature_params.n_mels}, the model takes {mels}")
    if getattr(feature_params, "frames", frames) != frames:
        raise ValueError(
            f"feature_params.frames={feature_params.frames}, the model takes {frames} frames"
        )
    if np.asarray(normalizer.mean).size != mels:
        raise ValueError(f"the normaliser has {np.asarray(normalizer.mean).size} bands, not {mels}")
    return labels


def export(
    model: keras.Model,
    out_dir: str | os.PathLike,
    *,
    representative_data: np.ndarray,
    labels: Sequence[str],
    feature_params,
    normalizer,
    origin: dict | None = None,
    samples: np.ndarray | None = None,
    overwrite: bool = False,
    merge: bool = False,
    num_samples: int = 200,
    seed: int = 0,
    layer_norm: str | None = None,
    strip_names: bool = True,
    per_channel: bool = True,
    micro_slim: bool = True,
    space_to_depth: bool = True,
    one_channel_depthwise: bool = True,
    project_kernels: bool = True,
    firmware: Sequence[str] | str | None = "auto",
    firmware_inputs: int = 32,
    trees=None,
) -> ExportResult:
    """Convert, check and write everything a device needs into ``out_dir``.

    Files (see :data:`FILES`): ``model_int8.tflite``, ``model_float32.tflite``, ``model_data.h``
    / ``model_data.cc`` (the int8 flatbuffer as a 16-byte aligned C array, the labels, sizing
    macros such as ``KERAS_HRF_ARENA_SIZE``), ``op_resolver.h`` (a ``MicroMutableOpResolver`` with
    exactly the model's ops), ``example_input.h`` (one quantized input and its expected label),
    ``frontend_tables.h`` / ``frontend_tables.c`` (the CMSIS-DSP front-end's tables, see
    :mod:`keras_hrf.export.frontend_tables`), ``model_meta.json`` (read it with
    :func:`load_meta`) and ``REPORT.md``.

    Args:
        model: The trained model, HRF layers merged (or pass ``merge=True``).
        out_dir: The export folder. It is written atomically: built next to it and swapped in.
        representative_data: float32 ``[N, frames, n_mels]`` normalised training features, for
            int8 calibration.
        labels: Class names, in output order.
        feature_params: The :class:`data_prep.features.FeatureParams` the features were made
            with (stored via ``to_dict()``).
        normalizer: The :class:`data_prep.features.Normalizer` fitted on the training split.
        origin: JSON-serialisable provenance (family, size, HRF configuration, corpus, fold,
            seed, ...); merged over what is derived from the model.
        samples: float32 ``[N, frames, n_mels]`` normalised features to check the runtimes on
            (held-out data is best); default: 32 random examples of ``representative_data``.
        overwrite: Replace an existing ``out_dir``; without it an existing folder is an error.
        merge: Merge HRF layers instead of refusing a model that has them.
        num_samples: Representative dataset size for int8 calibration.
        layer_norm: Convert every LayerNorm with this lowering (``"rsqrt"``, ``"l2"``,
            ``"pool"``, see
            :mod:`keras_hrf.layers.layer_norm`; the float function is unchanged); ``None``
            keeps the model's own.
        seed: Seed of the calibration subset and of the default check samples.
        strip_names: Remove the internal tensor names from the int8 flatbuffer (TFLM and
            LiteRT never read them; 8 % of a light model's flash), writing them to
            ``tensor_names.json`` instead (:mod:`keras_hrf.export.slim`).
        per_channel: Per-output-channel int8 weight scales (default). ``False``: one scale per
            weight tensor, 18 KB smaller for the light presets with no measurable int8 loss on
            the RAVDESS runs (``benchmarks/per_tensor.py``); refused for models with a 3-D
            FULLY_CONNECTED (the Transformers), which CMSIS-NN's per-tensor path aborts on;
            the QAT mirror
            (:mod:`keras_hrf.quantization.qat`) fake-quantizes per channel, so a QAT-tuned model
            is best exported per channel.
        micro_slim: The firmware's C array (``model_data.cc``) holds the flatbuffer slimmed for
            TFLite Micro (:func:`keras_hrf.export.slim.micro_flatbuffer`: one zero point per
            weight tensor, one scale per bias, no names or metadata; 16 KB less flash for the
            light ds_cnn), checked to give TFLM's outputs of ``model_int8.tflite`` exactly;
            ``model_int8.tflite`` stays complete for LiteRT. ``False``: the C array holds
            ``model_int8.tflite`` as it is.
        space_to_depth: Convert the int8 model's strided few-channel convolutions (ds_cnn's
            stem) as space-to-depth + stride-1 convolution
            (:func:`keras_hrf.reparam.space_to_depth_convs`: the same function, 9 % fewer
            Cortex-M4 instructions for the light ds_cnn). The float32 model (LiteRT on phones)
            is converted as it is.
        one_channel_depthwise: Convert the int8 model's convolutions over one input channel
            (the Transformers' first stem convolution) as depthwise convolutions
            (:func:`keras_hrf.reparam.one_channel_convs_to_depthwise`: the same function and
            weights, 1.5 M fewer Cortex-M4 instructions for the light Conformer). The float32
            model is converted as it is.
        project_kernels: ``op_resolver.h`` registers the project's own int8 kernels where
            the model has their ops (:data:`keras_hrf.export.csource.PROJECT_KERNELS`: LOGISTIC,
            SOFTMAX and RSQRT from tables, MEAN over adjacent axes, ADD and SUB with their input
            rescalings from tables, MUL broadcast per row or column, DEPTHWISE_CONV_2D over
            one input channel, FULLY_CONNECTED and BATCH_MATMUL over several rows; the same
            outputs as TFLM's); ``False``: TFLM's kernels only.
        firmware: Targets to build and run the real firmware on (``"host"``, ``"m4"``,
            ``"m55"``; :mod:`keras_hrf.export.firmware_report`): their measurements go into
            ``REPORT.md`` and ``firmware.json``, and the arena measured on Cortex-M becomes the
            recommended one. ``"auto"`` (default): every target (or those of
            ``$KERAS_HRF_FIRMWARE``: ``off`` or e.g. ``m4,m55``) whose tools and trees are
            present (see ``trees``), skipped silently where none is; ``None``: none.
        firmware_inputs: How many of the checked samples (evenly spaced) the firmware runs.
        trees: :class:`keras_hrf.device.firmware.Trees` (default: from the environment,
            ``KERAS_HRF_TFLM_TREE`` / ``KERAS_HRF_TFLM_TREE_CORTEX_M``).

    Returns:
        An :class:`ExportResult`.

    Raises:
        FileExistsError: ``out_dir`` exists and ``overwrite`` is False (nothing is touched).
        ConversionError: the model cannot be converted, or does not run under TFLM.
        ValueError: inconsistent labels / feature parameters / normaliser, or a non-JSON
            ``origin``.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True to replace it")
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if not isinstance(model, keras.Model) or len(model.inputs) != 1:
        raise ConversionError("export needs a functional keras.Model with one input")
    shape = tuple(int(n) for n in model.inputs[0].shape[1:])
    labels = _validate_export_args(model, labels, feature_params, normalizer, shape)
    if layer_norm is not None:
        model = reparam.set_layer_norm_lowering(model, layer_norm)

    had_hrf = reparam.has_hrf(model)
    hrf_names = [layer.name for layer in reparam.hrf_layers(model)]
    int8 = convert(
        model,
        representative_data,
        "int8",
        merge=merge,
        num_samples=num_samples,
        seed=seed,
        per_channel=per_channel,
        space_to_depth=space_to_depth,
        one_channel_depthwise=one_channel_depthwise,
    )
    tensor_names = None
    if strip_names:
        int8, tensor_names = slim.strip_tensor_names(int8)
    deployed = reparam.merge(model) if had_hrf else model
    float32 = convert(deployed, None, "float32", space_to_depth=False, one_channel_depthwise=False)

    rep = np.asarray(representative_data, dtype=np.float32)
    sample_rows, sample_source = None, "samples"
    if samples is None:
        rows = np.random.default_rng(seed).permutation(len(rep))[:DEFAULT_CHECK_SAMPLES]
        sample_rows = np.sort(rows)
        samples, sample_source = rep[sample_rows], "representative_data"
    samples = np.asarray(samples, dtype=np.float32)
    report, outputs = run_check(int8, samples, keras_model=deployed)
    if not report.ok:
        reasons = report.problems + [
            f"TFLM refuses {op}: {why}" for op, why in report.tflm_unsupported_ops.items()
        ]
        raise ConversionError(reasons or report.tflm_errors or ["TFLM could not run the model"])

    # The example for the device: TFLM's own prediction, so that main.cc can check itself.
    in_scale, in_zero = report.input["scale"], report.input["zero_point"]
    q_samples, tflm_out = outputs["input"], outputs["tflm"]
    micro = _micro_flatbuffer(int8, q_samples, tflm_out) if micro_slim else int8
    example = _pick_example(tflm_out, outputs["float"])
    expected = int(tflm_out[example].argmax())

    origin = dict(origin or {})
    derived = {
        "model_name": model.name,
        "params": int(deployed.count_params()),
        "input_shape": list(shape),
        # Merged here, or before export from an HRF run (its origin names the HRF config).
        "merged_from_hrf": had_hrf or origin.get("hrf") is not None,
        "hrf_layers": hrf_names,
        "layer_norm_lowering": sorted(
            {layer.lowering for layer in deployed.layers if isinstance(layer, LayerNorm)}
        ),
        "weight_scales": "per-channel" if per_channel else "per-tensor",
    }

    def make_meta(arena: ArenaSpec, files: dict[str, str]) -> ModelMeta:
        return ModelMeta(
            schema_version=META_SCHEMA_VERSION,
            labels=tuple(labels),
            feature_params=feature_params,
            normalizer=normalizer,
            input=TensorSpec.from_dict(report.input),
            output=TensorSpec.from_dict(report.output),
            arena=arena,
            ops=tuple(report.op_set),
            op_counts=report.op_counts,
            sizes={
                "int8_bytes": len(int8),
                "float32_bytes": len(float32),
                "weight_bytes": report.weight_bytes,
                "int8_breakdown": slim.size_breakdown(int8),
                "micro_bytes": len(micro),
                "micro_breakdown": slim.size_breakdown(micro),
            },
            macs=report.macs,
            check={
                "num_samples": report.num_samples,
                "litert_tflm_max_diff_int8_steps": report.litert_tflm_max_diff,
                "argmax_agreement_with_float": report.argmax_agreement,
                "float_max_abs_diff": report.float_max_abs_diff,
            },
            example={
                # Index into the checked samples, or into representative_data when none were given.
                "source": sample_source,
                "sample_index": example if sample_rows is None else int(sample_rows[example]),
                "expected_index": expected,
                "expected_label": labels[expected],
            },
            files=files,
            sha256={
                FILES["int8"]: hashlib.sha256(int8).hexdigest(),
                FILES["float32"]: hashlib.sha256(float32).hexdigest(),
            },
            origin={**derived, **origin},
            created_with=versions(),
        )

    host_arena = ArenaSpec(
        min_bytes=report.arena_min,
        recommended_bytes=report.arena_recommended,
        measured_with="the smallest arena the tflite_micro host interpreter accepts (reference "
        "kernels, 64-bit), plus 10 % and 16 bytes, rounded up to 1 KiB",
        host_min_bytes=report.arena_min,
    )
    roles = [r for r in FILES if r not in ("tensor_names", "firmware")]
    roles += ["tensor_names"] if tensor_names is not None else []
    meta = make_meta(host_arena, {r: FILES[r] for r in roles})
    meta.to_json()  # a non-JSON origin fails here, before anything is written

    def c_header(arena: ArenaSpec) -> str:
        return csource.model_data_h(
            num_bytes=len(micro),
            arena_bytes=arena.recommended_bytes,
            arena_min=arena.min_bytes,
            arena_source=arena.measured_with,
            host_arena_bytes=arena.host_recommended_bytes,
            host_arena_min=arena.host_min_bytes,
            input_shape=report.input["shape"],
            input_scale=in_scale,
            input_zero_point=in_zero,
            output_scale=report.output["scale"],
            output_zero_point=report.output["zero_point"],
            num_classes=len(labels),
        )

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        texts = {
            "c_header": c_header(host_arena),
            "c_source": csource.model_data_cc(micro, labels),
            "op_resolver": csource.op_resolver_h(
                report.op_set, flatbuffer.parse(int8).int8_ops, project_kernels=project_kernels
            ),
            "example_input": csource.example_input_h(
                q_samples[example], expected, labels[expected]
            ),
            # The CMSIS-DSP front-end's tables, from the same document as model_meta.json.
            **frontend_tables.sources(meta.to_dict()),
        }
        (tmp / FILES["int8"]).write_bytes(int8)
        (tmp / FILES["float32"]).write_bytes(float32)
        for role, text in texts.items():
            (tmp / FILES[role]).write_text(text, encoding="utf-8")
        if tensor_names is not None:
            reports.atomic_write_json(tmp / FILES["tensor_names"], tensor_names)
        pick = np.unique(np.linspace(0, len(q_samples) - 1, firmware_inputs).round().astype(int))
        fw, arena = _measure_firmware(
            tmp,
            firmware,
            trees,
            q_samples[pick],
            tflm_out[pick],
            report,
            micro,
            c_header,
            host_arena,
        )
        if fw is not None:
            meta = make_meta(arena, {r: FILES[r] for r in [*roles, "firmware"]})
            reports.atomic_write_json(tmp / FILES["firmware"], fw.to_dict())
        (tmp / FILES["report"]).write_text(
            _report_md(report, meta) + ("\n" + fw.to_markdown() if fw is not None else ""),
            encoding="utf-8",
        )
        # The metadata last: a folder with model_meta.json is complete.
        (tmp / FILES["meta"]).write_text(meta.to_json(), encoding="utf-8")
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(
        out_dir=out,
        files={role: out / name for role, name in meta.files.items()},
        report=report,
        meta=meta,
        int8_bytes=int8,
        float32_bytes=float32,
        firmware=fw,
    )


#: Environment variable for ``export(firmware="auto")``: ``off``, or comma-separated targets
#: (default: all of :data:`keras_hrf.device.firmware.TARGETS`).
ENV_FIRMWARE = "KERAS_HRF_FIRMWARE"


def auto_targets() -> tuple[str, ...]:
    """The targets ``firmware="auto"`` tries: ``$KERAS_HRF_FIRMWARE`` or every target."""
    from keras_hrf.device import firmware as fw_mod

    value = os.environ.get(ENV_FIRMWARE, "").strip()
    if not value:
        return tuple(fw_mod.TARGETS)
    if value.lower() in ("off", "0", "no", "none"):
        return ()
    targets = tuple(t.strip() for t in value.split(",") if t.strip())
    bad = [t for t in targets if t not in fw_mod.TARGETS]
    if bad:
        raise ValueError(
            f"{ENV_FIRMWARE}={value!r}: unknown target(s) {bad}; use off or some of "
            f"{', '.join(fw_mod.TARGETS)}"
        )
    return targets


def _micro_flatbuffer(int8: bytes, q_samples: np.ndarray, tflm_out: np.ndarray) -> bytes:
    """:func:`slim.micro_flatbuffer` of ``int8``, refused unless TFLM gives it the outputs it
    gives ``int8`` (``tflm_out``) on ``q_samples``."""
    from keras_hrf.device import runtimes

    micro = slim.micro_flatbuffer(int8)
    got, _ = runtimes.run_tflm(micro, q_samples, arena_size=4 * 1024 * 1024)
    if not np.array_equal(got, tflm_out):
        raise ConversionError(
            [
                "the flatbuffer slimmed for TFLite Micro gives other outputs than the int8 "
                "model under TFLM; export with micro_slim=False (convert --no-micro-slim)"
            ]
        )
    return micro


def _measure_firmware(tmp, targets, trees, q_samples, tflm_out, report, micro, c_header, arena):
    """Firmware measurements of the export in ``tmp`` and the arena to recommend: ``(None,
    arena)`` if no target could be built (``micro``: the flatbuffer of the C array).

    The harness runs with the host-recommended arena; the Cortex-M measurement then sets the
    recommended one, ``model_data.h`` is rewritten with it, and ``main.cc`` is built again with
    it for the flash and RAM figures.
    """
    from keras_hrf.device import firmware as fw_mod

    if targets is None or (not isinstance(targets, str) and not targets):
        return None, arena
    trees = trees or fw_mod.Trees.from_env()
    auto = isinstance(targets, str)
    if auto and targets != "auto":
        raise ValueError(f"firmware must be 'auto', None or a list of targets, got {targets!r}")
    wanted = auto_targets() if auto else tuple(targets)
    todo, skipped = firmware_report.available(wanted, trees)
    if not todo and auto:
        return None, arena
    kwargs = dict(
        targets=todo,
        trees=trees,
        macs=report.macs,
        weight_bytes=report.weight_bytes,
        flatbuffer=slim.size_breakdown(micro),
    )
    measured = firmware_report.measure(tmp, q_samples, tflm_out, **kwargs, footprint=False)
    final = arena
    if measured.arena_32bit is not None:
        final = ArenaSpec(
            min_bytes=measured.arena_32bit,
            recommended_bytes=firmware_report.recommended_arena_32bit(measured.arena_32bit),
            measured_with="arena_used_bytes() of the Cortex-M firmware (CMSIS-NN, 32-bit; QEMU "
            + ", ".join(t for t in measured.targets if t != "host")
            + "), plus 2 % and 16 bytes, rounded up to 1 KiB",
            host_min_bytes=arena.min_bytes,
            host_recommended_bytes=arena.recommended_bytes,
        )
        (tmp / FILES["c_header"]).write_text(c_header(final), encoding="utf-8")
    # With the final arena: the self-test must still pass, and main.cc's flash / RAM.
    measured = firmware_report.add_footprints(measured, tmp, trees)
    return dataclasses.replace(measured, skipped={**skipped, **measured.skipped}), final


def _swap_in(tmp: Path, out: Path) -> None:
    # Renames within one folder are atomic; replacing a folder takes two of them, so the old one
    # is moved aside first and put back if the second rename fails.
    if not out.exists():
        os.rename(tmp, out)
        return
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _report_md(report: CheckReport, meta: ModelMeta) -> str:
    origin = meta.origin
    head = [
        f"# Export report: {origin.get('model_name', 'model')}",
        "",
        "| | |",
        "| --- | --- |",
        f"| labels | {', '.join(meta.labels)} |",
        f"| float32 flatbuffer | {reports.count(meta.sizes.get('float32_bytes'))} B |",
        f"| int8 flatbuffer slimmed for TFLM (model_data.cc) | "
        f"{reports.count(meta.sizes.get('micro_bytes'))} B |",
        f"| parameters | {reports.count(origin.get('params'))} |",
        f"| merged from HRF | {'yes' if origin.get('merged_from_hrf') else 'no'} |",
        f"| example input | sample {meta.example['sample_index']}, expected "
        f"'{meta.example['expected_label']}' |",
        "",
        "## int8 model",
        "",
    ]
    return "\n".join(head) + "\n" + report.to_markdown()
