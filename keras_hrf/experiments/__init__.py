"""Research on top of the library: the demo, the paper's reproduction over folds x seeds, the
quantization study, paired statistics and their reports.

The library (``data_prep`` and ``keras_hrf`` up to ``export``) never imports this package; the
command line and the benchmarks do (enforced by the import contract in ``pyproject.toml``).

- :mod:`~keras_hrf.experiments.variants`: variant names (``light+hrf:expansion=4``);
- :mod:`~keras_hrf.experiments.statistics`: paired differences, Wilcoxon, Holm, verdicts;
- :mod:`~keras_hrf.experiments.reproduction`: :func:`reproduce` and its report;
- :mod:`~keras_hrf.experiments.main_job`: :func:`demo`;
- :mod:`~keras_hrf.experiments.quant_study`: :func:`quantization_study`.
"""

from keras_hrf.experiments.main_job import demo
from keras_hrf.experiments.quant_study import quantization_study
from keras_hrf.experiments.reproduction import make_folds, reproduce, summarize
from keras_hrf.experiments.variants import VARIANTS, Variant, parse_variant, variant_dirname

__all__ = [
    "VARIANTS",
    "Variant",
    "demo",
    "make_folds",
    "parse_variant",
    "quantization_study",
    "reproduce",
    "summarize",
    "variant_dirname",
]
