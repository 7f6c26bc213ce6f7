"""Model backend registry: a name on the command line or in a flow YAML picks the model.

Every module of this package that defines `SPEC` (a `BackendSpec`) is a model; adding one is adding a module.
Spec modules import nothing heavy, and the models' code (torch) lives in `crossmodal.backends.models`, imported only
when a backend is created, so listing the models stays cheap.
"""
from __future__ import annotations

import functools
import importlib
import json
import pkgutil
from collections.abc import Iterable
from typing import Any

from crossmodal.evaluation.published import PublishedResult

from .base import BackendUnavailableError, ModelBackend, TowerNotLoadedError, l2_normalise
from .spec import TOWERS, BackendSpec, Option

DEFAULT_BACKEND = "offline"


@functools.cache
def backend_specs() -> dict[str, BackendSpec]:
    """Name -> spec of every model module in this package, sorted by name."""
    found: dict[str, BackendSpec] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.ispkg:
            continue
        spec = getattr(importlib.import_module(f"{__name__}.{module_info.name}"), "SPEC", None)
        if isinstance(spec, BackendSpec):
            if spec.name in found:
                raise RuntimeError(f"two model modules declare the name {spec.name!r}")
            found[spec.name] = spec
    return dict(sorted(found.items()))


def available_backends() -> list[str]:
    return list(backend_specs())


def backend_spec(name: str) -> BackendSpec:
    """The spec of model `name`; unknown names list the known ones."""
    try:
        return backend_specs()[name]
    except KeyError:
        raise ValueError(f"unknown model backend {name!r}; available: {', '.join(backend_specs())}") from None


def spec_of_model_name(model_name: str) -> BackendSpec | None:
    """The spec of a loaded model's `name` (`<backend>:<weights>`, as stored in an index), or None."""
    return backend_specs().get(model_name.split(":", 1)[0])


def published_results(backend_name: str, dataset: str = "f30k") -> list[PublishedResult]:
    """Published rows for the loaded model `backend_name` (`<backend>:<weights>`) on `dataset` (possibly none).

    The rows live in each backend's spec (crossmodal/backends/<name>.py), which says which loaded weights they
    describe (`BackendSpec.weights_of`); a model loaded from a file named only by its hash gets none. A row may
    describe a model family rather than the exact weights loaded: callers print rows as published references.
    """
    spec = spec_of_model_name(backend_name)
    if spec is None:
        return []
    weights = spec.weights_of(backend_name)
    return [row for row in spec.published if row.dataset == dataset and row.weights in (None, weights)]


def shared_options(fetch: bool = False) -> list[Option]:
    """The options of all models (with `fetch`: their fetch options), each flag once, in the order declared.

    Models may share an option (`--threads`) only when they declare it identically.
    """
    by_flag: dict[str, Option] = {}
    for spec in backend_specs().values():
        for option in (spec.fetch_options if fetch else (*spec.options, *spec.fetch_options)):
            known = by_flag.setdefault(option.flag, option)
            if known != option:
                raise RuntimeError(f"{option.flag} is declared differently by two models: {known} and {option}")
    return list(by_flag.values())


def users_of(option: Option, fetch: bool = False) -> list[str]:
    """The models that load with `option` (with `fetch`: that fetch their weights with it)."""
    return [spec.name for spec in backend_specs().values()
            if option in (spec.fetch_options if fetch else spec.options)]


def create_backend(name: str = DEFAULT_BACKEND, towers: Iterable[str] = TOWERS, **options: Any) -> ModelBackend:
    """Instantiate a model with only the `towers` ("image", "text") a process needs."""
    return backend_spec(name).factory(towers=tuple(towers), **options)


def model_options_dict(options: dict | str | None) -> dict[str, Any]:
    """Model options given as a dict or a JSON object string (how flow YAMLs pass them) as a new dict."""
    if isinstance(options, str):
        try:
            options = json.loads(options) if options.strip() else {}
        except json.JSONDecodeError as error:
            raise ValueError(f"model options must be a JSON object, got {options!r}: {error}") from None
    if not isinstance(options or {}, dict):
        raise ValueError(f"model options must be a JSON object, got {options!r}")
    return dict(options or {})


def create_backend_from_config(name: str, options: dict | str | None = None,
                               towers: Iterable[str] = TOWERS) -> ModelBackend:
    """Like create_backend, with options as a dict or a JSON object string (how flow YAMLs pass them)."""
    return create_backend(name, towers, **model_options_dict(options))


__all__ = [
    "TOWERS",
    "BackendSpec",
    "BackendUnavailableError",
    "DEFAULT_BACKEND",
    "ModelBackend",
    "Option",
    "TowerNotLoadedError",
    "available_backends",
    "backend_spec",
    "backend_specs",
    "create_backend",
    "create_backend_from_config",
    "l2_normalise",
    "model_options_dict",
    "published_results",
    "shared_options",
    "spec_of_model_name",
    "users_of",
]
