"""Typed, validated run configuration.

The schema is a tree of frozen dataclasses. Each leaf field carries a `Rule`
(type, range, allowed values) in its metadata, so validation, error messages
and documentation come from one place. `parse_config` turns a plain mapping
into a `Config`; `load_config` reads a YAML file and reports errors with the
file name and the line of the offending key.

Nothing here knows which file the pipeline uses or where it lives: callers
pass the path.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fclf.attributes import CELEBA_ATTRIBUTES, DEFAULT_ATTRIBUTES
from fclf.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    """How one leaf value is checked."""

    kind: type | tuple[type, ...]
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[Any, ...] | None = None
    optional: bool = False
    item_choices: tuple[str, ...] | None = None  # for lists of strings
    min_items: int = 0
    kind_items: type = str  # lists: str (names), float or int (grids; low/low_open bound items)


def _leaf(default: Any, rule: Rule, doc: str) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"rule": rule, "doc": doc})
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"rule": rule, "doc": doc})
    return field(default=default, metadata={"rule": rule, "doc": doc})


def _section(cls: type) -> Any:
    return field(default_factory=cls, metadata={"doc": cls.__doc__ or ""})


INT = Rule(int)
POS_INT = Rule(int, low=1)
NONNEG_INT = Rule(int, low=0)
NONNEG = Rule(float, low=0.0)
POSITIVE = Rule(float, low=0.0, low_open=True)
PROB = Rule(float, low=0.0, high=1.0)
DEVICE = Rule(str, choices=("auto", "cpu", "cuda"))


SYNTHETIC_CALIBRATED = ("Male", "Young", "Smiling", "Eyeglasses", "Mustache")
"""The attributes fclf.data.synthetic.CELEBA_LIKE calibrates (not imported: keeps numpy out)."""


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the synthetic CelebA-like CLIP embedding generator."""

    dim: int = _leaf(512, Rule(int, low=8), "embedding dimension")
    train_identities: int = _leaf(2000, POS_INT, "identities in the train split")
    val_identities: int = _leaf(250, POS_INT, "identities in the val split")
    test_identities: int = _leaf(250, POS_INT, "identities in the test split")
    images_per_identity: int = _leaf(10, POS_INT, "mean images per identity (Poisson, >= 1)")
    cone_cosine: float = _leaf(
        0.55, Rule(float, low=0.0, high=1.0, low_open=True),
        "typical cosine between two different people (faces sit in a narrow cone)",
    )
    same_identity_cosine: float = _leaf(
        0.8, Rule(float, low=0.0, high=1.0, low_open=True),
        "typical cosine between two images of the same person",
    )
    attribute_strength: float = _leaf(
        1.0, POSITIVE, "multiplies every attribute's signal (higher = easier probes)"
    )
    judge_identities: int = _leaf(
        500, POS_INT, "identities in the judge split (used only to fit the evaluation's judge)"
    )
    attribute_context: float = _leaf(
        0.75, NONNEG,
        "how much an attribute's direction depends on the person's look-alike group and the"
        " other attributes (0 = one straight direction per attribute; 1 = person-specific"
        " part as long as the shared one)",
    )
    identity_groups: int = _leaf(
        20, POS_INT, "look-alike groups people belong to (1 = no groups)"
    )
    look_alike_cosine: float = _leaf(
        0.74, Rule(float, low=0.0, high=1.0, low_open=True),
        "typical cosine between two different people of one look-alike group (strictly between"
        " cone_cosine and same_identity_cosine; unused with identity_groups: 1)",
    )
    nuisance_rank: int = _leaf(
        16, NONNEG_INT,
        "dimensions of the per-image nuisance (0 = it shares the identity subspace, as in the"
        " linear world)",
    )
    identity_rank: int = _leaf(
        256, NONNEG_INT,
        "at most this many dimensions for the identity vectors (0 = every dimension left over)",
    )
    withhold_truth: bool = _leaf(
        False, Rule(bool),
        "do not write the exact counterfactuals (truth.npz): evaluate as on real CelebA, with"
        " the truth-free yardstick only",
    )
    rates: dict[str, float] = _leaf(
        {}, Rule(dict, low=0.0, high=1.0, low_open=True),
        "rate (strictly between 0 and 1) of each data.attributes name the generator has no"
        " calibration for (any but " + ", ".join(SYNTHETIC_CALIBRATED) + "); drawn per image,"
        " the same for both sexes, with a default separation",
    )

    def __post_init__(self) -> None:
        low, high = self.cone_cosine, self.same_identity_cosine
        if self.identity_groups > 1 and low < high and not low < self.look_alike_cosine < high:
            raise ConfigError(
                f"data.synthetic.look_alike_cosine = {self.look_alike_cosine} is invalid;"
                f" expected strictly between data.synthetic.cone_cosine = {low} and"
                f" data.synthetic.same_identity_cosine = {high} (or identity_groups: 1)"
            )


