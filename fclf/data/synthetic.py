"""A synthetic data set that behaves like CLIP ViT-B/32 embeddings of CelebA.

Each embedding is the L2-normalised sum of

- a shared "face" axis `m` (scaled so different people have cosine ~cone_cosine:
  CLIP face embeddings sit in a narrow cone and are far from centred),
- an identity vector shared by all images of a person,
- a per-image nuisance vector (pose, lighting, background),
- for each attribute j, `coeff_j * d_j(p, y)` with
  `coeff_j = (y_j - rate_j) * s_j + tau * eta_j`: the attribute's separation
  `s_j` and a per-image ambiguity `eta_j ~ N(0, 1)`.

The attribute directions `u_j` are orthonormal and orthogonal to everything
else, so the Bayes accuracy of a linear probe for attribute j is set by its
separation `s_j / tau` and its rate. The separations below were solved for
CelebA's rates and the linear-probe accuracies CLIP reaches on CelebA.

Attribute sampling follows CelebA's dependencies: Male (per identity) drives
Young, Mustache, Eyeglasses and Smiling; Male is fixed per identity, Young and
Mustache mostly per identity, Smiling and Eyeglasses per image. Only these
five are calibrated (`CELEBA_LIKE`); any other attribute needs its rate from
the user (`data.synthetic.rates`): it is then drawn per image with that rate
for both sexes and separation `GIVEN_RATE_SEPARATION` (3.0).

Context: straight lines are not enough (knob `attribute_context`, c >= 0)
-------------------------------------------------------------------------
The direction attribute j moves a face depends on the person and on the
other attributes:

    d_j(p, y) = u_j + c / sqrt(k) * (w_{g(p), j} + sum_{i != j} ŝ_i v_{j, i})

`w_{g,j}` is a direction per look-alike group g and attribute, `v_{j,i}` one per
ordered pair of attributes, all orthonormal and orthogonal to the u_j, the
nuisance and the identities (dedicated columns of one random orthonormal
basis; `required_dim` says how many dimensions that takes). `ŝ_i = (2 y_i - 1)
+ 2 tau eta_i / s_i` is attribute i's *perceived* sign: its sign plus the
image's ambiguity, i.e. a function of what the embedding shows along u_i. (With
the exact sign, the products `coeff_j * s_i` would tell a linear probe the
attribute i without its ambiguity - the Mustache probe rises from 0.956 to
0.99 - so the calibration below would not hold.) With exact signs the
person-specific part has norm sqrt(k) * c / sqrt(k) = c: c = 1 makes it as long
as the shared u_j. The component along u_j is the linear world's, so the
probes stay calibrated; flipping attribute j moves a face by
`s_j * d_j(p, y)` plus the change of every other attribute's direction
through ŝ_j, which no single global direction per attribute follows.
Axis, identity and nuisance grow by the factor that keeps the attributes'
expected share of the energy (and so the cosine knobs) as in the linear world.

Identity: look-alike groups and low-rank nuisance
-------------------------------------------------
Every person belongs to one of `identity_groups` groups, chosen at random.
The identity vector is `sqrt(share) * center_g + sqrt(1 - share) * individual`
(unit vectors, scaled as before), with share chosen so two people of one group
have cosine ~look_alike_cosine (between cone_cosine and same_identity_cosine).
The per-image nuisance lives in its own `nuisance_rank`-dimensional subspace,
so two pictures taken alike (of one person or two) are alike: cosines
fluctuate as they do for real photos, and the nearest other picture is not
always the same person. The identity vectors span at most `identity_rank`
dimensions (fewer if dim leaves fewer): with the nuisance out of the identity
subspace, a linear probe could otherwise memorise train people through
noise-free identity dimensions and lose accuracy on new people.
`identity_groups: 1` means no groups (the one group's shared direction is the
face axis itself; look_alike_cosine is unused), `nuisance_rank: 0` puts the
nuisance in the identity subspace and `identity_rank: 0` gives the identities
every dimension left over.

The linear preset
-----------------
`generate` and `generate_world` default to the original linear world, which
`dvc exp run` reaches with

    -S data.synthetic.attribute_context=0 -S data.synthetic.identity_groups=1
    -S data.synthetic.nuisance_rank=0 -S data.synthetic.identity_rank=0

It reproduces the original generator's train/val/test exactly (same seed, same
bytes). Whatever the knobs, the people, their attributes, image counts and row
order depend on the seed and split sizes only: the knobs change geometry, not
labels.

With the params defaults (context 0.75, 20 groups, look_alike_cosine 0.74,
nuisance_rank 16, identity_rank 256, seed 0) the best single global
direction per attribute and flip sign reaches a mean cosine of 0.70 with the
true displacements (0.996 in the linear world; 0.81 / 0.62 / 0.53 / 0.47 at
context 0.5 / 1 / 1.5 / 2), the nearest other test image is the same person
69 % of the time (100 % in the linear world), different people have cosine
0.52, look-alikes 0.69, one person 0.76, and rates and probe accuracies are the
linear world's (within +-0.007).

Splits are made in the order train, val, test, judge (`judge` fits the
evaluation's judge only); `generate_world` also returns the `SyntheticTruth`
(fclf.data.truth) that gives the exact counterfactual of every row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fclf.data.embeddings_io import EmbeddingSplit
from fclf.data.truth import SplitLatents, SyntheticTruth

SPLITS = ("train", "val", "test")
JUDGE_SPLIT = "judge"
ALL_SPLITS = (*SPLITS, JUDGE_SPLIT)


@dataclass(frozen=True)
class AttributeModel:
    """P(attr | Male) for male and female, how persistent it is, and its separation."""

    p_male: float
    p_female: float
    level: str  # "identity" (resampled per image with prob `resample`) or "image"
    separation: float  # s_j / tau: Bayes accuracy is set by this and the rate
    resample: float = 0.0


# Rates from CelebA: Male 41.7%; the conditionals below reproduce the marginals
# Smiling 48.2%, Young 77.4%, Eyeglasses 6.5%, Mustache 4.2%.
CELEBA_LIKE: dict[str, AttributeModel] = {
    "Male": AttributeModel(1.0, 0.0, "identity", 4.45),
    "Young": AttributeModel(0.638, 0.8714, "identity", 1.80, resample=0.05),
    "Smiling": AttributeModel(0.398, 0.5422, "image", 2.65),
    "Eyeglasses": AttributeModel(0.123, 0.0235, "image", 3.25),
    "Mustache": AttributeModel(0.096, 0.0030, "identity", 2.30, resample=0.15),
}
P_MALE = 0.417
GIVEN_RATE_SEPARATION = 3.0
"""s_j / tau of an attribute whose rate the user gives (`data.synthetic.rates`): between the
calibrated ones (Young 1.80 ... Male 4.45), so a linear probe reads it well but not perfectly."""


def given_rate_model(rate: float) -> AttributeModel:
    """An uncalibrated attribute with a user-given rate: the same rate for both sexes (no Male
    dependency), drawn per image, separation `GIVEN_RATE_SEPARATION`."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"a rate must lie strictly between 0 and 1, got {rate}")
    return AttributeModel(rate, rate, "image", GIVEN_RATE_SEPARATION)


