"""aiogram's models get their pydantic validators and serializers when first used.

aiogram builds a validator and a serializer for each of its ~590 types and methods at import,
each with inline copies of every type it nests: some 80 MB of the process, for a bot that meets
a few dozen of them. :func:`defer_models` swaps each for pydantic's own stand-in, the one it
gives models declared with ``defer_build`` (as vkbottle declares its own), which builds the
real one from the class's core schema the first time it is touched. Same schema, same config:
they validate and dump exactly as before; the first update of a kind costs a few milliseconds
more.

This leans on pydantic's internals (the stand-in class, the validator factory). Should they
move in a later pydantic, nothing is deferred and the bot runs as it did, with the memory.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)


AIOGRAM = ("aiogram.types", "aiogram.methods")


def defer_models(*packages: str) -> int:
    """Defer the validators and serializers of the models in the loaded modules of
    ``packages``; how many models."""
    try:
        from pydantic import BaseModel
        from pydantic._internal._config import ConfigWrapper
        from pydantic._internal._mock_val_ser import MockValSer
        from pydantic.plugin._schema_validator import create_schema_validator
        from pydantic_core import SchemaSerializer
    except ImportError as exc:  # a pydantic that moved its internals: keep aiogram's models
        log.info("the platforms' models are kept as built (%s)", exc)
        return 0

    stand_in = _stand_in_class(MockValSer)

    def defer(cls: type[BaseModel]) -> None:
        schema = cls.__pydantic_core_schema__
        config = ConfigWrapper(cls.model_config, check=False)

        def validator() -> Any:
            built = create_schema_validator(
                schema,
                cls,
                cls.__module__,
                cls.__qualname__,
                "BaseModel",
                config.core_config(title=cls.__name__),
                config.plugin_settings,
            )
            cls.__pydantic_validator__ = built
            return built

        def serializer() -> Any:
            built = SchemaSerializer(schema, config.core_config(title=cls.__name__))
            cls.__pydantic_serializer__ = built
            return built

        cls.__pydantic_validator__ = _stand_in(stand_in, "validator", validator)
        cls.__pydantic_serializer__ = _stand_in(stand_in, "serializer", serializer)

    deferred = 0
    modules = [
        module
        for name, module in list(sys.modules.items())
        if module is not None and any(name == p or name.startswith(p + ".") for p in packages)
    ]
    for cls in _models(BaseModel, modules):
        try:
            defer(cls)
        except Exception as exc:  # one odd model stays as built; the others are still deferred
            log.debug("%s kept as built (%s)", cls.__name__, exc.__class__.__name__)
            continue
        deferred += 1
    return deferred


def _stand_in_class(mock: Any) -> Any:
    class StandIn(mock):  # type: ignore[misc]
        def __getattr__(self, item: str) -> Any:
            # pydantic-core, building a validator, asks each model class it meets (this one
            # included) for a prebuilt validator by a dunder name. A stand-in has none: were
            # the question to build it, a build would start itself over and over, ~200 deep.
            if item.startswith("__"):
                raise AttributeError(item)
            return super().__getattr__(item)

    return StandIn


def _stand_in(stand_in: Any, kind: str, build: Callable[[], Any]) -> Any:
    return stand_in(
        f"aiogram model's {kind} could not be built",
        code="class-not-fully-defined",
        val_or_ser=kind,
        attempt_rebuild=build,
    )


def _models(base: type[Any], modules: list[ModuleType]) -> list[type[Any]]:
    """The complete pydantic models the modules hold (generic templates aside), each once."""
    found: dict[int, type[Any]] = {}
    for module in modules:
        for cls in list(vars(module).values()):
            if (
                isinstance(cls, type)
                and issubclass(cls, base)
                and cls.__dict__.get("__pydantic_complete__", False)
                and "__pydantic_validator__" in cls.__dict__
                and not getattr(cls, "__pydantic_generic_metadata__", {}).get("parameters")
            ):
                found[id(cls)] = cls
    return list(found.values())
