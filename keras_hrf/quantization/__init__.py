"""Quantization: fake quantization that mirrors TFLite's int8 scheme, and quantization-aware twins.

- :mod:`~keras_hrf.quantization.fake_quant`: ``fake_quant_per_channel`` / ``fake_quant_activation``
  (used by quantization-aware HRF inside :class:`~keras_hrf.layers.HRFDense`);
- :mod:`~keras_hrf.quantization.qat`: ``prepare`` / ``calibrate`` / ``strip`` of a deployed
  model's quantization-aware twin (fine-tuning it is :func:`keras_hrf.training.fine_tune`).

The submodules are imported where needed, not here: :mod:`keras_hrf.layers` needs
``fake_quant`` while ``qat`` needs the layers.
"""
