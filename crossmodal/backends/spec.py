"""What a model backend declares about itself, so that the CLI, the weight download, the deployment and the
published-results table all derive from one place: adding a model is one module with one `SPEC`.

This module and every spec module import nothing heavy (no torch): the registry imports them all to list the models.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crossmodal.evaluation.published import PublishedResult
from crossmodal.modality import IMAGE, TEXT

from .base import ModelBackend

TOWERS: tuple[str, ...] = (IMAGE, TEXT)


@dataclass(frozen=True)
class Option:
    """One option of a backend: a keyword of its factory, a key of `model_options` (flow YAMLs, model.json) and a
    command-line flag of app.py (and, for fetch options, of `python -m crossmodal.download weights`)."""

    name: str
    flag: str
    help: str
    type: Callable[[str], Any] = str  # bool: a flag without a value
    default: Any = None
    path: bool = False  # a file or folder: made absolute when it exists (the encoders run in other processes)
    required: bool = False

    @property
    def dest(self) -> str:
        """The attribute argparse stores the flag's value under."""
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def is_switch(self) -> bool:
        return self.type is bool

    def value(self, given: Any) -> Any:
        """The option's value from a command-line value: paths that exist become absolute."""
        if self.path and given is not None:
            path = Path(given)
            return str(path.resolve()) if path.exists() else str(given)
        return given

    def flags(self, value: Any) -> list[str]:
        """The command-line flags that give this option `value`."""
        if self.is_switch:
            return [self.flag] if value else []
        return [self.flag, str(value)]


WeightsFetcher = Callable[..., dict[str, Any]]


def _weights_after_name(model_name: str) -> str:
    return model_name.split(":", 1)[1] if ":" in model_name else ""


@dataclass(frozen=True)
class BackendSpec:
    """A model backend: how to create it, its options, how to fetch its weights, its published results.

    `factory(towers=..., **options)` creates the backend with only the towers a process needs. `fetch(to, **values)`
    puts the weights under the folder `to` (its keywords are `fetch_options`, defaults filled in) and returns the
    model options that load them. Published rows match a loaded model when `row.weights` is None (any weights) or
    equals `weights_of(model name)`.
    """

    name: str
    summary: str
    factory: Callable[..., ModelBackend]
    fetch: WeightsFetcher
    options: tuple[Option, ...] = ()
    fetch_options: tuple[Option, ...] = ()
    published: tuple[PublishedResult, ...] = ()
    weights_of: Callable[[str], str] = _weights_after_name
    check_before_start: bool = True  # load once before a flow starts: its weights may be missing or wrong

    def model_options(self, given: Callable[[Option], Any]) -> dict[str, Any]:
        """`model_options` from command-line values (`given(option)`, None when not given: the option's default);
        options without a value and false switches are left out, so that the backend's own defaults apply."""
        options = {}
        for option in self.options:
            raw = given(option)
            value = option.value(option.default if raw is None else raw)
            if value is not None and value is not False:
                options[option.name] = value
        return options

    def missing(self, given: Callable[[Option], Any]) -> list[Option]:
        """Required options without a value."""
        return [option for option in self.options if option.required and given(option) in (None, False)]

    def flags(self, model_options: Mapping[str, Any]) -> list[str]:
        """The command-line flags that load a model with `model_options` (the inverse of `model_options`)."""
        known = {option.name: option for option in self.options}
        unknown = sorted(set(model_options) - set(known))
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not options of the {self.name} model "
                             f"(its options: {', '.join(known) or 'none'})")
        return [flag for option in self.options if option.name in model_options
                for flag in option.flags(model_options[option.name])]

    def fetch_values(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """The keywords of `fetch`: given values (by option name) over the defaults."""
        return {option.name: option.default if given.get(option.name) is None else given[option.name]
                for option in self.fetch_options}


# Options that several models take; a model lists the ones it accepts.
THREADS = Option("threads", "--threads", "torch threads per encoder", type=int)

# Where a model's forward runs. onnx: ONNX Runtime, the towers exported from the loaded torch weights on first use,
# checked against torch (cosine >= 0.9999 on fixed inputs) and cached; a tower that fails the check runs in torch,
# with a warning. onnx-int8: the same with int8 dynamic quantisation of the weights (opt-in; not checked to 0.9999).
# See crossmodal.backends.models.onnx_runtime. The default is onnx (measured faster in the flows, and an encoder
# process whose export is cached never loads torch); --runtime torch keeps the torch forward.
RUNTIMES: tuple[str, ...] = ("torch", "onnx", "onnx-int8")
DEFAULT_RUNTIME = "onnx"


def check_runtime(runtime: str | None) -> str:
    """`runtime` when it is one of RUNTIMES (None: DEFAULT_RUNTIME); ValueError otherwise. Named `runtime`, so
    that argparse says "invalid runtime value"."""
    value = DEFAULT_RUNTIME if runtime is None else str(runtime).strip().lower()
    if value not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
    return value


def runtime(value: str) -> str:
    """argparse type of --runtime."""
    return check_runtime(value)


# No Option default: model_options then leave the runtime out unless it is given, and the backend's own default
# (DEFAULT_RUNTIME) applies, so flows and model.json files written before this option stay the same.
RUNTIME = Option("runtime", "--runtime",
                 f"where the encoders run: {' | '.join(RUNTIMES)} (default {DEFAULT_RUNTIME}; onnx: ONNX Runtime, "
                 "exported from the loaded weights on first use, checked against torch and cached)",
                 type=runtime)

# One runtime per tower (the offline model): a tower's runtime is its own option when given, else --runtime, else
# DEFAULT_RUNTIME. So `--image-runtime onnx-int8` runs the image tower in int8 while the text tower stays fp32
# (MiniLM's int8 export is refused by its check; EfficientNet-Lite0's passes). No defaults here, as for RUNTIME.
# argparse checks the value (`runtime`), so a typo is refused before any flow starts.
IMAGE_RUNTIME = Option("image_runtime", "--image-runtime",
                       f"where the image encoder runs: {' | '.join(RUNTIMES)} (default: --runtime)", type=runtime)
TEXT_RUNTIME = Option("text_runtime", "--text-runtime",
                      f"where the text encoder runs: {' | '.join(RUNTIMES)} (default: --runtime)", type=runtime)
