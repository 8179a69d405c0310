"""What a graph rewrite leaves where it folded a layer into its neighbours: the identity."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="keras_hrf")
class FoldedAway(keras.layers.Layer):
    """The identity, standing where :func:`keras_hrf.reparam.fold_batch_norms_forward` folded a
    ``BatchNormalization`` into the ``Dense`` layers after it (so the graph keeps every layer
    name). Converts to no TFLite op.

    Input and output shape: any, unchanged. Takes the call arguments of the layer it replaces
    (``training``, ``mask``), which a cloned graph passes on.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config()