@dataclass(frozen=True)
class DataConfig:
    """Where embeddings come from and which attributes the field is conditioned on."""

    source: str = _leaf("synthetic", Rule(str, choices=("synthetic", "celeba")), "data source")
    attributes: list[str] = _leaf(
        list(DEFAULT_ATTRIBUTES),
        Rule(list, item_choices=CELEBA_ATTRIBUTES, min_items=1),
        "CelebA attribute names the field is conditioned on",
    )
    seed: int = _leaf(0, INT, "seed of the synthetic generator")
    celeba_root: str = _leaf("data/celeba", Rule(str), "folder with the CelebA release")
    synthetic: SyntheticConfig = _section(SyntheticConfig)


@dataclass(frozen=True)
class EmbedConfig:
    """How images are encoded (data.source: celeba only)."""

    model_path: str | None = _leaf(
        None, Rule(str, optional=True), "local folder of a Hugging Face CLIP checkpoint"
    )
    batch_size: int = _leaf(64, POS_INT, "images per encoder batch")
    device: str = _leaf("auto", DEVICE, "encoder device")
    precision: str = _leaf("fp32", Rule(str, choices=("fp32", "bf16")), "encoder precision")
    workers: int = _leaf(2, NONNEG_INT, "image decoding worker processes (0 = in-process)")
    on_bad_image: str = _leaf(
        "error", Rule(str, choices=("error", "skip")), "what to do with missing/undecodable images"
    )
    chunk_size: int = _leaf(2048, POS_INT, "images per resumable chunk")


@dataclass(frozen=True)
class ModelConfig:
    """The conditional vector field v(z, s, y) = sum_j (y_j - s_j) h_j(z, y)."""

    hidden_dim: int = _leaf(256, POS_INT, "width of the MLP's hidden layers")
    num_layers: int = _leaf(2, POS_INT, "number of hidden layers")
    attribute_embed_dim: int = _leaf(32, POS_INT, "size of the learned attribute embedding")
    init_scale: float = _leaf(
        0.01, NONNEG, "std of the output layer at init (small = close to the identity flow)"
    )
    sphere: bool = _leaf(True, Rule(bool), "flow on the unit sphere (false: original z + a*v)")
    frozen_identity_rank: int = _leaf(
        32, NONNEG_INT, "person-to-person directions (train person means, attributes"
        " regressed out) the field's output is kept orthogonal to; needs identity ids"
        " (fclf.model.frozen_directions)",
    )
    frozen_nuisance_rank: int = _leaf(
        0, NONNEG_INT, "photo-to-photo directions of one person (attributes regressed"
        " out) the field's output is kept orthogonal to; needs identity ids",
    )


