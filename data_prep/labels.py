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


def parse_label_map(items) -> dict[str, str]:
    """``["excited=happy", "anger=angry"]`` -> ``{"excited": "happy", "anger": "angry"}``.

    Raises:
        ValueError: an item that is not ``FROM=TO``, or one label mapped two ways.
    """
    out: dict[str, str] = {}
    for item in items or ():
        src, eq, dst = str(item).partition("=")
        src, dst = src.strip().lower(), dst.strip().lower()
        if not eq or not src or not dst:
            raise ValueError(f"a label map entry is FROM=TO (e.g. excited=happy), got {item!r}")
        if out.get(src, dst) != dst:
            raise ValueError(f"label {src!r} is mapped to both {out[src]!r} and {dst!r}")
        out[src] = dst
    return out


def select_labels(
    manifest: pd.DataFrame,
    keep: list[str] | None = None,
    label_map: dict[str, str] | None = None,
) -> pd.DataFrame:
    """The manifest with its emotions renamed / merged by ``label_map``, then only ``keep``.

    Args:
        manifest: A manifest with an ``emotion`` column.
        keep: Classes to keep (after mapping); ``None`` keeps every class.
        label_map: ``{from: to}`` applied to the ``emotion`` column first (e.g. IEMOCAP's
            ``{"excited": "happy"}``).

    Returns:
        A new manifest (index reset, ``attrs`` kept) whose ``attrs["labels"]`` records the
        selection: ``label_map``, ``keep``, ``dropped`` (utterances per left-out class) and
        ``kept`` (utterances per class).

    Raises:
        ValueError: a class of ``keep`` that no utterance has after mapping (a typo; the message
            lists the classes there are), or nothing left.
    """
    label_map = {str(k).lower(): str(v).lower() for k, v in (label_map or {}).items()}
    emotions = manifest["emotion"].astype(str).map(lambda e: label_map.get(e, e))
    present = sorted(emotions.unique())
    if keep is not None:
        keep = [str(k).strip().lower() for k in keep if str(k).strip()]
        unknown = sorted(set(keep) - set(present))
        if unknown:
            raise ValueError(
                f"label(s) {unknown} of --labels are not in the corpus (after the label map); "
                f"its classes are {', '.join(present)}"
            )
    chosen = emotions.isin(keep) if keep is not None else pd.Series(True, index=emotions.index)
    if not chosen.any():
        raise ValueError("no utterance is left after the label selection")
    out = manifest.assign(emotion=emotions)[chosen].reset_index(drop=True)
    out.attrs = dict(manifest.attrs)
    out.attrs["labels"] = {
        "label_map": label_map,
        "keep": keep,
        "dropped": {k: int(v) for k, v in emotions[~chosen].value_counts().sort_index().items()},
        "kept": {k: int(v) for k, v in out["emotion"].value_counts().sort_index().items()},
    }
    return out