def attribute_models(
    names: tuple[str, ...] | list[str], rates: Mapping[str, float] | None = None
) -> list[AttributeModel]:
    """The model of every attribute: calibrated (`CELEBA_LIKE`) or from a given rate.

    An attribute with neither is a ValueError: the world would have to make its rate up.
    """
    rates = dict(rates or {})
    calibrated = sorted(set(rates) & set(CELEBA_LIKE))
    if calibrated:
        raise ValueError(
            f"rates given for calibrated attribute(s) {calibrated}; give rates only for "
            f"attributes other than {', '.join(CELEBA_LIKE)}"
        )
    unknown = [a for a in names if a not in CELEBA_LIKE and a not in rates]
    if unknown:
        raise ValueError(
            f"no calibration for attribute(s) {unknown}: the synthetic world knows "
            f"{', '.join(CELEBA_LIKE)}; give the others' rates (data.synthetic.rates, e.g. "
            f"{{{unknown[0]}: 0.2}}) or use data.source: celeba"
        )
    return [CELEBA_LIKE[a] if a in CELEBA_LIKE else given_rate_model(float(rates[a]))
            for a in names]
AMBIGUITY = 0.08  # tau: per-image noise along each attribute direction


def _sample_attribute(
    model: AttributeModel, male_img: np.ndarray, owner: np.ndarray, n_ids: int,
    male_id: np.ndarray, rng: np.random.Generator,
) -> np.ndarray:
    def draw(male: np.ndarray) -> np.ndarray:
        p = np.where(male == 1, model.p_male, model.p_female)
        return (rng.random(len(male)) < p).astype(np.int8)

    if model.level == "image":
        return draw(male_img)
    per_id = draw(male_id)[owner]
    resampled = rng.random(len(owner)) < model.resample
    fresh = draw(male_img)
    return np.where(resampled, fresh, per_id).astype(np.int8)


