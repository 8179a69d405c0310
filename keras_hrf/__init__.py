"""keras-hrf: High-Rank-Factorized lightweight Transformers for on-device speech emotion
recognition, merged (deHRF) for deployment and exported as int8 TFLite.

Main entry points::

    from keras_hrf import models, reparam
    model = models.build("conv_transformer", "light", hrf=True, num_classes=8)
    deployed = reparam.merge(model)
"""

__version__ = "0.1.0"
