"""Variant names of an experiment: ``light``, ``light+hrf``, ``tiny+qhrf`` and their options.

A variant is a preset size, with or without HRF, and options after ``:`` (``light+hrf:expansion=4``,
``light:stem=conv1d``): one grammar for HRF options (keys of
:class:`~keras_hrf.models.HRFConfig`) and preset hyper-parameters, checked before any training.
"""

from __future__ import annotations

import dataclasses
import re

from keras_hrf import models
from keras_hrf.models.hrf_config import HRFConfig
from keras_hrf.training import TrainConfig

#: Variants of the paper's comparison: name -> (size, hrf, distilled). Every preset name of
#: :data:`keras_hrf.models.BUDGETS` (and ``large``) makes ``<size>``, ``<size>+hrf`` and
#: ``<size>+qhrf``; the budget presets also ``<size>+kd`` and ``<size>+hrf+kd``, distilled from
#: the ``large`` run of the same family, fold and seed.
VARIANTS = {
    f"{size}{suffix}{kd}": (size, hrf, bool(kd))
    for size in ("light", "tiny", "large")
    for suffix, hrf in (("", None), ("+hrf", {}), ("+qhrf", {"quantize_merged": True}))
    for kd in (("", "+kd") if size != "large" else ("",))
}

#: The variant whose run of the same family, fold and seed teaches a ``+kd`` variant.
TEACHER_VARIANT = "large"


@dataclasses.dataclass(frozen=True)
class Variant:
    """What a variant name asks for (see :func:`parse_variant`).

    Attributes:
        name: The name as given.
        size: The preset.
        hrf: ``None`` (plain) or :class:`~keras_hrf.models.HRFConfig` fields.
        model: Preset hyper-parameters to override (e.g. ``{"stem": "conv1d"}``).
        train: Training options to override (``TrainConfig`` fields, e.g. ``{"mixup": 0.4}``).
        distilled: Whether the run learns from the :data:`TEACHER_VARIANT` run (``+kd``).
    """

    name: str
    size: str
    hrf: dict | None
    model: dict
    train: dict = dataclasses.field(default_factory=dict)
    distilled: bool = False


#: TrainConfig fields that a variant sets itself (the rest may follow the colon).
_NOT_TRAIN_OPTIONS = {"family", "size", "hrf", "model_overrides", "seed", "teacher"}


def parse_variant(variant: str) -> Variant:
    """The :class:`Variant` a name asks for.

    A name is one of :data:`VARIANTS`, optionally followed by ``:KEY=VALUE,...`` options: keys
    of :class:`~keras_hrf.models.HRFConfig` (an HRF ablation, on HRF variants only), preset
    hyper-parameters of the families (``keras_hrf.models.hyper_parameters``) or training options
    (:class:`~keras_hrf.training.TrainConfig` fields), e.g. ``light+hrf:expansion=4``,
    ``light+hrf:sites=ffn_in/ffn_out,factor_init=identity``, ``light:stem=conv1d``,
    ``light+hrf:stem_strides=4x2/2x2``, ``light:mixup=0.4,ema=0.998``. Values: numbers, ``true`` /
    ``false``, ``/`` separates list items, ``AxB`` is a pair of integers. HRF options are checked
    by building the HRFConfig and model keys against the families, so a typo is an error before
    any training starts (whether a family has the key is checked when its runs are configured).

    Raises:
        ValueError: Unknown base name, HRF options on a variant without HRF, a malformed or
            unknown option.
    """
    name, _, options = variant.partition(":")
    if name not in VARIANTS:
        raise ValueError(
            f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}, optionally with "
            "options, e.g. light+hrf:expansion=4 or light:stem=conv1d"
        )
    size, hrf, distilled = VARIANTS[name]
    hrf = None if hrf is None else dict(hrf)
    model: dict = {}
    train: dict = {}
    hrf_keys = {f.name for f in dataclasses.fields(HRFConfig)}
    model_keys = set().union(*(models.hyper_parameters(f) for f in models.FAMILIES))
    train_keys = {f.name for f in dataclasses.fields(TrainConfig)} - _NOT_TRAIN_OPTIONS
    for item in options.split(",") if options else []:
        key, eq, value = item.partition("=")
        if not eq or not key or not value:
            raise ValueError(f"variant {variant!r}: expected KEY=VALUE options, got {item!r}")
        if key in hrf_keys:
            if hrf is None:
                raise ValueError(
                    f"variant {variant!r}: {name!r} has no HRF layers to set {key!r} on"
                )
            hrf[key] = option_value(key, value)
        elif key in model_keys:
            model[key] = option_value(key, value)
        elif key in train_keys:
            train[key] = option_value(key, value)
        else:
            raise ValueError(
                f"variant {variant!r}: unknown option {key!r}; HRF options: "
                f"{', '.join(sorted(hrf_keys))}; model options: {', '.join(sorted(model_keys))}; "
                f"training options: {', '.join(sorted(train_keys))}"
            )
    if hrf:
        HRFConfig.from_any(hrf)  # validates values now, not after hours of other runs
    if train:
        TrainConfig(**train)  # the same for training options
    return Variant(variant, size, hrf, model, train, distilled)


def option_value(key: str, value: str):
    """The value of a ``KEY=VALUE`` option: numbers, ``true``/``false``, ``a/b`` a list,
    ``4x2`` a pair of integers (``sites`` is always a list)."""
    if "/" in value or key == "sites":
        return [_scalar(v) for v in value.split("/")]
    return _scalar(value)


def _scalar(value: str):
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    if re.fullmatch(r"\d+x\d+", value):
        return [int(v) for v in value.split("x")]
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def variant_dirname(variant: str) -> str:
    """Folder name of a variant's runs (``light+hrf:expansion=4`` -> ``light_hrf_expansion-4``)."""
    table = str.maketrans({"+": "_", ":": "_", ",": "_", "=": "-", "/": "-"})
    return variant.translate(table)


def variant_config(base: TrainConfig, variant: str) -> TrainConfig:
    """``base`` for one variant; HRF options, model overrides and training options of ``base``
    (e.g. ``--hrf-expansion``, ``--epochs``) apply to every variant, the variant's own options on
    top."""
    v = parse_variant(variant)
    hrf = v.hrf
    if hrf is not None and base.hrf:
        hrf = {**base.hrf, **hrf}
    overrides = {**base.model_overrides, **v.model}
    return dataclasses.replace(base, size=v.size, hrf=hrf, model_overrides=overrides, **v.train)
