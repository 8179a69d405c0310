"""data_prep: corpus manifests, log-Mel features (and their device twin), splits, synthetic data.

The public entry points are re-exported here::

    from data_prep import load_corpus, FeatureParams, extract, Normalizer
"""

from data_prep.corpora import list_corpora, load_corpus
from data_prep.errors import AudioError, CorpusLayoutError, DataPrepError
from data_prep.features import FeatureParams, Normalizer, extract

__all__ = [
    "AudioError",
    "CorpusLayoutError",
    "DataPrepError",
    "FeatureParams",
    "Normalizer",
    "extract",
    "list_corpora",
    "load_corpus",
]