@dataclass(frozen=True)
class FlowConfig:
    """The flow's horizon: used by training, recorded in the model file, used by every edit."""

    num_steps: int = _leaf(10, POS_INT, "integration steps of an edit (training unrolls all)")
    step_size: float = _leaf(0.1, POSITIVE, "size of each step (num_steps * step_size = time 1"
                                            " of flow matching's interpolation)")
    integrator: str = _leaf(
        "euler", Rule(str, choices=("euler", "midpoint", "rk4")), "flow integrator"
    )


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and the random attribute flips."""

    learning_rate: float = _leaf(2e-3, POSITIVE, "Adam learning rate (cosine-annealed)")
    batch_size: int = _leaf(512, Rule(int, low=2), "samples per step")
    epochs: int = _leaf(5, POS_INT, "training epochs")
    seed: int = _leaf(0, INT, "seed of init, batching, flips and probes")
    replicates: int = _leaf(
        3, POS_INT, "models trained with seeds seed, seed+1, ...: the evaluation reports the"
        " seed spread, and a comparison any seed reverses is not called a win",
    )
    device: str = _leaf("auto", DEVICE, "training device")
    flip_prob: float = _leaf(0.5, PROB, "probability that a sample's target differs from it")
    max_flips: int = _leaf(2, POS_INT, "a flipped sample changes 1..max_flips attributes")
    grad_clip: float = _leaf(1.0, POSITIVE, "gradient-norm clipping")
    weight_decay: float = _leaf(0.0, NONNEG, "Adam weight decay")
    checkpoint_gradients: bool = _leaf(
        False, Rule(bool), "recompute flow steps in the backward pass (less memory, ~1.5x time)"
    )


# The objective families of fclf.train.objectives (a test keeps the two lists equal).
OBJECTIVES = ("contrastive", "flow_matching")


@dataclass(frozen=True)
class LossConfig:
    """The training objective and its weights."""

    objective: str = _leaf(
        "flow_matching", Rule(str, choices=OBJECTIVES),
        "contrastive (end points vs real bank points) | flow_matching (conditional OT paths)",
    )
    temperature: float = _leaf(0.07, POSITIVE, "supervised contrastive temperature")
    lambda_contrastive: float = _leaf(1.0, NONNEG, "weight of the contrastive term")
    positives: int = _leaf(
        2, POS_INT, "contrastive: real train points of the target code drawn per anchor"
    )
    lambda_curl: float = _leaf(1e-4, NONNEG, "weight of E||J - J^T||_F^2")
    lambda_div: float = _leaf(1e-4, NONNEG, "weight of E[(tr J)^2]")
    lambda_identity: float = _leaf(
        10.0, NONNEG, "identity preservation: weight of mean ||z_end - z||^2 (contrastive);"
        " of the geodesic distance^2 in the OT coupling cost (flow_matching)",
    )
    sinkhorn_tolerance: float = _leaf(
        1e-3, POSITIVE, "flow_matching: Sinkhorn runs until every source's row mass is this"
        " close (relative) to its marginal",
    )
    probes: int = _leaf(1, POS_INT, "random probes per point for the curl/div estimators")
    div_estimator: str = _leaf(
        "corrected", Rule(str, choices=("corrected", "paired")),
        "unbiased (tr J)^2 estimator: corrected (Gaussian, shares curl's JVP/VJP) | paired",
    )


@dataclass(frozen=True)
class EvalConfig:
    """The attribute-transfer protocol (run on val and on test) and the collapse rule."""

    num_samples: int | None = _leaf(None, Rule(int, low=2, optional=True), "null = all")
    transfer_mode: str = _leaf(
        "single", Rule(str, choices=("single", "multi")), "flip 1 (single) or 2-3 (multi)"
    )
    seed: int = _leaf(0, INT, "seed of the evaluation targets and subsamples")
    judge_c: float = _leaf(0.01, POSITIVE, "inverse L2 strength of the linear judge")
    collapse_min_distinct: float = _leaf(
        0.5, PROB, "collapsed if distinct_fraction is below this"
    )
    collapse_min_neighbourhood: float = _leaf(
        0.2, PROB, "collapsed if neighbourhood_preservation is below this"
    )
    collapse_min_coverage: float = _leaf(0.2, PROB, "collapsed if coverage is below this")
    collapse_min_density: float = _leaf(0.2, NONNEG, "collapsed if density is below this")
    collapse_max_density: float = _leaf(
        2.0, NONNEG, "collapsed if density is above this (edits piled on the class prototype)"
    )
    collapse_max_silhouette: float = _leaf(
        0.9, PROB, "collapsed if silhouette_by_target is above this"
    )
    max_off_manifold: float = _leaf(
        1.25, POSITIVE, "unrealistic if off_manifold (Mahalanobis energy of edits / of their"
        " sources) is above this",
    )
    max_overshoot_rate: float = _leaf(
        0.05, PROB, "unrealistic if more requested attributes than this are pushed past the"
        " overshoot_quantile of real faces with the target value",
    )
    overshoot_quantile: float = _leaf(
        0.99, Rule(float, low=0.5, high=1.0, low_open=True),
        "how far into the real faces' range an attribute may be pushed",
    )
    neighbourhood_k: int = _leaf(10, POS_INT, "k of neighbourhood_preservation")
    coverage_k: int = _leaf(5, POS_INT, "k of coverage/density (Naeem et al. 2020)")
    collapse_samples: int | None = _leaf(
        2500, Rule(int, low=50, optional=True),
        "sources whose edits get identity and collapse measures (null = all)",
    )
    curve_samples: int | None = _leaf(
        300, Rule(int, low=10, optional=True), "points the trade-off curves use (null = all)"
    )
    bootstrap_resamples: int = _leaf(1000, Rule(int, low=10), "resamples of test identities")


POS_FLOATS = Rule(list, kind_items=float, min_items=1, low=0.0, low_open=True)
NONNEG_FLOATS = Rule(list, kind_items=float, min_items=1, low=0.0)
POS_INTS = Rule(list, kind_items=int, min_items=1, low=1)


@dataclass(frozen=True)
class PeersConfig:
    """The peers FCLF is compared with: grids their hyper-parameters are chosen from on val."""

    alphas: list[float] = _leaf(
        [0.5, 0.75, 1.0, 1.25, 1.5], POS_FLOATS, "walk-length multipliers every peer is tried at")
    probe_c: list[float] = _leaf(
        [0.001, 0.01, 0.1, 1.0], POS_FLOATS,
        "conditional_direction: inverse L2 strengths of its probes")
    code_line_shrinkage: list[float] = _leaf(
        [0.0, 20.0, 100.0], NONNEG_FLOATS, "code_line: pseudo-counts shrinking rare codes' lines")
    knn_k: list[int] = _leaf([10, 50, 200], POS_INTS, "knn_analogy: neighbours per code")
    flow_rank: int = _leaf(64, POS_INT, "conditional_flow: principal components it models")
    flow_transforms: int = _leaf(4, POS_INT, "conditional_flow: autoregressive transforms")
    flow_hidden: int = _leaf(256, POS_INT, "conditional_flow: hidden units per layer")
    flow_epochs: int = _leaf(10, POS_INT, "conditional_flow: training epochs")
    reference_hidden: int = _leaf(256, POS_INT, "reference: hidden units per layer")
    reference_epochs: int = _leaf(10, POS_INT, "reference: training epochs")
    seed: int = _leaf(0, INT, "seed of the learned peers")


@dataclass(frozen=True)
class PlotConfig:
    """Figures written by the plot stage."""

    num_points: int = _leaf(2000, POS_INT, "points drawn in scatter plots")
    num_trajectories: int = _leaf(40, POS_INT, "trajectories drawn as arrows")
    dpi: int = _leaf(110, Rule(int, low=30), "PNG resolution")
    seed: int = _leaf(0, INT, "seed of the subsampling")


@dataclass(frozen=True)
class GateConfig:
    """Thresholds `fclf gate` (and `fclf score`) enforce on test.told.fclf in
    metrics/transfer.json; the selection rule uses the flip/preservation ones too."""

    min_flip_success: float = _leaf(0.6, PROB, "flip_success_linear must reach this")
    min_preservation: float = _leaf(0.85, PROB, "preservation_linear must reach this")
    min_identity_top1: float = _leaf(
        0.3, PROB, "identity_top1_target (the source person retrieved among the people"
        " carrying the target attributes) must reach this")
    max_counterfactual_relative_error: float = _leaf(
        1.0, NONNEG, "counterfactual_relative_error must not exceed this (synthetic data)"
    )
    min_noop_cosine: float = _leaf(0.999, Rule(float, low=-1.0, high=1.0),
                                   "centred cosine of a told no-op edit and its source")
    max_noop_movement_ratio: float = _leaf(
        0.01, NONNEG, "told no-op movement / edit movement must not exceed this (honest"
        " editors told the labels move exactly 0)",
    )
    reproduce_tolerance: float = _leaf(
        0.02, NONNEG, "max |committed - reproduced| for a metric to count as reproduced"
    )


@dataclass(frozen=True)
class Config:
    """The whole params file."""

    data: DataConfig = _section(DataConfig)
    embed: EmbedConfig = _section(EmbedConfig)
    model: ModelConfig = _section(ModelConfig)
    flow: FlowConfig = _section(FlowConfig)
    train: TrainConfig = _section(TrainConfig)
    loss: LossConfig = _section(LossConfig)
    eval: EvalConfig = _section(EvalConfig)
    peers: PeersConfig = _section(PeersConfig)
    plot: PlotConfig = _section(PlotConfig)
    gate: GateConfig = _section(GateConfig)


def to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict of a config (for checkpoints, metadata, fingerprints)."""
    return dataclasses.asdict(config)


