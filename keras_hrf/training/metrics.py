"""Classification metrics of speech emotion recognition, from scikit-learn.

WA (weighted accuracy) is plain accuracy; UA (unweighted accuracy) is the mean per-class recall,
the usual headline number on imbalanced emotion corpora; macro-F1 averages F1 over classes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn import metrics as skm


def classification_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
) -> dict:
    """WA, UA, macro-F1, per-class recall and the confusion matrix.

    Args:
        y_true: True class indices.
        y_pred: Predicted class indices.
        labels: Class names; index ``i`` names class ``i``.

    Returns:
        JSON-able dict: ``wa``, ``ua``, ``macro_f1`` (fractions in [0, 1]), ``per_class_recall``
        (name -> recall, classes absent from ``y_true`` omitted), ``confusion`` (rows: true,
        columns: predicted, over all ``labels``), ``n``.
    """
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"need equal, non-empty label arrays, got {y_true.shape}, {y_pred.shape}")
    present = np.unique(y_true)
    idx = list(range(len(labels)))
    recall = skm.recall_score(y_true, y_pred, labels=idx, average=None, zero_division=0)
    return {
        "n": int(y_true.size),
        "wa": float(skm.accuracy_score(y_true, y_pred)),
        # UA over the classes present in y_true (a class with no examples has no recall).
        "ua": float(np.mean(recall[present])),
        "macro_f1": float(
            skm.f1_score(y_true, y_pred, labels=list(present), average="macro", zero_division=0)
        ),
        "per_class_recall": {labels[i]: float(recall[i]) for i in present},
        "confusion": skm.confusion_matrix(y_true, y_pred, labels=idx).tolist(),
    }


def unweighted_accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """Mean per-class recall over the classes present in ``y_true`` (UA)."""
    y_true = np.asarray(y_true, dtype=int)
    present = np.unique(y_true)
    recall = skm.recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    return float(np.mean(recall))


def participant_vote(
    participants: Sequence[str], y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]
) -> dict:
    """Per-participant majority vote of segment predictions (DAIC-WOZ), then metrics and F1.

    Each participant's label is their segments' (constant) true label; the prediction is the most
    frequent predicted class among their segments (ties go to the lowest class index).
    """
    participants = np.asarray(participants)
    y_true = np.asarray(y_true, dtype=int)
    y_pred = np.asarray(y_pred, dtype=int)
    ids = np.unique(participants)
    t, p = [], []
    for pid in ids:
        sel = participants == pid
        truths = np.unique(y_true[sel])
        if truths.size != 1:
            raise ValueError(f"participant {pid!r} has segments with different true labels")
        t.append(int(truths[0]))
        p.append(int(np.bincount(y_pred[sel], minlength=len(labels)).argmax()))
    out = classification_metrics(t, p, labels)
    out["participants"] = int(ids.size)
    return out
