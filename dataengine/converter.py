"""Converter plugin interface and registry: a new dataset is one package `converters/<name>/`.

A converter lists independent work units (nuScenes scenes, Waymo segments, BDD-X videos)
in the driver, and turns one unit into records inside a Ray worker. Each source record
becomes exactly one `Record` (written) or one `Quarantined` (with its reason), which is
how the job keeps records in = written + quarantined.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
import typing
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator

from dataengine.cameras import check_table
from dataengine.errors import UsageError

UNIT_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Unit:
    """One independent piece of work. `payload` must be small and JSON-serializable:
    it travels through Ray's object store, so it carries metadata and paths, never image bytes."""

    id: str
    split: str
    payload: Any = None


@dataclass
class Record:
    """A converted sample plus its media bytes, in the order of its `media`. The writer fills
    each media item's `sha1` from the bytes. `context` holds the fields the samples of one key
    frame share (cameras, objects, frame ids, frame-level meta): stored once, not per sample,
    and merged back by the reader (`dataengine/context.py`); `sample` then holds the rest."""

    sample: dict
    media: list[bytes] = field(default_factory=list)
    context: dict | None = None


@dataclass(frozen=True)
class Quarantined:
    """A source record that could not be converted, and why."""

    record_id: str
    reason: str


@dataclass(frozen=True)
class NoOptions:
    """Converters without options use this."""


class Converter(ABC):
    """Subclass, set `name`, `version`, `options_type`, `cameras`, register with `@register`.

    `__init__` must stay cheap: it runs once per Ray task. Heavy reading (table indexes)
    belongs in `units()`, which runs once in the driver.
    """

    name: ClassVar[str]
    version: ClassVar[str]
    options_type: ClassVar[type] = NoOptions
    cameras: ClassVar[dict[str, str]] = {}
    """The source's camera names -> canonical names (`dataengine.cameras`), in the source's order."""

    def __init__(self, src: Path, options: Any = None):
        self.src = Path(src)
        self.options = options if options is not None else self.options_type()

    @abstractmethod
    def check_source(self) -> None:
        """Raise UsageError (one line) when `src` is missing or is not this dataset."""

    @abstractmethod
    def units(self) -> Iterable[Unit]:
        """The work units, in a deterministic order: a list, or a generator, which the job
        packs unit by unit so that no more than one unit's payload objects are alive."""

    @abstractmethod
    def convert_unit(self, unit: Unit) -> Iterator[Record | Quarantined]:
        """Yield one Record or Quarantined per source record of the unit."""


_REGISTRY: dict[str, type[Converter]] = {}


def register(cls: type[Converter]) -> type[Converter]:
    """Class decorator: one registration line per converter module."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"converter name {cls.name!r} registered twice "
                         f"({_REGISTRY[cls.name].__module__} and {cls.__module__})")
    check_table(cls.cameras, cls.name)
    _REGISTRY[cls.name] = cls
    return cls


def _dataset_packages() -> list[str]:
    """The dataset packages under `converters/`; its plain modules (shared fixture helpers) are not datasets."""
    import converters

    return [m.name for m in pkgutil.iter_modules(converters.__path__) if m.ispkg and not m.name.startswith("_")]


def _discover() -> None:
    """Import each dataset package: its `__init__` imports just the converter modules (and the
    readers they run), never a fixture writer."""
    for name in _dataset_packages():
        importlib.import_module(f"converters.{name}")


def registry() -> dict[str, type[Converter]]:
    _discover()
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> type[Converter]:
    """The converter registered as `name`; imports only its package when one is named alike."""
    if name not in _REGISTRY and name in _dataset_packages():
        importlib.import_module(f"converters.{name}")
    if name in _REGISTRY:
        return _REGISTRY[name]
    known = registry()
    if name not in known:
        raise UsageError(f"unknown dataset {name!r}; known: {', '.join(known)}")
    return known[name]


def parse_options(cls: type[Converter], raw: dict[str, Any]) -> Any:
    """Build the converter's typed options from CLI values (only the fields it declares)."""
    hints = typing.get_type_hints(cls.options_type)
    values = {}
    for key, value in raw.items():
        if value is None or key not in hints:
            continue
        ftype = next((a for a in typing.get_args(hints[key]) if a is not type(None)), hints[key])
        if isinstance(value, ftype):
            values[key] = value
        elif ftype is bool:
            if str(value).lower() not in ("1", "0", "true", "false", "yes", "no"):
                raise UsageError(f"--{key.replace('_', '-')} takes true or false, got {value!r}")
            values[key] = str(value).lower() in ("1", "true", "yes")
        else:
            try:
                values[key] = ftype(value)
            except ValueError:
                raise UsageError(f"--{key.replace('_', '-')}: {value!r} is not a valid {ftype.__name__}") from None
    return cls.options_type(**values)


def options_dict(options: Any) -> dict:
    return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(options).items()}


def check_unit_id(unit: Unit) -> None:
    if not UNIT_ID_RE.match(unit.id):
        raise ValueError(f"unit id {unit.id!r} must match [A-Za-z0-9_-]+")