class _Where:
    """Formats 'file:line' for a dotted key, from line numbers found in the YAML."""

    def __init__(self, source: str, lines: dict[str, int]):
        self.source = source
        self.lines = lines

    def __call__(self, key: str) -> str:
        line = self.lines.get(key, self.lines.get(key.split("[")[0]))
        return f"{self.source}:{line}" if line else self.source


def _check_leaf(key: str, value: Any, rule: Rule, where: _Where) -> Any:
    def fail(allowed: str) -> ConfigError:
        shown = "null" if value is None else repr(value)
        return ConfigError(f"{where(key)}: {key} = {shown} is invalid; expected {allowed}")

    if value is None:
        if rule.optional:
            return None
        raise fail(f"a value of type {_type_name(rule.kind)} (null is not allowed)")
    if rule.kind is list and rule.kind_items is not str:
        return _check_number_list(key, value, rule, where)
    if rule.kind is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail("a list of names")
        if len(value) < rule.min_items:
            raise fail(f"at least {rule.min_items} item(s)")
        repeated = sorted({v for v in value if value.count(v) > 1})
        if repeated:
            raise fail(f"distinct names ({', '.join(map(repr, repeated))} repeated)")
        for item in value:
            if rule.item_choices is not None and item not in rule.item_choices:
                hint = did_you_mean(item, rule.item_choices)
                raise ConfigError(
                    f"{where(key)}: {key} contains unknown name {item!r}{hint}; "
                    f"allowed: the 40 CelebA attribute names"
                )
        return list(value)
    if rule.kind is dict:
        if not isinstance(value, dict):
            raise fail("a mapping of attribute name -> number (e.g. {Bald: 0.2})")
        out = {}
        for name, rate in value.items():  # numbers strictly between rule.low and rule.high
            dotted = f"{key}.{name}"
            out[str(name)] = _check_leaf(dotted, rate, Rule(float), where)
            if not rule.low < out[str(name)] < rule.high:  # type: ignore[operator]
                raise ConfigError(f"{where(dotted)}: {dotted} = {rate!r} is invalid; expected "
                                  f"> {rule.low:g} and < {rule.high:g}")
        return out
    if rule.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail("a number")
        value = float(value)
        if not math.isfinite(value):
            raise fail("a finite number")
    elif rule.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail("an integer")
    elif rule.kind is bool:
        if not isinstance(value, bool):
            raise fail("true or false")
    elif rule.kind is str and not isinstance(value, str):
        raise fail("a string")
    if rule.choices is not None and value not in rule.choices:
        raise fail("one of " + ", ".join(repr(c) for c in rule.choices))
    too_low = rule.low is not None and (
        value < rule.low or (rule.low_open and value == rule.low)
    )
    if too_low or (rule.high is not None and value > rule.high):
        raise fail(_range(rule))
    return value


