"""What a batch runs: the request (study x dataset x variant x seed, ``--set`` overrides) expanded into validated
:class:`Run` s, their :class:`Outcome` s, and the data check made before the first notebook starts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from common.config import ConfigError, Param, StudySpec, get_study
from common.notebooks import notebook_path
from common.paths import ROOT, data_root
from common.results import run_dir


@dataclass(frozen=True)
class Run:
    """One notebook execution: the explicit parameters given to it and the folder its results go to."""

    study: str
    notebook: str
    params: tuple[tuple[str, Any], ...]
    folder: str

    @property
    def label(self) -> str:
        p = dict(self.params)
        protocol = f"/{p['protocol']}" if p.get("protocol") not in (None, "paper") else ""
        return f"{self.study}/{p['dataset']}/{p['variant']}/seed{p['seed']}{protocol}"


@dataclass
class Outcome:
    """What became of one run: its status, how long it took, the error and the log path of a failure."""

    run: Run
    status: str  # "done", "skipped", "failed"
    seconds: float = 0.0
    error: str = ""
    log: str = ""


def parse_value(param: Param, text: str) -> Any:
    """Convert a command-line string to the parameter's type, naming the parameter on failure."""
    try:
        if param.type is bool:
            lowered = text.strip().lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return lowered in ("true", "1", "yes")
        if param.type is int:
            return int(text)
        if param.type is float:
            return float(text)
        return text
    except ValueError:
        raise ConfigError(f"parameter {param.name!r} must be {param.type.__name__}, got {text!r}") from None


def parse_overrides(spec: StudySpec, items: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        spec.check_keys({key: None})
        if key in ("dataset", "variant", "seed", "profile"):
            raise ConfigError(f"use --{key} rather than --set {key}=...")
        out[key] = parse_value(spec.params[key], value)
    return out


def _choose(spec: StudySpec, key: str, requested: list[str] | None) -> list[str]:
    """The requested names this study knows (all of them for None / 'all')."""
    accepted = [str(v) for v in spec.params[key].accepted()]
    if not requested or requested == ["all"]:
        return accepted
    return [n for n in dict.fromkeys(requested) if n in accepted]


def _reject_unknown(specs: list[StudySpec], key: str, requested: list[str] | None) -> None:
    """A requested name must be known to at least one of the requested studies."""
    if not requested or requested == ["all"]:
        return
    known = {str(v) for spec in specs for v in spec.params[key].accepted()}
    for name in requested:
        if name not in known:
            accepted = sorted(known)
            raise ConfigError(f"unknown {key} {name!r}. Accepted: {', '.join(accepted)}, all")


def expand(studies: list[str], datasets: list[str] | None, variants: list[str] | None, profile: str,
           seeds: list[int], overrides: list[str]) -> list[Run]:
    """All runs of the request, each validated by resolving its config (raises ConfigError before anything runs)."""
    specs = [get_study(s) for s in studies]
    _reject_unknown(specs, "dataset", datasets)
    _reject_unknown(specs, "variant", variants)
    runs: list[Run] = []
    for spec in specs:
        spec.params["profile"].validate(profile)
        fixed = parse_overrides(spec, overrides)
        single = len(spec.params["variant"].accepted()) == 1
        for dataset in _choose(spec, "dataset", datasets):
            for variant in _choose(spec, "variant", variants):
                for seed in seeds:
                    params = {"dataset": dataset, "variant": variant, "profile": profile, "seed": seed, **fixed}
                    cfg = spec.resolve(params)
                    nb = notebook_path(spec.name, dataset, variant, single)
                    if not nb.exists():
                        raise ConfigError(f"{nb.relative_to(ROOT)} does not exist: run `python -m common.notebooks`")
                    # every resolved value: the notebook's parameters cell shows the demo values, so a run of
                    # another profile must set them all
                    given = tuple(sorted((k, v) for k, v in cfg.items() if k != "study"))
                    runs.append(Run(spec.name, str(nb), given, str(run_dir(cfg))))
    return runs


def check_data(runs: list[Run], generate_demo: bool = True) -> None:
    """Make sure every run's data exists: generate demo data on first use; stop early for missing real data."""
    needed: dict[str, set[str]] = {}
    for run in runs:
        p = dict(run.params)
        needed.setdefault(p["profile"], set()).add((p["dataset"], p.get("data_root", "")))
    demo = sorted(ds for ds, root in needed.get("demo", set()) if not root)
    if demo and generate_demo:
        from datasets.demo import ensure_demo_data

        ensure_demo_data(demo)
    for profile, items in needed.items():
        for dataset, root in sorted(items):
            folder = data_root(dataset, profile, root or None)
            if not folder.exists():
                raise ConfigError(
                    f"data folder for {dataset!r} not found: {folder}. Put the dataset there, or pass "
                    f"--set data_root=/path/to/{dataset}"
                )