def required_dim(
    num_attributes: int, attribute_context: float = 0.0, identity_groups: int = 1,
    nuisance_rank: int = 0,
) -> int:
    """The smallest `dim` a world with these knobs fits in (see the module doc): the
    identities get at least one dimension (at most identity_rank)."""
    k = num_attributes
    return 1 + k + _context_columns(k, attribute_context, identity_groups) + nuisance_rank + 1


def _context_columns(k: int, attribute_context: float, identity_groups: int) -> int:
    """Basis columns of the w_{c,j} and v_{j,i} directions (none in the linear world)."""
    return identity_groups * k + k * (k - 1) if attribute_context > 0 else 0


def generate(
    attribute_names: list[str] | tuple[str, ...],
    identities_per_split: dict[str, int],
    images_per_identity: int = 10,
    dim: int = 512,
    cone_cosine: float = 0.55,
    same_identity_cosine: float = 0.8,
    attribute_strength: float = 1.0,
    seed: int = 0,
    **world: Any,
) -> dict[str, EmbeddingSplit]:
    """Generate identity-disjoint splits (see `generate_world`); deterministic in `seed`."""
    splits, _ = generate_world(
        attribute_names, identities_per_split, images_per_identity, dim, cone_cosine,
        same_identity_cosine, attribute_strength, seed, **world,
    )
    return splits


