"""The model and engine flags of every command that loads a model, built from the engine registry.

Each option an engine declares becomes a flag ``--NAME-WITH-DASHES`` whose help names the engines taking it, so a
newly registered engine's options appear in ``--help`` with no change here. ``--engine-arg KEY=VALUE`` reaches any
option by name. Only the options the user set are passed on (as ``engine_options``); the engine applies its defaults.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import GoalcoverError

DEST = "engine_option_"  # argparse dest prefix of the registry's options
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def registry() -> tuple[dict[str, tuple[Any, list[str]]], list[str]]:
    """``(options, engine names)`` of the engines registered now: option name -> (its :class:`EngineOption`, the
    engines taking it)."""
    from ..engines import all_options, engine_names

    return all_options(), engine_names()


def add_model_options(parser: argparse.ArgumentParser, model_default: str, engine_default: str) -> None:
    """Add ``--model``, ``--engine``, one flag per engine option, and ``--engine-arg`` (all default None: unset).

    Args:
        model_default: how the help states the default model, e.g. ``"embedded"`` or ``"the run's"``.
        engine_default: the same for the engine.
    """
    options, names = registry()
    group = parser.add_argument_group("model and engine")
    group.add_argument("--model", help=f"embedded | HF id | folder | .gguf; for a server, its served model name "
                       f"(default: {model_default})")
    group.add_argument("--engine", choices=names, help=f"what runs the model (default: {engine_default})")
    for name, (option, takers) in sorted(options.items()):
        flag = "--" + name.replace("_", "-")
        if flag in parser._option_string_actions:  # a command flag of that name: --engine-arg still reaches it
            continue
        stated = option.default is None or "default" in option.help  # most helps say their default in words
        where = ("" if stated else f"default {option.default}; ") + f"engines: {', '.join(takers)}"
        kwargs: dict[str, Any] = {"dest": DEST + name, "default": None,
                                  "help": f"{option.help} ({where})".replace("%", "%%")}
        if option.type is bool:
            kwargs.update(action="store_const", const=True)
        else:
            kwargs.update(type=option.type, choices=option.choices, metavar=None if option.choices else name.upper())
        group.add_argument(flag, **kwargs)
    group.add_argument("--engine-arg", action="append", default=[], metavar="KEY=VALUE",
                       help="any engine option by name, e.g. --engine-arg max_in_flight=32 (repeatable)")


def engine_options(args: argparse.Namespace, engine: str) -> dict[str, Any]:
    """The engine options the user set (flags and ``--engine-arg``), checked against what ``engine`` takes.

    Raises:
        GoalcoverError: an unknown ``--engine-arg`` key or a value of the wrong type, or an option ``engine`` does
            not take; the message names the flag and the engine's options.
    """
    options, _ = registry()
    chosen = {name: getattr(args, DEST + name) for name in options if getattr(args, DEST + name, None) is not None}
    for item in getattr(args, "engine_arg", []):
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in options or engine not in options[key][1]:
            raise GoalcoverError(f"--engine-arg {item!r}: engine {engine!r} has no option {key!r} "
                                 f"(its options: {', '.join(_taken_by(options, engine)) or 'none'})")
        chosen[key] = _cast(options[key][0], value.strip(), item)
    for name in chosen:
        takers = options[name][1]
        if engine not in takers:
            raise GoalcoverError(f"--{name.replace('_', '-')} is an option of engine{'s' * (len(takers) > 1)} "
                                 f"{', '.join(takers)}, not of "
                                 f"{engine!r} (its options: {', '.join(_taken_by(options, engine)) or 'none'}); "
                                 f"pass --engine {takers[0]} to use it")
    return chosen


def _taken_by(options: dict, engine: str) -> list[str]:
    return sorted(name for name, (_, takers) in options.items() if engine in takers)


def _cast(option, value: str, item: str) -> Any:
    """``value`` as ``option``'s type (a bool reads true/false, yes/no, on/off, 1/0)."""
    cast = None
    if option.type is bool:
        if value.lower() in TRUE + FALSE:
            return value.lower() in TRUE
    else:
        try:
            cast = option.type(value)
        except ValueError:
            pass
    if cast is None or (option.choices and cast not in option.choices):
        wanted = ", ".join(map(str, option.choices)) if option.choices else f"a {option.type.__name__}"
        raise GoalcoverError(f"--engine-arg {item!r}: {option.name} takes {wanted}, not {value!r}")
    return cast
