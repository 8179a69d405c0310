"""Training options are generated from TrainConfig and HRFConfig: no field without a flag, no flag
without a field, and every flag reaches its field."""

from __future__ import annotations

import dataclasses

import pytest

from keras_hrf.cli import build_parser
from keras_hrf.cli.common import COMMAND_FIELDS, train_config
from keras_hrf.models.hrf_config import HRFConfig
from keras_hrf.training import TrainConfig

#: A non-default value per field, as given on the command line.
VALUES = {
    "epochs": ("7", 7),
    "batch_size": ("9", 9),
    "learning_rate": ("0.002", 0.002),
    "weight_decay": ("0.01", 0.01),
    "schedule": ("constant", "constant"),
    "warmup_epochs": ("2", 2),
    "label_smoothing": ("0.1", 0.1),
    "time_shift": ("20", 20),
    "time_masks": ("1", 1),
    "time_mask_max": ("11", 11),
    "freq_masks": ("3", 3),
    "freq_mask_max": ("5", 5),
    "mixup": ("0.4", 0.4),
    "ema": ("0.99", 0.99),
    "selection": ("last", "last"),
    "patience": ("4", 4),
    "norm_anneal": ("0.5", 0.5),
    "class_balance": ("none", "none"),
    "teacher": (["runs/a", "runs/b"], ("runs/a", "runs/b")),
    "kd_weight": ("0.5", 0.5),
    "kd_temperature": ("3", 3.0),
    "exclude_floor": (None, True),
    "qat_epochs": ("2", 2),
    "qat_learning_rate": ("0.0003", 0.0003),
}
HRF_VALUES = {
    "sites": (["ffn_in", "attention"], ["ffn_in", "attention"]),
    "expansion": ("3", 3.0),
    "rank": ("96", 96),
    "depth": ("3", 3),
    "inner_bias": (None, True),
    "factor_init": ("identity", "identity"),
    "quantize_merged": (None, True),
    "factor_lr_scale": ("0.5", 0.5),
    "factor_weight_decay": ("0.001", 0.001),
}


def _argv(prefix: str, values: dict) -> list[str]:
    argv = []
    for name, (given, _) in values.items():
        flag = f"--{prefix}{name.replace('_', '-')}"
        argv += [flag] if given is None else [flag, *([given] if isinstance(given, str) else given)]
    return argv


def test_every_field_has_a_flag_and_every_flag_reaches_its_field():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(VALUES) == fields - set(COMMAND_FIELDS)  # a new field needs a value here
    assert set(HRF_VALUES) == {f.name for f in dataclasses.fields(HRFConfig)}
    for command in ("train", "reproduce"):
        base = ["--corpus", "x", "--root", "y", "--out", "z"]
        argv = [command, *base, *_argv("", VALUES), *_argv("hrf-", HRF_VALUES)]
        argv += ["--model-option", "stem=conv1d", "--model-option", "stem_strides=4x2/2x2"]
        args = build_parser().parse_args(argv)
        cfg = train_config(args)
        for name, (_, want) in VALUES.items():
            assert getattr(cfg, name) == want, name
        assert cfg.hrf == {k: want for k, (_, want) in HRF_VALUES.items()}
        assert cfg.model_overrides == {"stem": "conv1d", "stem_strides": [[4, 2], [2, 2]]}
        # Every generated flag's destination is a field (no flag without a field).
        dests = {
            a.dest for a in build_parser()._subparsers._group_actions[0].choices[command]._actions
        }
        generated = {d for d in dests if d.startswith(("train_", "hrf_"))}
        assert generated == {f"train_{n}" for n in VALUES} | {f"hrf_{n}" for n in HRF_VALUES}


def test_defaults_come_from_the_dataclasses_and_old_flag_names_still_work():
    base = ["train", "--corpus", "x", "--root", "y", "--out", "z"]
    cfg = train_config(build_parser().parse_args(base))
    assert cfg == TrainConfig(model_overrides={})
    args = build_parser().parse_args([*base, "--lr", "0.01", "--qat", "--hrf-init", "identity"])
    cfg = train_config(args)
    assert cfg.learning_rate == 0.01
    assert cfg.hrf == {"quantize_merged": True, "factor_init": "identity"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        train_config(build_parser().parse_args([*base, "--model-option", "stem"]))