def _check_number_list(key: str, value: Any, rule: Rule, where: _Where) -> list:
    """A grid: a non-empty list of distinct numbers of `rule.kind_items`, each within range."""
    what = "integers" if rule.kind_items is int else "numbers"
    if not isinstance(value, list) or len(value) < rule.min_items:
        raise ConfigError(f"{where(key)}: {key} = {value!r} is invalid; expected a list of at "
                          f"least {rule.min_items} {what} ({_range(rule)})")
    items = [_check_leaf(f"{key}[{i}]", item,
                         Rule(rule.kind_items, low=rule.low, low_open=rule.low_open), where)
             for i, item in enumerate(value)]
    repeated = sorted({v for v in items if items.count(v) > 1})
    if repeated:
        raise ConfigError(f"{where(key)}: {key} = {value!r} is invalid; expected distinct "
                          f"{what} ({', '.join(map(repr, repeated))} repeated)")
    return items


def _range(rule: Rule) -> str:
    """The allowed interval in words, e.g. '>= 0 and <= 1'."""
    parts = []
    if rule.low is not None:
        parts.append(f"{'>' if rule.low_open else '>='} {rule.low:g}")
    if rule.high is not None:
        parts.append(f"<= {rule.high:g}")
    return " and ".join(parts)


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", str(kind))