def generate_world(
    attribute_names: list[str] | tuple[str, ...],
    identities_per_split: dict[str, int],
    images_per_identity: int = 10,
    dim: int = 512,
    cone_cosine: float = 0.55,
    same_identity_cosine: float = 0.8,
    attribute_strength: float = 1.0,
    seed: int = 0,
    *,
    attribute_context: float = 0.0,
    identity_groups: int = 1,
    look_alike_cosine: float = 0.74,
    nuisance_rank: int = 0,
    identity_rank: int = 0,
    rates: Mapping[str, float] | None = None,
) -> tuple[dict[str, EmbeddingSplit], SyntheticTruth]:
    """Identity-disjoint splits and the world's latent factors; deterministic in `seed`.

    `identities_per_split` names the splits to make (any of train, val, test,
    judge; they are made in that order, so adding judge leaves the others as
    they were). The keyword-only knobs default to the linear world. Attributes outside
    `CELEBA_LIKE` need a rate in `rates` (see `attribute_models`), else ValueError.
    """
    unknown = sorted(set(identities_per_split) - set(ALL_SPLITS))
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; expected some of {list(ALL_SPLITS)}")
    if same_identity_cosine <= cone_cosine:
        raise ValueError("same_identity_cosine must exceed cone_cosine")
    if attribute_context < 0:
        raise ValueError(f"attribute_context must be >= 0, got {attribute_context}")
    if identity_groups < 1 or nuisance_rank < 0 or identity_rank < 0:
        raise ValueError("identity_groups must be >= 1, nuisance_rank and identity_rank >= 0")
    if identity_groups > 1 and not cone_cosine < look_alike_cosine < same_identity_cosine:
        raise ValueError(
            f"look_alike_cosine = {look_alike_cosine} must lie strictly between cone_cosine "
            f"= {cone_cosine} and same_identity_cosine = {same_identity_cosine} when "
            f"identity_groups = {identity_groups} > 1"
        )
    names = tuple(attribute_names)
    k = len(names)
    need = required_dim(k, attribute_context, identity_groups, nuisance_rank)
    if dim < need:
        raise ValueError(
            f"dim={dim} is too small for {k} attributes: this world needs dim >= {need} "
            f"(1 face axis + {k} attribute directions + "
            f"{_context_columns(k, attribute_context, identity_groups)} context directions + "
            f"{nuisance_rank} nuisance dimensions + at least 1 identity dimension); raise dim "
            "or lower identity_groups / nuisance_rank (attribute_context 0 needs no context "
            "directions)"
        )
    rng = np.random.default_rng(seed)
    # Everything the linear world does not have is drawn from a second stream, so
    # the linear preset reproduces the original generator's data exactly.
    extra = np.random.default_rng([seed, 1])
    basis, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    axis, attr_dirs = basis[:, 0], basis[:, 1 : 1 + k]
    col = 1 + k
    group_dirs = np.zeros((0, k, dim))
    pair_dirs = np.zeros((0, k, dim))
    if attribute_context > 0:
        # w_{c,j} and v_{j,i} (i != j) take dedicated basis columns.
        n_w, n_v = identity_groups * k, k * (k - 1)
        group_dirs = basis[:, col : col + n_w].T.reshape(identity_groups, k, dim)
        pair_dirs = np.zeros((k, k, dim))
        pair_dirs[~np.eye(k, dtype=bool)] = basis[:, col + n_w : col + n_w + n_v].T
        col += n_w + n_v
    if nuisance_rank:
        nuisance_span = basis[:, col : col + nuisance_rank]
        col += nuisance_rank
    identity_span = basis[:, col : col + identity_rank] if identity_rank else basis[:, col:]
    if not nuisance_rank:
        nuisance_span = identity_span
    models = attribute_models(names, rates)
    rates = np.array([P_MALE * m.p_male + (1 - P_MALE) * m.p_female for m in models])
    sep = np.array([m.separation for m in models]) * AMBIGUITY * attribute_strength

    # Energy budget (squared norms before normalising ~ 1): axis^2 = cone,
    # identity^2 = same - cone (a share of it common to a look-alike group),
    # image^2 = the rest. The person-specific attribute part adds energy the
    # linear world does not have; the three grow with it so that attributes keep
    # their linear-world share of the energy and the knobs keep describing the
    # cosines (probes do not mind: the u_j coordinates only shrink uniformly).
    grow = np.sqrt(1.0 + _context_energy(rates, sep, attribute_context)
                   / _linear_energy(rates, sep))
    axis_scale = np.sqrt(cone_cosine) * grow
    id_scale = np.sqrt(same_identity_cosine - cone_cosine) * grow
    img_scale = np.sqrt(max(1.0 - same_identity_cosine, 1e-4)) * grow
    share = 0.0
    centers = np.zeros((1, dim))
    if identity_groups > 1:
        share = (look_alike_cosine - cone_cosine) / (same_identity_cosine - cone_cosine)
        centers = _random_unit(extra, identity_groups, identity_span)

    latents: dict[str, SplitLatents] = {}
    image_ids: dict[str, np.ndarray] = {}
    next_identity = 0
    next_image = 0
    for split in (s for s in ALL_SPLITS if s in identities_per_split):
        n_ids = identities_per_split[split]
        counts = 1 + rng.poisson(max(images_per_identity - 1, 0), size=n_ids)
        owner = np.repeat(np.arange(n_ids), counts)
        n = len(owner)
        male_id = (rng.random(n_ids) < P_MALE).astype(np.int8)
        male_img = male_id[owner]
        attrs = np.zeros((n, k), np.int8)
        for j, (name, model) in enumerate(zip(names, models, strict=True)):
            attrs[:, j] = male_img if name == "Male" else _sample_attribute(
                model, male_img, owner, n_ids, male_id, rng
            )
        # Coordinates are drawn full width (all dimensions the linear world's
        # identity and nuisance share) and truncated to their subspace, so the
        # main stream, and with it every attribute, is the same for all knobs.
        width = dim - 1 - k
        id_vec = _unit_coords(rng, n_ids, width, identity_span.shape[1]) @ identity_span.T
        id_vec = id_vec * id_scale
        groups = np.zeros(n_ids, np.int64)
        if identity_groups > 1:
            groups = extra.integers(0, identity_groups, n_ids)
            id_vec = np.sqrt(1 - share) * id_vec + np.sqrt(share) * id_scale * centers[groups]
        img_coords = _unit_coords(rng, n, width, nuisance_span.shape[1])
        ambiguity = rng.standard_normal((n, k)) * AMBIGUITY
        order = rng.permutation(n)
        latents[split] = SplitLatents(
            identities=(owner + next_identity).astype(np.int64)[order],
            identity_index=owner[order], identity_vectors=id_vec, identity_groups=groups,
            nuisance=img_coords[order], eta=ambiguity[order], attributes=attrs[order],
        )
        image_ids[split] = np.array(
            [f"{next_image + i + 1:06d}.jpg" for i in range(n)], dtype=object
        )
        next_identity += n_ids
        next_image += n
    truth = SyntheticTruth(
        attribute_names=names, axis=axis_scale * axis, directions=attr_dirs.T, rates=rates,
        separations=sep, context=attribute_context, context_norm=np.sqrt(k),
        group_directions=group_dirs, pair_directions=pair_dirs, nuisance_basis=nuisance_span,
        nuisance_scale=img_scale, seed=seed, splits=latents,
    )
    splits = {
        split: EmbeddingSplit(
            image_ids=image_ids[split],
            identities=lat.identities.copy(),
            attributes=lat.attributes.copy(),
            embeddings=truth.embeddings(split),
            attribute_names=names,
            metadata={"source": "synthetic", "encoder": "synthetic-celeba-clip", "split": split},
        )
        for split, lat in latents.items()
    }
    return splits, truth


