"""What a run records of its split: the speakers of each part (``config.json["split"]``)."""

from __future__ import annotations


def split_speakers(split) -> dict:
    """The speakers of each part of a :class:`data_prep.splits.Split`, JSON-able."""
    return {
        "name": split.name,
        "train_speakers": list(split.train_speakers),
        "val_speakers": list(split.val_speakers),
        "test_speakers": list(split.test_speakers),
    }
