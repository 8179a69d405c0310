"""Class labels of a manifest: the emotion names a model's logits stand for."""

from __future__ import annotations

import numpy as np
import pandas as pd


def encode_labels(
    emotions: pd.Series, labels: list[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Class indices of ``emotions`` and the label list.

    Args:
        emotions: The manifest's ``emotion`` column.
        labels: Class names in logit order; default: the sorted unique names of ``emotions``.

    Returns:
        ``(indices int32 [N], labels)``; ``labels[indices[i]] == emotions[i]``.

    Raises:
        ValueError: an emotion that is not among ``labels`` (the message lists them).
    """
    labels = sorted(emotions.unique()) if labels is None else list(labels)
    lookup = {name: i for i, name in enumerate(labels)}
    unknown = sorted(set(emotions) - set(lookup))
    if unknown:
        raise ValueError(f"emotion label(s) {unknown} are not among the classes {labels}")
    return emotions.map(lookup).to_numpy(dtype=np.int32), labels