def _linear_energy(rates: np.ndarray, sep: np.ndarray) -> float:
    """Expected squared norm of sum_j coeff_j u_j (attributes treated as independent)."""
    return float((rates * (1 - rates) * sep**2 + AMBIGUITY**2).sum())


def _context_energy(rates: np.ndarray, sep: np.ndarray, context: float) -> float:
    """Expected squared norm of the person-specific attribute part (0 when context = 0).

    sum_j E[coeff_j^2] * context^2 / k * (1 + sum_{i != j} E[perceived sign_i^2]),
    treating attributes as independent (the w and v directions are orthonormal).
    """
    if context == 0:
        return 0.0
    k = len(rates)
    coeff_sq = rates * (1 - rates) * sep**2 + AMBIGUITY**2
    sign_sq = 1.0 + 4.0 * AMBIGUITY**2 / sep**2
    others = sign_sq.sum() - sign_sq
    return float((coeff_sq * (1.0 + others)).sum() * context**2 / k)


def _unit_coords(rng: np.random.Generator, n: int, width: int, keep: int) -> np.ndarray:
    """n random unit vectors in R^keep, from n x width standard normals (the rest unused)."""
    coords = rng.standard_normal((n, width))
    if keep < width:
        coords = coords[:, :keep]
    coords /= np.linalg.norm(coords, axis=1, keepdims=True)
    return coords


def _random_unit(rng: np.random.Generator, n: int, span: np.ndarray) -> np.ndarray:
    """n random unit vectors in the column span of `span` (orthonormal columns)."""
    return _unit_coords(rng, n, span.shape[1], span.shape[1]) @ span.T