def did_you_mean(name: str, options: Any) -> str:
    """' (did you mean 'x'?)' for the closest option, or ''."""
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _parse_section(cls: type, raw: Any, prefix: str, where: _Where) -> Any:
    label = prefix or "top level"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where(prefix)}: {label} must be a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            dotted = f"{prefix}.{key}" if prefix else str(key)
            section = f"section '{prefix}'" if prefix else "the top level"
            raise ConfigError(
                f"{where(dotted)}: unknown key {dotted!r} in {section}"
                f"{did_you_mean(str(key), fields)}; valid keys: {', '.join(fields)}"
            )
    values = {}
    for name, f in fields.items():
        dotted = f"{prefix}.{name}" if prefix else name
        if "rule" in f.metadata:
            if name in raw:
                values[name] = _check_leaf(dotted, raw[name], f.metadata["rule"], where)
        else:
            sub_type = f.default_factory  # the nested dataclass
            values[name] = _parse_section(sub_type, raw.get(name), dotted, where)
    return cls(**values)


def _check_cross_field(config: Config, where: _Where) -> None:
    n_attr = len(config.data.attributes)
    if config.train.max_flips > n_attr:
        raise ConfigError(
            f"{where('train.max_flips')}: train.max_flips = {config.train.max_flips} is invalid;"
            f" expected <= the number of data.attributes ({n_attr})"
        )
    if config.eval.transfer_mode == "multi" and n_attr < 3:
        raise ConfigError(
            f"{where('eval.transfer_mode')}: eval.transfer_mode = 'multi' flips 2-3 attributes;"
            f" it needs at least 3 data.attributes (have {n_attr})"
        )
    syn = config.data.synthetic
    if config.data.source == "synthetic" and syn.dim < n_attr + 2:
        raise ConfigError(
            f"{where('data.synthetic.dim')}: data.synthetic.dim = {syn.dim} is invalid;"
            f" expected >= the number of data.attributes + 2 ({n_attr + 2})"
        )
    if config.data.source == "synthetic":
        _check_synthetic_attributes(config, where)
        _check_frozen_ranks_fit(config, where)
    if syn.same_identity_cosine <= syn.cone_cosine:
        raise ConfigError(
            f"{where('data.synthetic.same_identity_cosine')}: data.synthetic.same_identity_cosine"
            f" = {syn.same_identity_cosine} must exceed data.synthetic.cone_cosine"
            f" = {syn.cone_cosine}"
        )
    if config.data.source == "celeba" and not config.embed.model_path:
        raise ConfigError(
            f"{where('embed.model_path')}: data.source is 'celeba' but embed.model_path is not"
            " set; point it at a local CLIP checkpoint folder"
        )


