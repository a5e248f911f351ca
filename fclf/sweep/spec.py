"""The sweep file: a grid of params values, how to select among its runs, and its shards.

A sweep file is YAML in git::

    name: identity                  # experiment names start with it (default: the file name)
    params:                         # params.yaml keys and the values to try; the grid is
      loss.lambda_identity: [0, 1, 10, 100]   # the product of these lists
      train.flip_prob: [0.25, 0.5]
    select:                         # how `fclf sweep report` ranks the runs
      split: val                    # val only: test is for reporting, never for choosing
      metric: counterfactual_relative_error   # a val key of metrics/headline.json
      order: min                    # min | max (default: the metric's own direction)
    sample: null                    # run a random subset of this many grid points (null = all)
    seed: 0                         # seed of that subset

Every machine computes the same grid, the same subset and the same shards from the file
alone, so `--shard I/N` needs no coordination. Each value is checked against the params
schema (and each grid point as a whole) before anything is queued.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fclf.config import (
    _Loader,
    did_you_mean,
    leaf_keys,
    parse_config,
    read_yaml_with_lines,
)
from fclf.errors import ConfigError, FclfError

RULE = "rule"  # fclf.evaluate.selection: the project's selection rule (the default)
SELECTABLE = {  # RULE, or a val.told key of metrics/headline.json -> the better direction
    RULE: RULE,
    "counterfactual_relative_error": "min",
    "flip_success_linear": "max",
    "preservation_linear": "max",
    "success_linear": "max",
    "identity_top1_target": "max",
    "pareto_area_linear": "max",
}
TOP_KEYS = ("name", "params", "select", "sample", "seed")
SELECT_KEYS = ("split", "metric", "order")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]")


@dataclass(frozen=True)
class Selection:
    """How a sweep's leaderboard ranks its runs: by the project's selection rule (metric and
    order "rule": fclf.evaluate.selection, the rule the pipeline and the README use), or by
    one val.told headline number in the given order ("min" or "max")."""

    split: str
    metric: str
    order: str  # "min", "max" or "rule"

    @property
    def is_rule(self) -> bool:
        return self.metric == RULE


@dataclass(frozen=True)
class GridPoint:
    """One experiment of the grid: its position, its DVC experiment name, its params."""

    index: int
    name: str
    overrides: tuple[tuple[str, Any], ...]

    def set_args(self) -> list[str]:
        """`dvc exp run` arguments that set this point's params."""
        args: list[str] = []
        for key, value in self.overrides:
            args += ["-S", f"{key}={yaml_value(value)}"]
        return args


@dataclass(frozen=True)
class Sweep:
    path: Path
    name: str
    params: dict[str, list[Any]]
    selection: Selection
    sample: int | None
    seed: int

    @property
    def grid_size(self) -> int:
        return math.prod(len(values) for values in self.params.values())

    def point(self, index: int) -> GridPoint:
        """The grid point at `index` of the product (first param varies slowest)."""
        if not 0 <= index < self.grid_size:
            raise IndexError(f"grid point {index} of a grid of {self.grid_size}")
        keys = list(self.params)
        picks: list[tuple[str, Any]] = []
        rest = index
        for key in reversed(keys):
            values = self.params[key]
            rest, position = divmod(rest, len(values))
            picks.append((key, values[position]))
        overrides = tuple(reversed(picks))
        abbreviations = abbreviate(keys)
        parts = [f"{abbreviations[key]}{name_text(value)}" for key, value in overrides]
        return GridPoint(index, safe_name("-".join([self.name, *parts])), overrides)

    def points(self) -> list[GridPoint]:
        """The grid, or its seeded random subset of `sample` points, in grid order."""
        size = self.grid_size
        if self.sample is None or self.sample >= size:
            indices = range(size)
        else:
            rng = np.random.default_rng(self.seed)
            indices = sorted(int(i) for i in rng.choice(size, size=self.sample, replace=False))
        return [self.point(i) for i in indices]


def yaml_value(value: Any) -> str:
    """`value` as text for `-S key=value` that DVC (Hydra's override grammar) and YAML
    (PyYAML, fclf's loader) both read back as `value`: floats keep a '.' (`1.0e-05`: PyYAML
    reads `1e-05` as a string), strings are quoted unless they are a plain word."""
    if isinstance(value, str):
        return _string_text(value)
    if isinstance(value, float) and math.isfinite(value):
        mantissa, e, exponent = repr(value).partition("e")
        return f"{mantissa}{'' if '.' in mantissa or not e else '.0'}{e}{exponent}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{yaml_value(k)}: {yaml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # ints, bools, null


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./+-]*")
_HYDRA_WORDS = ("true", "false", "null", "inf", "nan")


