"""A corpus on disk -> its manifest and cached features, the first step of every experiment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data_prep import splits
from data_prep.corpora import load_corpus
from data_prep.features import FeatureParams, extract


def load_features(
    corpus: str,
    root: str | Path,
    cache_dir: str | Path | None,
    params: FeatureParams | None = None,
    progress: bool = True,
    folds_file: str | Path | None = None,
) -> tuple[np.ndarray, pd.DataFrame, FeatureParams]:
    """Manifest and cached features of a corpus (bad files reported and skipped).

    Args:
        corpus: A registered corpus name (:func:`data_prep.list_corpora`).
        root: The corpus' top folder.
        cache_dir: Feature cache folder (``None``: no cache).
        params: Feature parameters (default :class:`FeatureParams`).
        progress: Progress bar over the files.
        folds_file: Published folds to check against the manifest *before* any feature is
            computed (unknown speakers, a speaker in two folds or in none, an empty fold).

    Returns:
        ``(features [N, frames, n_mels], manifest, params)``, rows aligned.
    """
    params = params or FeatureParams()
    manifest = load_corpus(corpus, root)
    if folds_file is not None:
        splits.folds_from_file(manifest, folds_file)
    feats, manifest = extract(manifest, params, cache_dir=cache_dir, progress=progress)
    return feats, manifest, params
