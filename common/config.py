"""Study parameters: declared once, validated before anything runs, resolved against a profile.

A study (smile, hafem) declares its parameters as :class:`Param` objects and its profiles (``demo``, ``paper``) as
plain dicts of defaults. A notebook's ``parameters`` cell holds the same names; a value of ``None`` there means
"take it from the profile". :func:`StudySpec.resolve` returns the fully resolved, type-checked, immutable config that
every run records in its ``run.json``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

from common.registry import Registry


class ConfigError(ValueError):
    """A parameter is unknown, of the wrong type, or not one of the accepted values."""


_TYPE_NAMES = {int: "int", float: "float", str: "str", bool: "bool"}


@dataclass(frozen=True)
class Param:
    """One parameter: its type, default, and what values are accepted.

    ``choices`` is a tuple of accepted values or a callable returning them (e.g. a registry's ``list``), so the
    accepted names are read when validating, after every module has registered its entries.
    ``check`` returns an error string for an out-of-range value, or ``None``.
    """

    name: str
    type: type
    default: Any = None
    help: str = ""
    choices: tuple | Callable[[], Iterable[Any]] | None = None
    check: Callable[[Any], str | None] | None = None
    in_grid: bool = False  # dataset / variant: one notebook per value

    def accepted(self) -> list[Any] | None:
        if self.choices is None:
            return None
        return list(self.choices() if callable(self.choices) else self.choices)

    def validate(self, value: Any) -> Any:
        """Return ``value`` (ints widened to float where a float is expected) or raise :class:`ConfigError`."""
        want = self.type
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        ok = isinstance(value, want) and not (want is int and isinstance(value, bool))
        if not ok:
            raise ConfigError(
                f"parameter {self.name!r} must be {_TYPE_NAMES.get(want, want.__name__)}, "
                f"got {value!r} ({type(value).__name__})"
            )
        accepted = self.accepted()
        if accepted is not None and value not in accepted:
            raise ConfigError(f"parameter {self.name!r}: {value!r} is not accepted. Accepted: {', '.join(map(str, accepted))}")
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise ConfigError(f"parameter {self.name!r}={value!r}: {problem}")
        return value


def positive(value: Any) -> str | None:
    return None if value > 0 else "must be > 0"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else "must be >= 0"


def unit_interval(value: Any) -> str | None:
    return None if 0.0 <= value <= 1.0 else "must lie in [0, 1]"


@dataclass
class StudySpec:
    """A study: its parameters, its profiles, and the template its notebooks are generated from."""

    name: str
    template: str  # file name under notebooks/templates/
    params: dict[str, Param] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Called with the resolved dict; returns an error string for cross-parameter problems, or None.
    cross_check: Callable[[Mapping[str, Any]], str | None] | None = None
    # Called with the resolved dict; a rough relative run time, so a parallel batch starts its longest notebooks
    # first (the order changes no result). None: all runs weigh the same.
    run_weight: Callable[[Mapping[str, Any]], float] | None = None

    def add(self, *params: Param) -> "StudySpec":
        for p in params:
            if p.name in self.params:
                raise ValueError(f"study {self.name!r} already has a parameter {p.name!r}")
            self.params[p.name] = p
        return self

    @property
    def grid_keys(self) -> list[str]:
        return [k for k, p in self.params.items() if p.in_grid]

    def check_keys(self, given: Mapping[str, Any]) -> None:
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) for study {self.name!r}: {', '.join(unknown)}. "
                f"Accepted: {', '.join(self.params)}"
            )

    def resolve(self, given: Mapping[str, Any]) -> Mapping[str, Any]:
        """Validate ``given`` and fill every ``None`` from the profile, then the parameter's own default."""
        self.check_keys(given)
        profile = given.get("profile") or self.params["profile"].default
        profile = self.params["profile"].validate(profile)
        profile_defaults = self.profiles[profile]
        resolved: dict[str, Any] = {}
        for name, param in self.params.items():
            value = given.get(name)
            if value is None:
                value = profile_defaults.get(name, param.default)
            if value is None:
                raise ConfigError(f"parameter {name!r} has no value (not given, and profile {profile!r} sets none)")
            resolved[name] = param.validate(value)
        resolved["study"] = self.name
        if self.cross_check is not None:
            problem = self.cross_check(resolved)
            if problem:
                raise ConfigError(problem)
        return MappingProxyType(resolved)


STUDIES = Registry("study")


def config_hash(cfg: Mapping[str, Any], length: int = 12) -> str:
    """Stable short hash of a resolved config (canonical JSON), used to name run folders and skip finished runs."""
    canonical = json.dumps(dict(cfg), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def get_study(name: str) -> StudySpec:
    """Import the study's module (so it registers itself) and return its spec."""
    import importlib

    modules = {"smile": "common.smile.study", "hafem": "common.fer.study"}
    if name in modules and name not in STUDIES:
        importlib.import_module(modules[name])
    return STUDIES.get(name)


def known_studies() -> list[str]:
    return ["smile", "hafem"]


def base_params(dataset_choices: Callable[[], Iterable[str]], variant_choices: Callable[[], Iterable[str]],
                default_dataset: str, default_variant: str) -> list[Param]:
    """The parameters every study shares; studies add their own after these."""
    return [
        Param("dataset", str, default_dataset, "dataset name (registry key)", choices=dataset_choices, in_grid=True),
        Param("variant", str, default_variant, "method variant (fusion / baseline / model)", choices=variant_choices,
              in_grid=True),
        Param("profile", str, "demo", "demo = generated data, small models, CPU; paper = published settings",
              choices=("demo", "paper")),
        Param("seed", int, 0, "seed for initialisation, sampling and splits", check=non_negative),
        Param("data_root", str, "", "dataset folder; empty = datasets/generated/<dataset> (demo) or "
              "datasets/real/<dataset> (paper)"),
    ]
