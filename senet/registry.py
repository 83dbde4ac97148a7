"""Model registry: register builders by name, create models by name, list what exists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

ModelBuilder = Callable[..., nn.Module]
_BUILDERS: dict[str, ModelBuilder] = {}


def register_model(builder: ModelBuilder) -> ModelBuilder:
    """Register ``builder`` under its function name; registering a name twice is an error."""
    name = builder.__name__
    if name in _BUILDERS:
        raise ValueError(f"model {name!r} is already registered")
    _BUILDERS[name] = builder
    return builder


def list_models() -> list[str]:
    """Names of every registered model, sorted."""
    return sorted(_BUILDERS)


def create_model(name: str, *, num_classes: int = 1000, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with a head of ``num_classes`` outputs."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None
    return builder(num_classes=num_classes, **kwargs)


def builder_options(name: str) -> dict[str, Any]:
    """The keyword options of the registered builder ``name`` (besides ``num_classes``) and their defaults."""
    import inspect

    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None
    return {
        param.name: param.default for param in inspect.signature(builder).parameters.values()
        if param.kind is inspect.Parameter.KEYWORD_ONLY and param.name != "num_classes"
    }
