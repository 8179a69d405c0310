"""data_prep: corpus manifests, log-Mel features (and their device twin), splits, synthetic data.

Never imports ``keras_hrf`` (enforced by the import contract in ``pyproject.toml``). The public
entry points are re-exported here::

    from data_prep import load_corpus, load_features, FeatureParams, extract, Normalizer
"""

from data_prep.corpora import list_corpora, load_corpus
from data_prep.errors import AudioError, CorpusLayoutError, DataPrepError
from data_prep.features import FeatureParams, Normalizer, extract
from data_prep.labels import encode_labels
from data_prep.prepare import load_features

__all__ = [
    "AudioError",
    "CorpusLayoutError",
    "DataPrepError",
    "FeatureParams",
    "Normalizer",
    "encode_labels",
    "extract",
    "list_corpora",
    "load_corpus",
    "load_features",
]