def _check_frozen_ranks_fit(config: Config, where: _Where) -> None:
    """The frozen directions leave 2 dimensions per attribute and 1 more free
    (fclf.model.frozen_directions); the synthetic dim is known before training, so a
    rank that cannot fit is refused here rather than after the data is generated."""
    model, k = config.model, len(config.data.attributes)
    room = config.data.synthetic.dim - 2 * k - 1
    frozen = model.frozen_identity_rank + model.frozen_nuisance_rank
    if frozen > room:
        raise ConfigError(
            f"{where('model.frozen_identity_rank')}: model.frozen_identity_rank +"
            f" model.frozen_nuisance_rank = {frozen} do not fit data.synthetic.dim ="
            f" {config.data.synthetic.dim} with {k} attributes: at most {max(room, 0)}"
            " directions can be frozen (2 per attribute are protected, 1 is left to move in)"
        )


def _check_synthetic_attributes(config: Config, where: _Where) -> None:
    """data.source synthetic: every attribute is calibrated or has a data.synthetic.rates
    entry, and every rate belongs to an uncalibrated attribute of data.attributes."""
    attributes, rates = config.data.attributes, config.data.synthetic.rates
    unknown = [a for a in attributes if a not in SYNTHETIC_CALIBRATED and a not in rates]
    if unknown:
        raise ConfigError(
            f"{where('data.attributes')}: data.attributes {unknown} have no calibration in the"
            f" synthetic world (data.source: synthetic knows {', '.join(SYNTHETIC_CALIBRATED)});"
            f" give their rates in data.synthetic.rates (e.g. rates: {{{unknown[0]}: 0.2}}),"
            " drop them, or use data.source: celeba"
        )
    for name in rates:
        key = f"data.synthetic.rates.{name}"
        if name in SYNTHETIC_CALIBRATED:
            raise ConfigError(
                f"{where(key)}: {key}: {name} is calibrated already; rates are only for"
                f" attributes other than {', '.join(SYNTHETIC_CALIBRATED)}"
            )
        if name not in attributes:
            raise ConfigError(
                f"{where(key)}: {key}: {name!r} is not in data.attributes"
                f"{did_you_mean(name, attributes)}; remove it or add it there"
            )


def parse_config(raw: Any, source: str = "<params>", lines: dict[str, int] | None = None) -> Config:
    """Validate a nested mapping against the schema; missing keys take defaults."""
    where = _Where(source, lines or {})
    config = _parse_section(Config, raw, "", where)
    _check_cross_field(config, where)
    return config


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads exponent floats without a dot ('1e-4') as numbers.

    PyYAML follows YAML 1.1, where `1e-4` and `1.0e4` are strings; YAML 1.2 and
    every other tool read them as floats, and they are common for rates.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _key_lines(node: yaml.Node, prefix: str, out: dict[str, int], source: str) -> None:
    if not isinstance(node, yaml.MappingNode):
        return
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = str(key_node.value)
        dotted = f"{prefix}.{key}" if prefix else key
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ConfigError(f"{source}:{line}: duplicate key {dotted!r}")
        seen.add(key)
        out[dotted] = line
        _key_lines(value_node, dotted, out, source)


def read_yaml_with_lines(path: str | Path, what: str = "params file") -> tuple[Any, dict[str, int]]:
    """The parsed YAML of `path` and the line of each dotted key; errors name file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    try:
        root = yaml.compose(text, Loader=_Loader)
        raw = yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{loc}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    lines: dict[str, int] = {}
    if root is not None:
        _key_lines(root, "", lines, str(path))
    return raw, lines


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML params file; errors name the file and line."""
    raw, lines = read_yaml_with_lines(path)
    return parse_config(raw, str(path), lines)


def leaf_keys() -> list[str]:
    """Every dotted params key the schema knows (`loss.lambda_identity`, ...)."""
    return [key for key, _, _ in describe_schema()]


def describe_schema(cls: type = Config, prefix: str = "") -> list[tuple[str, Any, str]]:
    """(dotted key, default, doc) for every leaf: used to document params."""
    rows = []
    for f in dataclasses.fields(cls):
        dotted = f"{prefix}.{f.name}" if prefix else f.name
        if "rule" in f.metadata:
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            rows.append((dotted, default, f.metadata["doc"]))
        else:
            rows.extend(describe_schema(f.default_factory, dotted))
    return rows
