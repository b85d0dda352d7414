"""The registry of engines by name, and the checking of the options given to one.

A backend registers itself when its module is imported (:func:`register_engine` on its :class:`Engine` subclass);
everything else (the ``--engine`` choices, the option flags of ``goalcover score``, the checks of
``Scorer(engine_options=...)``) is read from the registered classes.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import GoalcoverError
from .base import COMMON_OPTIONS, Engine, EngineOption

EngineOptions = tuple[tuple[str, Any], ...]  # sorted (name, value) pairs: hashable, so engines cache per process

_ENGINES: dict[str, type[Engine]] = {}


def _declared(cls: type[Engine]) -> dict[str, EngineOption]:
    return {option.name: option for option in COMMON_OPTIONS + tuple(cls.options)}


def register_engine(name: str):
    """Class decorator: register an :class:`Engine` subclass under ``name`` (``Scorer(engine=name)``,
    ``goalcover score --engine name``) and set its ``name``.

    An option that several engines declare must have the same type in each: it is one command-line flag.

    Example:
        >>> @register_engine("toy")
        ... class ToyEngine(Engine):
        ...     options = (EngineOption("bias", float, "added to every score", default=0.0),)
    """

    def register(cls: type[Engine]) -> type[Engine]:
        if not (isinstance(cls, type) and issubclass(cls, Engine)):
            raise TypeError(f"register_engine({name!r}) decorates an Engine subclass, not {cls!r}")
        previous = _ENGINES.get(name)
        # The same class defined again (a reloaded module, a notebook cell run twice) replaces itself.
        if previous is not None and (previous.__module__, previous.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"engine name {name!r} is taken by {previous.__module__}.{previous.__qualname__}")
        common = {o.name for o in COMMON_OPTIONS}
        for option in cls.options:
            if option.name in common:
                raise ValueError(f"engine {name!r} declares {option.name}, which every engine takes already")
            for other_name, other in _ENGINES.items():
                known = _declared(other).get(option.name)
                if other_name != name and known and (known.type, known.choices) != (option.type, option.choices):
                    raise ValueError(f"engine {name!r} declares {option.name} unlike engine {other_name!r} (type "
                                     "or choices): an option is one command-line flag, the same for every engine")
        cls.name = name
        _ENGINES[name] = cls
        return cls

    return register


def engine_names() -> list[str]:
    """Names of the registered engines, the built-in ones first (``transformers``, ``llamacpp``, ``openai``)."""
    return list(_ENGINES)


def engine_class(name: str) -> type[Engine]:
    """The engine class registered under ``name``; raises :class:`GoalcoverError` listing the names there are."""
    try:
        return _ENGINES[name]
    except KeyError:
        raise GoalcoverError(f"unknown engine {name!r}; available: {', '.join(_ENGINES)}") from None


def all_options() -> dict[str, tuple[EngineOption, list[str]]]:
    """Every option of every registered engine: ``{name: (option, [engines that take it])}``, in declaration order.

    Example:
        >>> option, engines = all_options()["threads"]
        >>> option.flag, engines
        ('--threads', ['transformers', 'llamacpp'])
    """
    out: dict[str, tuple[EngineOption, list[str]]] = {}
    for engine, cls in _ENGINES.items():
        for option in _declared(cls).values():
            out.setdefault(option.name, (option, []))[1].append(engine)
    return out


def engine_options(engine: str, options: Mapping[str, Any] | EngineOptions | None = None) -> EngineOptions:
    """Check ``options`` against what ``engine`` takes and normalize them.

    Args:
        engine: a registered engine name.
        options: ``{name: value}`` (or ``(name, value)`` pairs); a None value counts as not given.

    Returns:
        The options given, checked and in canonical form, as a sorted tuple of ``(name, value)`` pairs.

    Example:
        >>> engine_options("openai", {"base_url": "http://127.0.0.1:8000/", "max_in_flight": 16})
        (('base_url', 'http://127.0.0.1:8000/v1'), ('max_in_flight', 16))
    """
    cls = engine_class(engine)
    declared = _declared(cls)
    given = {k: v for k, v in dict(options or {}).items() if v is not None}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        message = f"engine {engine!r} does not take {', '.join(unknown)} (its options: {', '.join(declared)})"
        elsewhere = all_options()
        for name in unknown:
            if name in elsewhere:
                takers = elsewhere[name][1]
                message += f"; {name} is an option of {', '.join(repr(e) for e in takers)} (--engine {takers[0]})"
        raise GoalcoverError(message)
    checked = {k: declared[k].check(engine, v) for k, v in given.items()}
    return tuple(sorted(cls.normalize_options(checked).items()))
