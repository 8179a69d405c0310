"""A normalisation that trains as LayerNorm and ends as BatchNormalization (progressive
re-parameterisation, after Guo et al., *SLAB*, ICML 2024).

A Transformer trained with BatchNormalization from the start is less accurate than one with
LayerNorm (measured here on the light Conformer, ``results/ravdess/NOTES.md``); a LayerNorm,
however, is a per-frame computation on the device (MEAN, SUB, MUL, RSQRT ... per element),
while a BatchNormalization at inference is a per-channel affine map that the converter folds
into the Dense layers after it (:func:`keras_hrf.reparam.fold_batch_norms_forward`). This layer
computes ``mix * LN(x) + (1 - mix) * BN(x)``, with ``mix`` a non-trainable weight that the
trainer lowers from 1 to 0 during training (:class:`keras_hrf.training.pipeline.NormAnnealing`):
it starts as a LayerNorm and finishes as a BatchNormalization, which is all that is deployed.
"""

from __future__ import annotations

import keras

from keras_hrf.layers.layer_norm import LayerNorm


@keras.saving.register_keras_serializable(package="keras_hrf")
class LayerToBatchNorm(keras.layers.Layer):
    """``mix * LayerNorm(x) + (1 - mix) * BatchNormalization(x)`` over the last axis.

    Input and output shape: ``(..., d)``. ``mix`` (weight, not trained) is 1 when built; once it
    is 0 the layer is exactly its :attr:`batch_norm` (:meth:`to_batch_norm`).

    Args:
        momentum: Of the BatchNormalization's moving statistics.
        epsilon: Of both normalisations.
        **kwargs: Base ``Layer`` arguments.
    """

    def __init__(self, momentum: float = 0.9, epsilon: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.layer_norm = LayerNorm(epsilon=epsilon, name="layer_norm")
        self.batch_norm = keras.layers.BatchNormalization(
            momentum=momentum, epsilon=epsilon, name="batch_norm"
        )

    def build(self, input_shape):
        self.layer_norm.build(input_shape)
        self.batch_norm.build(input_shape)
        self.mix = self.add_weight(name="mix", shape=(), initializer="ones", trainable=False)

    def call(self, x, training=None):
        bn = self.batch_norm(x, training=training)
        return self.mix * self.layer_norm(x) + (1.0 - self.mix) * bn

    @property
    def annealed(self) -> bool:
        """Whether ``mix`` is 0: the layer is its BatchNormalization alone."""
        return float(keras.ops.convert_to_numpy(self.mix)) == 0.0

    def to_batch_norm(self) -> keras.layers.BatchNormalization:
        """The BatchNormalization the layer has become (same name, weights copied).

        Raises:
            ValueError: ``mix`` is not 0 yet: the layer still computes part of a LayerNorm.
        """
        if not self.annealed:
            mix = float(keras.ops.convert_to_numpy(self.mix))
            raise ValueError(
                f"LayerToBatchNorm {self.name!r} still mixes in {mix:.3g} of its LayerNorm: "
                "train to the end of the annealing (TrainConfig.norm_anneal) before deploying"
            )
        return keras.layers.BatchNormalization(
            momentum=self.momentum,
            epsilon=self.epsilon,
            name=self.name,
            dtype=self.dtype_policy.name,
        )

    def batch_norm_weights(self) -> list:
        """``[gamma, beta, moving_mean, moving_variance]`` of :attr:`batch_norm`, the weights of
        :meth:`to_batch_norm`'s layer."""
        return self.batch_norm.get_weights()

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "epsilon": self.epsilon})
        return config
