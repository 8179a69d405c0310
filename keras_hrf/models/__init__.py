"""The model families and their presets: ``build(family, size, hrf=...)``.

Three lightweight Transformers (``conv_transformer``, ``conformer``, ``speechformer``) and the CNN
peer a user would pick instead (``ds_cnn``). Every model is a Keras 3 functional model from log-Mel
features ``(B, frames, n_mels)`` to class logits ``(B, num_classes)``. With ``hrf`` the chosen
linears are HRF layers (:class:`~keras_hrf.layers.HRFDense`,
:class:`~keras_hrf.layers.HRFPointwiseConv2D`) with the same names as the plain model's layers, so
that ``keras_hrf.reparam.merge(build(f, s, hrf=True))`` has exactly the architecture of
``build(f, s, hrf=None)``.

Presets are named by the device budget they fit (:data:`BUDGETS`, checked by the test suite on
the int8 conversion under TFLite Micro): ``light`` and ``tiny``; ``large`` is several times
bigger than ``light`` (the paper's "large" comparison).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras

from keras_hrf.models import conformer, conv_transformer, ds_cnn, speechformer
from keras_hrf.models.hrf_config import SITES, HRFConfig
from keras_hrf.models.macs import count_macs


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family.

    Attributes:
        name: Registry name.
        build_graph: ``fn(inputs, num_classes, hrf, **preset) -> logits tensor``.
        presets: Named hyper-parameter sets (``light``, ``tiny``, ``large``).
        hrf_sites: HRF sites this family has.
        default_hrf_sites: The sites ``hrf=True`` expands (an :class:`HRFConfig` without
            ``sites``).
    """

    name: str
    build_graph: Callable
    presets: dict[str, dict]
    hrf_sites: frozenset[str]
    default_hrf_sites: tuple[str, ...] = ("ffn_in",)


@dataclasses.dataclass(frozen=True)
class Budget:
    """What a preset promises to fit on a device, for 3 s of 64-band log-Mel (300 x 64).

    Attributes:
        flash_kib: Largest int8 flatbuffer, KiB.
        arena_kib: Largest TensorFlow Lite Micro arena (measured by the exporter), KiB.
    """

    flash_kib: int
    arena_kib: int


#: Device budget of each preset name; ``large`` promises none.
BUDGETS: dict[str, Budget] = {"light": Budget(100, 64), "tiny": Budget(48, 48)}

_TRANSFORMER_SITES = frozenset({"ffn_in", "ffn_out", "attention"})

FAMILIES: dict[str, Family] = {
    "conv_transformer": Family(
        "conv_transformer",
        conv_transformer.build_graph,
        conv_transformer.PRESETS,
        _TRANSFORMER_SITES,
    ),
    "conformer": Family(
        "conformer",
        conformer.build_graph,
        conformer.PRESETS,
        _TRANSFORMER_SITES | {"pointwise"},
    ),
    "speechformer": Family(
        "speechformer",
        speechformer.build_graph,
        speechformer.PRESETS,
        _TRANSFORMER_SITES | {"merge"},
    ),
    "ds_cnn": Family(
        "ds_cnn",
        ds_cnn.build_graph,
        ds_cnn.PRESETS,
        frozenset({"pointwise"}),
        default_hrf_sites=("pointwise",),
    ),
}

#: Default model input: 3 s of 64-band log-Mel at a 10 ms hop.
DEFAULT_INPUT_SHAPE = (300, 64)


def build(
    family: str,
    size: str = "light",
    hrf: bool | dict | HRFConfig | None = None,
    input_shape: tuple[int, int] = DEFAULT_INPUT_SHAPE,
    num_classes: int = 8,
    batch_size: int | None = None,
    seed: int | None = None,
    **overrides,
) -> keras.Model:
    """Build a model of a family at a preset size.

    Args:
        family: ``"conv_transformer"``, ``"conformer"``, ``"speechformer"`` or ``"ds_cnn"``.
        size: A preset of the family: ``"light"``, ``"tiny"`` (see :data:`BUDGETS`) or
            ``"large"``.
        hrf: ``None``/``False`` (plain), ``True`` (the family's default HRF: for the Transformers
            the paper's extra linear of width ``2d`` before every FFN's first linear, for
            ``ds_cnn`` every pointwise convolution), a dict of :class:`HRFConfig` fields, or an
            :class:`HRFConfig`; without ``sites`` the family's default sites are used.
        input_shape: ``(frames, n_mels)``; static, as TFLite Micro needs.
        num_classes: Number of output logits.
        batch_size: Fixed batch size (``1`` for export) or ``None`` for a free batch (training).
        seed: If given, seeds Keras' global RNG first, so the initial weights are reproducible.
        **overrides: Preset hyper-parameters to change (e.g. ``num_blocks=1``, ``dropout=0``).

    Returns:
        An uncompiled functional ``keras.Model`` named ``"{family}_{size}"`` (suffix ``_hrf`` with
        HRF) producing logits.

    Raises:
        ValueError: unknown family/size/override, or an HRF site the family does not have.
    """
    params = preset_params(family, size, **overrides)
    fam = FAMILIES[family]
    cfg = HRFConfig.from_any(hrf)
    if cfg is not None:
        cfg = cfg.with_default_sites(fam.default_hrf_sites)
        bad = [s for s in cfg.sites if s not in fam.hrf_sites]
        if bad:
            raise ValueError(
                f"{family} has no {', '.join(bad)} layer to expand with HRF ({SITES[bad[0]]}); "
                f"its HRF sites are {', '.join(sorted(fam.hrf_sites))}"
            )
    if len(input_shape) != 2 or any(not isinstance(n, int) or n < 1 for n in input_shape):
        raise ValueError(f"input_shape must be (frames, n_mels) positive ints, got {input_shape}")
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=tuple(input_shape), batch_size=batch_size, name="features")
    logits = fam.build_graph(inputs, num_classes, cfg, **params)
    name = f"{family}_{size}" + ("_hrf" if cfg is not None else "")
    return keras.Model(inputs, logits, name=name)


def preset_params(family: str, size: str = "light", **overrides) -> dict:
    """The hyper-parameters a model of ``family`` at preset ``size`` is built with.

    Args:
        family: A key of :data:`FAMILIES`.
        size: One of the family's presets.
        **overrides: Hyper-parameters to change; each must be an argument of the family's
            ``build_graph``.

    Returns:
        The preset with the overrides applied (what :func:`build` passes to ``build_graph``).

    Raises:
        ValueError: unknown family, size or hyper-parameter (the message lists the known ones).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}; choose one of {', '.join(FAMILIES)}")
    fam = FAMILIES[family]
    if size not in fam.presets:
        raise ValueError(f"unknown size {size!r} for {family}; choose one of {list(fam.presets)}")
    params = dict(fam.presets[size])
    known = set(params) | hyper_parameters(family)
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(
            f"{family}: unknown hyper-parameter(s) {sorted(unknown)}; known: {sorted(known)}"
        )
    params.update(overrides)
    return params


def hyper_parameters(family: str) -> set[str]:
    """Names of the hyper-parameters a family's ``build_graph`` takes (presets set some)."""
    import inspect

    sig = inspect.signature(FAMILIES[family].build_graph)
    return {p for p in sig.parameters if p not in ("inputs", "num_classes", "hrf")}


__all__ = [
    "BUDGETS",
    "DEFAULT_INPUT_SHAPE",
    "FAMILIES",
    "Budget",
    "Family",
    "HRFConfig",
    "SITES",
    "build",
    "count_macs",
    "hyper_parameters",
    "preset_params",
]
