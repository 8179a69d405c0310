"""The one graph rewrite of keras-hrf: clone a functional model, replacing layers, moving weights
by name.

Everything that turns one model into another goes through :func:`rewrite`: deHRF
(:func:`keras_hrf.reparam.merge`) and its inverse (:func:`keras_hrf.reparam.expand`), the batch-1
rebuild of the TFLite exporter, the LayerNorm lowering and the quantization-aware twins
(:mod:`keras_hrf.quantization.qat`). Its contract, in the style of tensorflow/model-optimization's
graph transforms: same inputs, same outputs, same layer names; a layer that is not replaced keeps
every weight; a replaced layer gets its weights from ``weights_for`` or, by default, every weight
whose name it shares with the old layer (a twin's extra variables, e.g. range trackers, keep their
initial values).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np

#: What ``weights_for`` may return: ``{variable name: value}``, or values in the new layer's
#: ``weights`` order.
Weights = Mapping[str, np.ndarray] | Sequence[np.ndarray]


@functools.cache
def _functional_class() -> type:
    # Keras' public API has no name for the functional model class (it lives in keras.src), but
    # keras.Model(inputs, outputs) returns an instance of it: ask once.
    x = keras.Input((1,))
    return type(keras.Model(x, x))


def is_graph_model(model: keras.Model) -> bool:
    """Whether ``model`` is a functional or Sequential model (a graph that can be rewritten),
    rather than a subclassed one whose ``call`` is Python code."""
    return isinstance(model, keras.Sequential | _functional_class())


def variable_name(variable) -> str:
    """A variable's name inside its layer (``"kernel"``, ``"factor_0"``, ``"out_min"``)."""
    return variable.path.rsplit("/", 1)[-1]


def copy_weights_by_name(source: keras.layers.Layer, target: keras.layers.Layer) -> None:
    """Set every variable of ``target`` that ``source`` has a variable of the same name for.

    Raises:
        ValueError: a variable of ``source`` with no counterpart in ``target`` (its value would be
            lost), or two of the same name with different shapes.
    """
    values = {variable_name(v): v for v in source.weights}
    names = {variable_name(v) for v in target.weights}
    lost = sorted(set(values) - names)
    if lost:
        raise ValueError(
            f"rewrite of layer {source.name!r}: the replacement has no variable {lost} "
            f"(it has {sorted(names)}); pass weights_for to say where they go"
        )
    for v in target.weights:
        old = values.get(variable_name(v))
        if old is None:
            continue
        if tuple(old.shape) != tuple(v.shape):
            raise ValueError(
                f"rewrite of layer {source.name!r}: variable {variable_name(v)!r} has shape "
                f"{tuple(old.shape)}, its replacement {tuple(v.shape)}"
            )
        v.assign(old)


def _set_weights(layer: keras.layers.Layer, weights: Weights) -> None:
    if isinstance(weights, Mapping):
        by_name = {variable_name(v): v for v in layer.weights}
        unknown = sorted(set(weights) - set(by_name))
        if unknown:
            raise ValueError(f"layer {layer.name!r} has no variable {unknown}")
        for name, value in weights.items():
            by_name[name].assign(value)
    else:
        layer.set_weights(list(weights))


def rewrite(
    model: keras.Model,
    replace: Callable[[keras.layers.Layer], keras.layers.Layer | None],
    weights_for: Callable[[keras.layers.Layer], Weights] | None = None,
    input_batch_size: int | None | type(...) = ...,
) -> keras.Model:
    """Clone a functional/Sequential model, optionally replacing layers and the batch size.

    Args:
        model: A functional or Sequential Keras model.
        replace: ``fn(layer) -> new layer | None``; ``None`` keeps a fresh copy of the layer.
            A new layer must keep the old layer's name.
        weights_for: ``fn(old_layer) -> weights`` of a replaced layer (a ``{name: value}`` dict
            or a list in the new layer's order); default: :func:`copy_weights_by_name`.
        input_batch_size: If given (an int or ``None``), the clone's inputs get this static batch
            size (e.g. ``1`` for TFLite Micro); by default the inputs are kept as they are.

    Returns:
        The new model with every weight copied (or computed by ``weights_for``).

    Raises:
        TypeError: for a subclassed model, whose graph cannot be rewritten.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"expected a keras.Model, got {type(model).__name__}")
    if not is_graph_model(model):
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
        if old is None or isinstance(layer, keras.Model):
            continue  # an Input layer recreated with a new batch size / copied recursively
        if layer.name in replaced and weights_for is not None:
            _set_weights(layer, weights_for(old))
        elif layer.name in replaced:
            copy_weights_by_name(old, layer)
        elif old.weights or layer.weights:
            layer.set_weights(old.get_weights())
    return clone
