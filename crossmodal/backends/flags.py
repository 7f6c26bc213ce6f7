"""The models' options as command-line flags: app.py and `python -m crossmodal.download weights` build their model
flags here from the specs, so a new model's options appear on both without touching either."""
from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from . import backend_spec, shared_options, users_of
from .spec import BackendSpec, Option


def add_model_flags(parser: argparse.ArgumentParser | argparse._ArgumentGroup, fetch: bool = False,
                    fetch_hint: str = "") -> None:
    """One flag per option of every model (`fetch`: per fetch option). Defaults stay None, so that what was given
    can be told from what was not; the option's own default applies later (BackendSpec.model_options)."""
    for option in shared_options(fetch):
        used_by = users_of(option)
        fetched_by = users_of(option, fetch=True)
        where = [f"--model {', '.join(used_by)}"] if used_by and not fetch else []
        if fetched_by and fetch_hint:
            where.append(f"{fetch_hint} --model {', '.join(fetched_by)}")
        default = f"; default {option.default}" if option.default is not None else ""
        help_text = f"{option.help} ({'; '.join(where)}{default})" if where or default else option.help
        if option.is_switch:
            parser.add_argument(option.flag, dest=option.dest, action="store_true", default=None, help=help_text)
        else:
            parser.add_argument(option.flag, dest=option.dest, type=option.type, default=None, help=help_text)


def given_by(args: argparse.Namespace) -> Callable[[Option], Any]:
    """The value a flag was given (None when it was not)."""
    return lambda option: getattr(args, option.dest, None)


def flags_of_other_models(spec: BackendSpec, args: argparse.Namespace, fetch: bool = False) -> list[str]:
    """Flags that were given but belong to other models than `spec` (`fetch`: among the fetch options)."""
    own = spec.fetch_options if fetch else (*spec.options, *spec.fetch_options)
    given = given_by(args)
    return [option.flag for option in shared_options(fetch) if option not in own and given(option) is not None]


def fetch_values(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """The fetch options of `model` as given on the command line (by option name; None when not given)."""
    given = given_by(args)
    return {option.name: given(option) for option in backend_spec(model).fetch_options}
