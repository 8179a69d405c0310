"""deHRF: merge every HRF layer of a trained model into a plain ``Dense`` (a graph rewrite).

Contract of :func:`merge` (in the style of tensorflow/model-optimization's graph transforms):
same inputs, same outputs (up to float rounding), every :class:`~keras_hrf.layers.HRFDense`
replaced by a ``keras.layers.Dense`` of the same name holding ``merged_kernel()`` /
``merged_bias()`` (multiplied out in float64), every other layer and weight copied unchanged. For a
model from :func:`keras_hrf.models.build` the result has exactly the layer types, parameter count
and MACs of the same preset built with ``hrf=None``.
"""

from __future__ import annotations

from collections.abc import Callable

import keras

from keras_hrf.layers import HRFDense


def has_hrf(model: keras.Model) -> bool:
    """Whether any HRF layer is left anywhere in ``model`` (nested models included)."""
    return any(isinstance(layer, HRFDense) for layer in _walk(model))


def hrf_layers(model: keras.Model) -> list[HRFDense]:
    """All HRF layers of ``model`` (nested models included), in graph order."""
    return [layer for layer in _walk(model) if isinstance(layer, HRFDense)]


def _walk(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk(layer)


def rewrite(
    model: keras.Model,
    replace: Callable[[keras.layers.Layer], keras.layers.Layer | None],
    weights_for: Callable[[keras.layers.Layer], list] | None = None,
    input_batch_size: int | None | type(...) = ...,
) -> keras.Model:
    """Clone a functional/Sequential model, optionally replacing layers and the batch size.

    The single graph-rewrite mechanism behind :func:`merge` and the TFLite exporter's batch-1
    rebuild.

    Args:
        model: A functional or Sequential Keras model.
        replace: ``fn(layer) -> new layer | None``; ``None`` keeps a fresh copy of the layer.
            A new layer must keep the old layer's name (weights are matched by name).
        weights_for: ``fn(old_layer) -> weights`` for replaced layers (default: the old
            layer's weights).
        input_batch_size: If given (an int or ``None``), the clone's inputs get this static batch
            size (e.g. ``1`` for TFLite Micro); by default the inputs are kept as they are.

    Returns:
        The new model with every weight copied (or computed by ``weights_for``).

    Raises:
        TypeError: for a subclassed model, whose graph cannot be rewritten.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras.Model, got {type(model).__name__}")
    if not isinstance(model, keras.Sequential) and not getattr(model, "_is_graph_network", False):
        # Keras 3 functional models are instances of keras.src.models.Functional.
        from keras.src.models.functional import Functional

        if not isinstance(model, Functional):
            raise TypeError(
                f"cannot rewrite {type(model).__name__!r}: it is a subclassed model, whose call() "
                "is Python code rather than a graph. Build it with the functional API (as "
                "keras_hrf.models.build does), or merge each HRFDense yourself: "
                "layer.merged_weights() gives [kernel, bias] for a plain keras.layers.Dense."
            )
    replaced: dict[str, keras.layers.Layer] = {}

    def clone_layer(layer):
        if isinstance(layer, keras.Model):
            return rewrite(layer, replace, weights_for)
        new = replace(layer)
        if new is None:
            return layer.__class__.from_config(layer.get_config())
        if new.name != layer.name:
            raise ValueError(f"replacement of {layer.name!r} must keep its name, got {new.name!r}")
        replaced[layer.name] = layer
        return new

    input_tensors = None
    if input_batch_size is not ...:
        if isinstance(model, keras.Sequential):
            raise TypeError("changing the batch size is supported for functional models only")
        input_tensors = [
            keras.Input(
                batch_shape=(input_batch_size,) + tuple(t.shape[1:]), dtype=t.dtype, name=t.name
            )
            for t in model.inputs
        ]
        if len(input_tensors) == 1:
            input_tensors = input_tensors[0]
    clone = keras.models.clone_model(model, input_tensors=input_tensors, clone_function=clone_layer)
    old_by_name = {layer.name: layer for layer in model.layers}
    for layer in clone.layers:
        old = old_by_name.get(layer.name)
        if old is None:
            continue  # an Input layer recreated with a new batch size
        if isinstance(layer, keras.Model):
            continue  # weights were copied by the recursive call
        if layer.name in replaced:
            weights = (weights_for or (lambda lyr: lyr.get_weights()))(old)
        else:
            weights = old.get_weights()
        if weights or layer.weights:
            layer.set_weights(weights)
    return clone


def merge(model: keras.Model) -> keras.Model:
    """Replace every HRF layer of a trained model by its plain layer with merged weights.

    ``HRFDense`` becomes a ``Dense``, ``HRFPointwiseConv2D`` a 1x1 ``Conv2D`` (each layer's
    ``deploy_layer()``).

    Args:
        model: A functional (or Sequential) model, e.g. from :func:`keras_hrf.models.build` with
            ``hrf`` set, or a user's own functional model containing ``HRFDense`` layers.

    Returns:
        A new model; the input model is left untouched. A model without HRF layers gives an
        equivalent copy.

    Raises:
        TypeError: for a subclassed model (the message says what to do instead).
    """

    def to_plain(layer):
        return layer.deploy_layer() if isinstance(layer, HRFDense) else None

    return rewrite(model, to_plain, weights_for=lambda layer: layer.merged_weights())


def set_layer_norm_lowering(model: keras.Model, lowering: str) -> keras.Model:
    """The model with every :class:`~keras_hrf.layers.LayerNorm` set to ``lowering``.

    The float function is unchanged (see :mod:`keras_hrf.layers.layer_norm`): this only picks
    which TFLite ops the normalisations convert to, e.g. ``"l2"`` for a trained model whose
    ``"rsqrt"`` int8 graph loses accuracy on quiet frames.

    Args:
        model: A functional (or Sequential) model.
        lowering: One of :data:`keras_hrf.layers.layer_norm.LOWERINGS`.

    Returns:
        A new model (weights copied); the input model is left untouched.
    """
    from keras_hrf.layers.layer_norm import LOWERINGS, LayerNorm

    if lowering not in LOWERINGS:
        raise ValueError(f"LayerNorm lowering must be one of {LOWERINGS}, got {lowering!r}")

    def relower(layer):
        if type(layer) is not LayerNorm:  # a QAT twin mirrors one lowering: strip it first
            return None
        return LayerNorm.from_config({**layer.get_config(), "lowering": lowering})

    return rewrite(model, relower)
