"""Model registry: register builders by name, create models by name, list what exists and of which family.

A builder's return annotation names its model class (a ``FamilyModel``), so the registry knows every name's
family, head and display name without building anything.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any

from torch import nn

from .family import FamilyModel, as_family

ModelBuilder = Callable[..., nn.Module]
_BUILDERS: dict[str, ModelBuilder] = {}
_CLASSES: dict[str, type[FamilyModel]] = {}


def register_model(builder: ModelBuilder) -> ModelBuilder:
    """Register ``builder`` under its function name.

    Raises:
        ValueError: the name is already registered.
        TypeError: the builder is not annotated to return a ``FamilyModel`` subclass.
    """
    name = builder.__name__
    if name in _BUILDERS:
        raise ValueError(f"model {name!r} is already registered")
    model_class = typing.get_type_hints(builder).get("return")
    if not (isinstance(model_class, type) and issubclass(model_class, FamilyModel)):
        raise TypeError(f"builder {name!r} must be annotated to return a FamilyModel subclass, not {model_class!r}")
    _BUILDERS[name] = builder
    _CLASSES[name] = model_class
    return builder


def list_models(family: str | None = None) -> list[str]:
    """Names of every registered model, sorted; only those of ``family`` (e.g. ``"resnet"``) when given."""
    return sorted(name for name, cls in _CLASSES.items() if family is None or cls.family == family)


def model_class(name: str) -> type[FamilyModel]:
    """The class that the builder ``name`` returns (its family facts, without building it)."""
    try:
        return _CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def model_family(name: str) -> str:
    """The family of a registered model name, e.g. ``"resnext"`` for ``se_resnext50_32x4d``."""
    return model_class(name).family


def display_name(name: str) -> str:
    """How people write a registered name (``SE-ResNeXt-50 (32x4d)``); unknown names come back unchanged."""
    cls = _CLASSES.get(name)
    return name if cls is None else cls.display_name(name)


def create_model(name: str, *, num_classes: int = 1000, **kwargs: Any) -> FamilyModel:
    """Build the registered model ``name`` with a head of ``num_classes`` outputs."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None
    return as_family(builder(num_classes=num_classes, **kwargs))
