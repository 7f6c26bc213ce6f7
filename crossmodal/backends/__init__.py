"""Model backend registry: a name on the command line or in a flow YAML picks the model."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .base import BackendUnavailableError, ModelBackend, l2_normalise

DEFAULT_BACKEND = "offline"

_FACTORIES: dict[str, Callable[..., ModelBackend]] = {}


def register_backend(name: str) -> Callable[[Callable[..., ModelBackend]], Callable[..., ModelBackend]]:
    """Decorator that makes a backend factory available under `name`."""

    def decorate(factory: Callable[..., ModelBackend]) -> Callable[..., ModelBackend]:
        _FACTORIES[name] = factory
        return factory

    return decorate


def available_backends() -> list[str]:
    _load_builtin_backends()
    return sorted(_FACTORIES)


def create_backend(name: str = DEFAULT_BACKEND, **options: Any) -> ModelBackend:
    """Instantiate a registered backend; unknown names list the known ones."""
    _load_builtin_backends()
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown model backend {name!r}; available: {', '.join(sorted(_FACTORIES))}") from None
    return factory(**options)


def create_backend_from_config(name: str, options: dict | str | None = None) -> ModelBackend:
    """Like create_backend, with options as a dict or a JSON object string (how flow YAMLs pass them)."""
    if isinstance(options, str):
        try:
            options = json.loads(options) if options.strip() else {}
        except json.JSONDecodeError as error:
            raise ValueError(f"model options must be a JSON object, got {options!r}: {error}") from None
    if not isinstance(options or {}, dict):
        raise ValueError(f"model options must be a JSON object, got {options!r}")
    return create_backend(name, **(options or {}))


def _load_builtin_backends() -> None:
    # Imported lazily so that importing the registry does not pull in torch.
    from . import clip, offline, vsepp  # noqa: F401


__all__ = [
    "BackendUnavailableError",
    "DEFAULT_BACKEND",
    "ModelBackend",
    "available_backends",
    "create_backend",
    "create_backend_from_config",
    "l2_normalise",
    "register_backend",
]
