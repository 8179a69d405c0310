"""TrainConfig: everything that defines a training run, saved as ``config.json`` in its folder."""

from __future__ import annotations

import dataclasses

from data_prep.features import DEFAULT_EXCLUDE_FLOOR
from keras_hrf import models
from keras_hrf.training.pipeline import Augmentation


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json`` in the run folder).

    Attributes:
        family: Model family (``keras_hrf.models.FAMILIES``).
        size: Preset, ``"light"`` or ``"large"``.
        hrf: ``None`` (plain), or a dict of :class:`keras_hrf.models.HRFConfig` fields
            (``{}`` = the paper's default placement).
        model_overrides: Preset hyper-parameters to change (e.g. ``{"dropout": 0.2}``).
        epochs: Maximum number of epochs.
        batch_size: Training batch size.
        learning_rate: Peak learning rate.
        weight_decay: Decoupled weight decay (AdamW); 0 gives Adam.
        schedule: ``"cosine"`` (decay to 0 over ``epochs``) or ``"constant"``.
        warmup_epochs: Linear warm-up epochs before the schedule.
        label_smoothing: Label smoothing of the cross-entropy.
        time_shift: Random time shift of each training example, up to this many frames either
            way (see :class:`~keras_hrf.training.pipeline.Augmentation`); 0 disables it.
        time_masks: SpecAugment time masks per example.
        time_mask_max: Longest time mask (frames).
        freq_masks: SpecAugment frequency masks per example.
        freq_mask_max: Widest frequency mask (mel bands).
        mixup: Mixup's Beta(alpha, alpha) parameter on log-Mel and one-hot targets (see
            :class:`~keras_hrf.training.pipeline.Augmentation`); 0 disables it.
        ema: Decay of an exponential moving average of the weights, per optimiser step (e.g.
            0.998, an average over ~500 steps); the averaged weights are the ones validated,
            selected, merged and exported; BatchNorm statistics are then re-estimated for the
            average (:func:`~keras_hrf.training.pipeline.recalibrate_batch_norm`). 0 disables it.
            A run shorter than 4 / (1 - ema) steps uses 1 - 4 / steps instead
            (:func:`~keras_hrf.training.optimizer.ema_decay`): the average never spans more than
            the last quarter of training.
        selection: Which weights the run keeps: ``"best"`` (the epoch of best validation UA,
            early stopping after ``patience``) or ``"last"`` (the end of the schedule; with
            ``ema`` the final average): one lucky epoch on a few validation speakers cannot pick
            them.
        patience: Early-stopping patience in epochs on validation UA (0 disables).
        norm_anneal: For models with :class:`~keras_hrf.layers.LayerToBatchNorm` (a family's
            ``norm="layer_to_batch"``): the fraction of the training steps over which their
            LayerNorm share falls linearly from 1 to 0; the rest of training (and the EMA
            average of it) is pure BatchNormalization, which is what is deployed. 0.6 was not
            tuned: it leaves the last 40 % of the steps (RAVDESS: ~1,300, over twice the EMA's
            horizon) to the final form.
        class_balance: ``"weights"`` (inverse-frequency sample weights) or ``"none"``.
        exclude_floor: Fit the normaliser without the log-floor values (digital silence);
            default :data:`data_prep.features.DEFAULT_EXCLUDE_FLOOR`.
        teacher: Run folders of teachers for knowledge distillation (an ensemble averages
            their logits); empty disables it. Each must have been trained on this run's split
            (see :mod:`keras_hrf.training.distillation`).
        kd_weight: Weight of the distillation term ``T^2 * KL`` next to the cross-entropy.
        kd_temperature: Temperature ``T`` of the softened teacher and student distributions.
        qat_epochs: Quantization-aware fine-tuning of the merged model after training
            (:func:`keras_hrf.training.fine_tune`); 0 (default) deploys the merged model as trained.
        qat_learning_rate: Peak learning rate of that fine-tuning.
        seed: Seed of initialisation, shuffling and augmentation.
    """

    family: str = "conv_transformer"
    size: str = "light"
    hrf: dict | None = None
    model_overrides: dict = dataclasses.field(default_factory=dict)
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    schedule: str = "cosine"
    warmup_epochs: int = 5
    label_smoothing: float = 0.1
    time_shift: int = 30
    time_masks: int = 2
    time_mask_max: int = 30
    freq_masks: int = 2
    freq_mask_max: int = 8
    mixup: float = 0.4
    ema: float = 0.998
    selection: str = "last"
    patience: int = 15
    norm_anneal: float = 0.6
    class_balance: str = "weights"
    teacher: tuple[str, ...] = ()
    kd_weight: float = 1.0
    kd_temperature: float = 2.0
    exclude_floor: bool = DEFAULT_EXCLUDE_FLOOR
    qat_epochs: int = 0
    qat_learning_rate: float = 1e-4
    seed: int = 0

    def __post_init__(self):
        if self.family not in models.FAMILIES:
            raise ValueError(
                f"unknown model family {self.family!r}; choose one of {', '.join(models.FAMILIES)}"
            )
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if self.selection not in ("best", "last"):
            raise ValueError(f"selection must be 'best' or 'last', got {self.selection!r}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must be a decay in [0, 1), got {self.ema!r}")
        object.__setattr__(self, "teacher", tuple(str(t) for t in self.teacher))
        if not self.kd_temperature > 0 or self.kd_weight < 0:
            raise ValueError(
                f"kd_temperature must be > 0 and kd_weight >= 0, got {self.kd_temperature!r}, "
                f"{self.kd_weight!r}"
            )
        if not 0.0 < self.norm_anneal <= 1.0:
            raise ValueError(
                f"norm_anneal must be a fraction of the steps in (0, 1], got {self.norm_anneal!r}"
            )
        if self.time_shift < 0:
            raise ValueError(f"time_shift must be >= 0 frames, got {self.time_shift!r}")
        if self.mixup < 0:
            raise ValueError(f"mixup must be >= 0 (0 disables it), got {self.mixup!r}")
        if self.class_balance not in ("weights", "none"):
            raise ValueError(
                f"class_balance must be 'weights' or 'none', got {self.class_balance!r}"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if self.qat_epochs < 0:
            raise ValueError(f"qat_epochs must be >= 0, got {self.qat_epochs}")
        models.HRFConfig.from_any(self.hrf if self.hrf != {} else True)  # validates early

    @property
    def variant(self) -> str:
        """Short name: ``light``, ``light+hrf``, ``large``, ``light+hrf+kd``..."""
        name = self.size + ("+hrf" if self.hrf is not None else "")
        if self.hrf and self.hrf.get("quantize_merged"):
            name += "(q)"
        return name + ("+kd" if self.teacher else "") + ("+qat" if self.qat_epochs else "")

    def hrf_config(self) -> models.HRFConfig | None:
        """The :class:`HRFConfig` this run trains with (``None`` for plain)."""
        if self.hrf is None:
            return None
        return models.HRFConfig.from_any(self.hrf if self.hrf else True)

    @property
    def augmentation(self) -> Augmentation:
        """The augmentation of this run's training pipeline."""
        return Augmentation(
            time_shift=self.time_shift,
            time_masks=self.time_masks,
            time_mask_max=self.time_mask_max,
            freq_masks=self.freq_masks,
            freq_mask_max=self.freq_mask_max,
            mixup=self.mixup,
        )

    def to_dict(self) -> dict:
        """JSON-able dict (``config.json["train"]`` of a run folder)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"TrainConfig: unknown field(s) {sorted(unknown)}")
        return cls(**data)