def _string_text(text: str) -> str:
    if _PLAIN.fullmatch(text) and text.lower() not in _HYDRA_WORDS:
        try:
            if all(yaml.load(text, Loader=loader) == text for loader in (yaml.SafeLoader, _Loader)):
                return text
        except yaml.YAMLError:
            pass
    if "'" not in text and not text.endswith("\\") and text.isprintable():
        return f"'{text}'"  # backslashes stay literal in both
    return json.dumps(text, ensure_ascii=not text.isprintable())  # YAML reads it back


def name_text(value: Any) -> str:
    """A value as it appears in an experiment name: 30, 0.5, 1e-05, true, a+b."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return format(value, "g")
    if isinstance(value, (list, tuple)):
        return "+".join(name_text(v) for v in value)
    return str(value)


def safe_name(text: str) -> str:
    """A valid git ref component: unsafe characters become '_', no '..', no leading or
    trailing '.'."""
    text = _UNSAFE.sub("_", text)
    while ".." in text:
        text = text.replace("..", ".")
    text = text.lstrip(".-").rstrip(".") or "exp"
    return text[:-5] + "_lock" if text.endswith(".lock") else text


def abbreviate(keys: list[str]) -> dict[str, str]:
    """Short, distinct labels for the swept keys: `loss.lambda_identity` -> `li`,
    `train.epochs` -> `epochs`; longer forms only where two short ones would clash."""
    forms = [
        lambda k: _initials(k.rsplit(".", 1)[-1]),
        lambda k: k.rsplit(".", 1)[-1],
        lambda k: k.replace(".", "_"),
    ]
    chosen: dict[str, str] = {}
    for form in forms:
        labels = {key: form(key) for key in keys if key not in chosen}
        counts: dict[str, int] = {}
        for label in [*labels.values(), *chosen.values()]:
            counts[label] = counts.get(label, 0) + 1
        for key, label in labels.items():
            if counts[label] == 1 or form is forms[-1]:
                chosen[key] = label
    return {key: chosen[key] for key in keys}


def _initials(leaf: str) -> str:
    words = [w for w in leaf.split("_") if w]
    return "".join(w[0] for w in words) if len(words) > 1 else leaf


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N), 1 <= I <= N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise FclfError(f"--shard {text}: expected I/N, e.g. 1/4 (shard 1 of 4)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1:
        raise FclfError(f"--shard {text}: the number of shards must be at least 1")
    if not 1 <= index <= count:
        raise FclfError(f"--shard {text}: the shard index must be between 1 and {count} "
                        "(shards count from 1; with 0-based array indices add 1)")
    return index, count


def shard(points: list[GridPoint], index: int, count: int) -> list[GridPoint]:
    """The index-th of `count` disjoint shards (round robin: every shard gets a spread of
    values); together the shards hold every point exactly once."""
    return points[index - 1::count]


def load_sweep(path: str | Path, params_path: str | Path) -> Sweep:
    """Read and check a sweep file against the params file the experiments start from."""
    path = Path(path)
    raw, lines = read_yaml_with_lines(path, "sweep file")

    def where(key: str) -> str:
        line = lines.get(key)
        return f"{path}:{line}" if line else str(path)

    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a sweep file is a mapping with a 'params' key")
    for key in raw:
        if key not in TOP_KEYS:
            raise ConfigError(f"{where(str(key))}: unknown key {key!r}"
                              f"{did_you_mean(str(key), TOP_KEYS)}"
                              f"; a sweep file has {', '.join(TOP_KEYS)}")
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name.strip() or safe_name(name) != name:
        raise ConfigError(f"{where('name')}: name {name!r} must be a non-empty word of letters, "
                          "digits, '.', '_', '+', '=' or '-' (it starts every experiment name)")
    params = _check_params(raw.get("params"), where)
    selection = _check_selection(raw.get("select") or {}, where)
    sample = raw.get("sample")
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int)
                               or sample < 1):
        raise ConfigError(f"{where('sample')}: sample = {sample!r}; expected a whole number >= 1 "
                          "or null (the whole grid)")
    seed = raw.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{where('seed')}: seed = {seed!r}; expected a whole number >= 0")
    sweep = Sweep(path, name, params, selection, sample, seed)
    _check_against_params(sweep, params_path, where)
    return sweep


def _check_params(params: Any, where) -> dict[str, list[Any]]:
    if not isinstance(params, dict) or not params:
        raise ConfigError(f"{where('params')}: the grid is empty: 'params' must map params.yaml "
                          "keys to lists of values, e.g. loss.lambda_identity: [1, 10]")
    known = leaf_keys()
    sections = {key.rsplit(".", 1)[0] for key in known}
    for key, values in params.items():
        label = f"params.{key}"
        if key not in known:
            hint = (f"; {key!r} is a section: name a key inside it" if key in sections
                    else did_you_mean(str(key), known))
            raise ConfigError(f"{where(label)}: unknown param {key!r}{hint}")
        if not isinstance(values, list):
            raise ConfigError(f"{where(label)}: {key}: give a list of values to try, "
                              f"e.g. [{yaml_value(values)}]")
        if not values:
            raise ConfigError(f"{where(label)}: {key} has no values: the grid is empty")
        if any(isinstance(v, dict) for v in values):
            raise ConfigError(f"{where(label)}: {key}: mapping values cannot be swept (`dvc exp "
                              "run -S` cannot add keys to a mapping); sweep a scalar or a list")
        texts = [name_text(v) for v in values]
        repeated = sorted({t for t in texts if texts.count(t) > 1})
        if repeated:
            raise ConfigError(f"{where(label)}: {key} lists {', '.join(repeated)} more than once")
    return {str(k): list(v) for k, v in params.items()}


def _check_selection(select: Any, where) -> Selection:
    if not isinstance(select, dict):
        raise ConfigError(f"{where('select')}: select must be a mapping (split, metric, order)")
    for key in select:
        if key not in SELECT_KEYS:
            raise ConfigError(f"{where('select.' + str(key))}: unknown key select.{key}"
                              f"{did_you_mean(str(key), SELECT_KEYS)}")
    split = select.get("split", "val")
    if split != "val":
        raise ConfigError(f"{where('select.split')}: select.split = {split!r}: runs are selected "
                          "on val only; test is what the leaderboard reports, and choosing on "
                          "it would make the reported numbers optimistic")
    metric = select.get("metric", RULE)
    if metric not in SELECTABLE:
        raise ConfigError(f"{where('select.metric')}: select.metric = {metric!r} is neither "
                          f"'rule' nor a val.told key of metrics/headline.json"
                          f"{did_you_mean(str(metric), SELECTABLE)}; "
                          f"expected one of {', '.join(SELECTABLE)}")
    if metric == RULE:
        if "order" in select:
            raise ConfigError(f"{where('select.order')}: select.order does not apply to "
                              "metric: rule (the rule says which way each of its scores is "
                              "better); drop it, or name a metric")
        return Selection(split, RULE, RULE)
    order = select.get("order", SELECTABLE[metric])
    if order not in ("min", "max"):
        raise ConfigError(f"{where('select.order')}: select.order = {order!r}; expected min or max")
    return Selection(split, metric, order)


def _check_against_params(sweep: Sweep, params_path: str | Path, where) -> None:
    """Each value, then each grid point (cross-field rules), must give a valid params file."""
    base, _ = read_yaml_with_lines(params_path)
    for key, values in sweep.params.items():
        for value in values:
            _apply_and_parse(base, ((key, value),), params_path,
                             lambda msg, k=key, v=value: f"{where('params.' + k)}: {k} = "
                             f"{yaml_value(v)} is not valid: {msg}")
    names: dict[str, GridPoint] = {}
    for point in sweep.points():
        _apply_and_parse(base, point.overrides, params_path,
                         lambda msg, p=point: f"{sweep.path}: grid point {p.name} is not a "
                         f"valid params file: {msg}")
        if point.name in names:
            raise ConfigError(f"{sweep.path}: grid points {names[point.name].overrides} and "
                              f"{point.overrides} get the same experiment name {point.name!r}")
        names[point.name] = point


def _apply_and_parse(base: Any, overrides, params_path, message) -> None:
    raw = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in overrides:
        *parents, leaf = key.split(".")
        section = raw
        for part in parents:
            if not isinstance(section.get(part), dict):
                section[part] = {}
            section = section[part]
        section[leaf] = value
    try:
        parse_config(raw, str(params_path))
    except ConfigError as exc:
        raise ConfigError(message(str(exc))) from None
