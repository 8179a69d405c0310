"""HRFConfig: where and how a model is High-Rank-Factorized."""

from __future__ import annotations

import dataclasses
from typing import Any

import keras

from keras_hrf.layers.hrf_dense import FACTOR_INITS

#: Places that HRF can expand. ``ffn_in`` is the paper's placement in a Transformer block: an
#: extra linear directly before the feed-forward network's first linear. ``pointwise`` is the
#: same idea for convolutional networks: a 1x1 convolution is a linear map of each position's
#: channels, so it takes an extra linear factor and merges exactly.
SITES = {
    "ffn_in": "the feed-forward network's first linear (the paper's HRF placement)",
    "ffn_out": "the feed-forward network's second linear",
    "attention": "the query/key/value and output projections of self-attention",
    "merge": "the linear of SpeechFormer's merge blocks (speechformer only)",
    "pointwise": "the pointwise (1x1) convolutions: ds_cnn's blocks and the Conformer's "
    "convolution module",
}


@dataclasses.dataclass(frozen=True)
class HRFConfig:
    """Where and how to expand linear layers with :class:`~keras_hrf.layers.HRFDense`.

    Attributes:
        sites: Which linears to expand (keys of :data:`SITES`); ``None`` (default) means the
            family's own default: the paper's ``ffn_in`` for the Transformers, ``pointwise`` for
            ``ds_cnn`` (see :func:`keras_hrf.models.build`).
        expansion: Inner width ``k`` as a multiple of the expanded layer's input width.
        rank: Explicit inner width (overrides ``expansion``).
        depth: Number of factors per expanded layer (2 = one extra linear).
        inner_bias: Whether the extra linears carry biases (they merge exactly either way).
        factor_init: ``"glorot"`` or ``"identity"`` (see :class:`~keras_hrf.layers.HRFDense`).
        quantize_merged: Quantization-aware HRF: fake-quantize the merged kernel per output
            channel in the forward pass.
        factor_lr_scale: Learning-rate multiplier of the extra factors (see
            :class:`~keras_hrf.layers.HRFDense`); 1 trains them like every other weight.
        factor_weight_decay: L2 penalty ``c * sum(w**2)`` on every factor (stored variables),
            added to the loss; 0 (default) leaves the factors to the run's own weight decay.
    """

    sites: tuple[str, ...] | None = None
    expansion: float = 2.0
    rank: int | None = None
    depth: int = 2
    inner_bias: bool = False
    factor_init: str = "glorot"
    quantize_merged: bool = False
    factor_lr_scale: float = 1.0
    factor_weight_decay: float = 0.0

    def __post_init__(self):
        if self.sites is None:
            sites = None
        else:
            sites = (self.sites,) if isinstance(self.sites, str) else tuple(self.sites)
        object.__setattr__(self, "sites", sites)
        unknown = [s for s in sites or () if s not in SITES]
        if unknown or sites == ():
            raise ValueError(
                f"HRFConfig: unknown site(s) {unknown or sites!r}; HRF can expand only linear "
                f"layers: {', '.join(SITES)} (other convolutions, norms and the classifier "
                f"are not expanded)"
            )
        if self.rank is None and not self.expansion >= 1:
            raise ValueError(f"HRFConfig: expansion must be >= 1, got {self.expansion!r}")
        if self.rank is not None and (not isinstance(self.rank, int) or self.rank < 1):
            raise ValueError(f"HRFConfig: rank must be a positive integer, got {self.rank!r}")
        if not isinstance(self.depth, int) or self.depth < 2:
            raise ValueError(f"HRFConfig: depth must be an integer >= 2, got {self.depth!r}")
        if not self.factor_lr_scale > 0:
            raise ValueError(
                f"HRFConfig: factor_lr_scale must be > 0, got {self.factor_lr_scale!r}"
            )
        if not self.factor_weight_decay >= 0:
            raise ValueError(
                f"HRFConfig: factor_weight_decay must be >= 0, got {self.factor_weight_decay!r}"
            )
        if self.factor_init not in FACTOR_INITS:
            raise ValueError(
                f"HRFConfig: factor_init must be one of {FACTOR_INITS}, got {self.factor_init!r}"
            )

    @classmethod
    def from_any(cls, hrf: Any) -> HRFConfig | None:
        """``None``/``False`` -> no HRF; ``True`` -> defaults; a dict or HRFConfig as given."""
        if hrf is None or hrf is False:
            return None
        if hrf is True:
            return cls()
        if isinstance(hrf, cls):
            return hrf
        if isinstance(hrf, dict):
            unknown = set(hrf) - {f.name for f in dataclasses.fields(cls)}
            if unknown:
                raise ValueError(f"HRFConfig: unknown option(s) {sorted(unknown)}")
            return cls(**hrf)
        raise TypeError(f"hrf must be None, True, a dict or an HRFConfig, got {type(hrf)}")

    def to_dict(self) -> dict:
        """JSON-able dict (``HRFConfig.from_any`` reads it back)."""
        d = dataclasses.asdict(self)
        d["sites"] = None if self.sites is None else list(self.sites)
        return d

    def with_default_sites(self, sites: tuple[str, ...]) -> HRFConfig:
        """This config with ``sites`` filled in where it is ``None`` (the family's default)."""
        return self if self.sites is not None else dataclasses.replace(self, sites=tuple(sites))

    def layer_kwargs(self) -> dict:
        """Keyword arguments for :class:`~keras_hrf.layers.HRFDense`."""
        return {
            "expansion": self.expansion,
            "rank": self.rank,
            "depth": self.depth,
            "inner_bias": self.inner_bias,
            "factor_init": self.factor_init,
            "quantize_merged": self.quantize_merged,
            "factor_lr_scale": self.factor_lr_scale,
            "factor_regularizer": (
                keras.regularizers.L2(self.factor_weight_decay)
                if self.factor_weight_decay
                else None
            ),
        }
