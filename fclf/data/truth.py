"""The synthetic world's latent factors: exact counterfactuals of every synthetic row.

`fclf.data.synthetic.generate_world` returns a `SyntheticTruth` beside the
splits. It holds the world-level arrays (face axis, attribute directions,
rates, separations, context directions) and, per split, the latents of every
row in the split's row order: which identity vector it uses, its per-image
nuisance coordinates and its ambiguity noise `eta` along the attribute
directions. Composing those with any attribute vector gives the embedding the
same person in the same picture would have with those attributes:

    raw = axis + identity + nuisance + sum_j coeff_j * d_j(p, y)
    coeff_j = (y_j - rate_j) * separation_j + eta_j
    d_j(p, y) = u_j + context / context_norm
                    * (w_{group(p), j} + sum_{i != j} ŝ_i v_{j, i})
    ŝ_i = (2 y_i - 1) + 2 eta_i / separation_i      (the perceived sign of i)

and the embedding is raw / |raw|. With the row's own attributes this is the
stored embedding (to float32 rounding); with a target it is the exact
counterfactual the evaluation compares edits against.

`write_truth` / `read_truth` store it as `.npz` (no pickles); every problem
reading it is a `DataError` naming the file.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fclf.atomic import atomic_path
from fclf.errors import DataError

FORMAT_VERSION = 1
WORLD_ARRAYS = ("axis", "directions", "rates", "separations", "group_directions",
                "pair_directions", "nuisance_basis")
SPLIT_ARRAYS = ("identities", "identity_index", "identity_vectors", "identity_groups",
                "nuisance", "eta", "attributes")


def _frozen(array: np.ndarray, dtype: Any) -> np.ndarray:
    out = np.array(array, dtype=dtype, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class SplitLatents:
    """Per-row latents of one split, aligned with the split's rows (N rows, n people)."""

    identities: np.ndarray  # (N,) int64: the split's identity column (for alignment checks)
    identity_index: np.ndarray  # (N,) int64: row of identity_vectors this row shows
    identity_vectors: np.ndarray  # (n, d) float64: face identity (group + individual part)
    identity_groups: np.ndarray  # (n,) int64: look-alike group of each person
    nuisance: np.ndarray  # (N, r) float64: nuisance coordinates in truth.nuisance_basis
    eta: np.ndarray  # (N, k) float64: ambiguity noise along each attribute direction
    attributes: np.ndarray  # (N, k) int8: the row's own attributes

    def __post_init__(self) -> None:
        for name, dtype in (("identities", np.int64), ("identity_index", np.int64),
                            ("identity_vectors", np.float64), ("identity_groups", np.int64),
                            ("nuisance", np.float64), ("eta", np.float64),
                            ("attributes", np.int8)):
            object.__setattr__(self, name, _frozen(getattr(self, name), dtype))

    def __len__(self) -> int:
        return len(self.identity_index)


@dataclass(frozen=True, eq=False)
class SyntheticTruth:
    """The latent factors of a synthetic world; `counterfactual` composes embeddings."""

    attribute_names: tuple[str, ...]
    axis: np.ndarray  # (d,) the shared face axis, already scaled
    directions: np.ndarray  # (k, d) u_j: orthonormal attribute directions
    rates: np.ndarray  # (k,) attribute rates the coefficients are centred on
    separations: np.ndarray  # (k,) coefficient jump between y_j = 0 and y_j = 1
    context: float  # 0: the linear world (d_j = u_j for everyone)
    context_norm: float  # norm of the person-specific part before scaling by context
    group_directions: np.ndarray  # (G, k, d) w_{c,j} (shape (0, k, d) when context = 0)
    pair_directions: np.ndarray  # (k, k, d) v_{j,i}, zero on the diagonal ((0, k, d) if 0)
    nuisance_basis: np.ndarray  # (d, r) orthonormal columns the per-image nuisance lives in
    nuisance_scale: float  # nuisance = nuisance_scale * coords @ nuisance_basis.T
    splits: dict[str, SplitLatents] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "attribute_names", tuple(self.attribute_names))
        for name in WORLD_ARRAYS:
            object.__setattr__(self, name, _frozen(getattr(self, name), np.float64))
        object.__setattr__(self, "context", float(self.context))
        object.__setattr__(self, "context_norm", float(self.context_norm))
        object.__setattr__(self, "nuisance_scale", float(self.nuisance_scale))
        object.__setattr__(self, "splits", dict(self.splits))
        problem = self._shape_problem()
        if problem:
            raise ValueError(problem)

    # -- shape ------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return int(self.axis.shape[0])

    @property
    def num_groups(self) -> int:
        """Look-alike groups with their own attribute directions (0 when context = 0;
        every person's group is in `SplitLatents.identity_groups`)."""
        return int(self.group_directions.shape[0])

    def _shape_problem(self) -> str | None:
        k, d = len(self.attribute_names), self.axis.shape[0] if self.axis.ndim == 1 else -1
        expected = {"axis": (d,), "directions": (k, d), "rates": (k,), "separations": (k,)}
        if self.context > 0:
            expected["pair_directions"] = (k, k, d)
        else:
            expected["group_directions"] = (0, k, d)
            expected["pair_directions"] = (0, k, d)
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                return f"{name} has shape {getattr(self, name).shape}, expected {shape}"
        if self.group_directions.ndim != 3 or self.group_directions.shape[1:] != (k, d):
            shape = self.group_directions.shape
            return f"group_directions has shape {shape}, expected (G, {k}, {d})"
        if self.context > 0 and self.num_groups < 1:
            return "group_directions is empty but context > 0"
        if self.nuisance_basis.ndim != 2 or self.nuisance_basis.shape[0] != d:
            return f"nuisance_basis has shape {self.nuisance_basis.shape}, expected ({d}, r)"
        if self.context < 0 or (self.context > 0 and self.context_norm <= 0):
            return f"context {self.context} / context_norm {self.context_norm} are invalid"
        r = self.nuisance_basis.shape[1]
        for split, lat in self.splits.items():
            n_rows, n_ids = len(lat.identity_index), len(lat.identity_vectors)
            shapes = {"identities": (n_rows,), "identity_vectors": (n_ids, d),
                      "identity_groups": (n_ids,), "nuisance": (n_rows, r), "eta": (n_rows, k),
                      "attributes": (n_rows, k)}
            for name, shape in shapes.items():
                if getattr(lat, name).shape != shape:
                    return (f"split {split!r}: {name} has shape {getattr(lat, name).shape}, "
                            f"expected {shape}")
            if n_rows and (lat.identity_index.min() < 0 or lat.identity_index.max() >= n_ids):
                return f"split {split!r}: identity_index points outside identity_vectors"
            if n_ids and self.context > 0 and (
                lat.identity_groups.min() < 0 or lat.identity_groups.max() >= self.num_groups
            ):
                return f"split {split!r}: identity_groups outside 0..{self.num_groups - 1}"
        return None

    def latents(self, split: str) -> SplitLatents:
        if split not in self.splits:
            raise KeyError(f"no split {split!r} in the synthetic truth (has {list(self.splits)})")
        return self.splits[split]

    # -- composition ------------------------------------------------------------------

    def _check(self, split: str, rows: Any, targets: Any) -> tuple[SplitLatents, np.ndarray,
                                                                     np.ndarray]:
        lat = self.latents(split)
        rows = np.asarray(rows)
        if rows.ndim != 1 or not np.issubdtype(rows.dtype, np.integer):
            raise ValueError(f"rows must be a 1-D integer array, got {rows.dtype} {rows.shape}")
        if len(rows) and (rows.min() < 0 or rows.max() >= len(lat)):
            raise ValueError(f"rows must lie in 0..{len(lat) - 1} for split {split!r}")
        targets = np.asarray(targets)
        k = len(self.attribute_names)
        if targets.shape != (len(rows), k):
            raise ValueError(f"targets must have shape ({len(rows)}, {k}), got {targets.shape}")
        if targets.size and not np.isin(targets, (0, 1)).all():
            raise ValueError("targets must hold only 0 and 1")
        return lat, rows.astype(np.int64), targets.astype(np.float64)

    def perceived_signs(self, lat: SplitLatents, rows: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(N, k) 2 y - 1 plus the image's ambiguity 2 eta / separation (see the module doc)."""
        return (2.0 * y - 1.0) + 2.0 * lat.eta[rows] / self.separations

    def attribute_directions(self, split: str, rows: Any, targets: Any) -> np.ndarray:
        """(N, k, d) d_j(p, y): the direction attribute j moves row p's person with
        attributes `targets` (u_j, plus the person- and context-specific part)."""
        lat, rows, y = self._check(split, rows, targets)
        n, k = y.shape
        out = np.broadcast_to(self.directions, (n, k, self.dim)).copy()
        if self.context > 0:
            groups = lat.identity_groups[lat.identity_index[rows]]
            specific = self.group_directions[groups] + np.einsum(
                "ni,jid->njd", self.perceived_signs(lat, rows, y), self.pair_directions
            )
            out += (self.context / self.context_norm) * specific
        return out

    def unnormalised(self, split: str, rows: Any, targets: Any) -> np.ndarray:
        """(N, d) float64: the embedding before L2 normalisation (see the module doc)."""
        lat, rows, y = self._check(split, rows, targets)
        ident = lat.identity_vectors[lat.identity_index[rows]]
        nuisance = (lat.nuisance[rows] @ self.nuisance_basis.T) * self.nuisance_scale
        coeff = (y - self.rates) * self.separations + lat.eta[rows]
        raw = self.axis + ident + nuisance + coeff @ self.directions
        if self.context > 0:
            raw += (self.context / self.context_norm) * self._specific(
                coeff, self.perceived_signs(lat, rows, y),
                lat.identity_groups[lat.identity_index[rows]],
            )
        return raw

    def _specific(self, coeff: np.ndarray, signs: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """sum_j coeff_j (w_{g,j} + sum_{i != j} s_i v_{j,i}) as two matrix products."""
        n, k = coeff.shape
        d = self.dim
        by_group = np.zeros((n, self.num_groups * k))
        by_group[np.arange(n)[:, None], groups[:, None] * k + np.arange(k)] = coeff
        out = by_group @ self.group_directions.reshape(-1, d)
        pairs = (coeff[:, :, None] * signs[:, None, :]).reshape(n, k * k)
        out += pairs @ self.pair_directions.reshape(k * k, d)
        return out

    def counterfactual(self, split: str, rows: Any, targets: Any) -> np.ndarray:
        """(N, d) float32 unit vectors: rows `rows` of `split` with attributes `targets`
        (same person, same picture, same ambiguity noise)."""
        raw = self.unnormalised(split, rows, targets)
        return (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)

    def embeddings(self, split: str) -> np.ndarray:
        """The split's embeddings recomposed from the latents and the rows' own attributes."""
        lat = self.latents(split)
        return self.counterfactual(split, np.arange(len(lat)), lat.attributes)

    def check_split(self, name: str, split: Any, source: str | Path = "<split>") -> None:
        """DataError unless `split` (an EmbeddingSplit) is the split `name` this truth
        describes: same attributes, rows, identities and attribute values, in order."""
        if name not in self.splits:
            raise DataError(f"{source}: the synthetic truth has no split {name!r}; "
                            "re-run the embed stage")
        lat = self.splits[name]
        if tuple(split.attribute_names) != self.attribute_names:
            raise DataError(f"{source}: attributes {list(split.attribute_names)} differ from the "
                            f"synthetic truth's {list(self.attribute_names)}; "
                            "re-run the embed stage")
        same = (len(split) == len(lat) and split.dim == self.dim
                and np.array_equal(split.identities, lat.identities)
                and np.array_equal(split.attributes, lat.attributes))
        if not same:
            raise DataError(f"{source}: split {name!r} does not match the synthetic truth (rows, "
                            "identities or attributes differ); re-run the embed stage")


# -- files ------------------------------------------------------------------------------


def write_truth(path: str | Path, truth: SyntheticTruth) -> None:
    """Write `truth` atomically as an uncompressed `.npz` (no pickled objects)."""
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION),
        "attribute_names": np.array(truth.attribute_names, dtype=str),
        "split_names": np.array(list(truth.splits), dtype=str),
        "context": np.array(truth.context),
        "context_norm": np.array(truth.context_norm),
        "nuisance_scale": np.array(truth.nuisance_scale),
        "seed": np.array(truth.seed, dtype=np.int64),
    }
    for name in WORLD_ARRAYS:
        arrays[name] = getattr(truth, name)
    for split, lat in truth.splits.items():
        for name in SPLIT_ARRAYS:
            arrays[f"split.{split}.{name}"] = getattr(lat, name)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def read_truth(
    path: str | Path,
    attribute_names: list[str] | tuple[str, ...] | None = None,
    dim: int | None = None,
) -> SyntheticTruth:
    """Load a truth file; every problem is a DataError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: synthetic truth file not found (the embed stage writes it for "
                        "data.source: synthetic only)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: not a readable synthetic truth file ({exc})") from None
    scalars = ("format_version", "attribute_names", "split_names", "context", "context_norm",
               "nuisance_scale", "seed")
    missing = [key for key in (*scalars, *WORLD_ARRAYS) if key not in data]
    if missing:
        raise DataError(f"{path}: missing array(s) {missing}; not a synthetic truth file")
    version = int(data["format_version"]) if data["format_version"].shape == () else None
    if version != FORMAT_VERSION:
        raise DataError(f"{path}: format_version {version!r}, expected {FORMAT_VERSION}")
    names = tuple(str(n) for n in data["attribute_names"].tolist())
    if attribute_names is not None and tuple(attribute_names) != names:
        raise DataError(f"{path}: attributes {list(names)} differ from the params' "
                        f"data.attributes {list(attribute_names)}; re-run the embed stage")
    split_names = [str(s) for s in data["split_names"].tolist()]
    splits = {}
    for split in split_names:
        keys = [f"split.{split}.{name}" for name in SPLIT_ARRAYS]
        absent = [key for key in keys if key not in data]
        if absent:
            raise DataError(f"{path}: missing array(s) {absent}")
        try:
            splits[split] = SplitLatents(**{n: data[k] for n, k in zip(SPLIT_ARRAYS, keys,
                                                                         strict=True)})
        except (TypeError, ValueError) as exc:
            raise DataError(f"{path}: split {split!r} is malformed ({exc})") from None
    try:
        truth = SyntheticTruth(
            attribute_names=names,
            **{name: data[name] for name in WORLD_ARRAYS},
            context=float(data["context"]), context_norm=float(data["context_norm"]),
            nuisance_scale=float(data["nuisance_scale"]), splits=splits,
            seed=int(data["seed"]),
        )
    except (TypeError, ValueError) as exc:
        raise DataError(f"{path}: inconsistent synthetic truth ({exc})") from None
    if dim is not None and truth.dim != dim:
        raise DataError(f"{path}: synthetic truth has dim {truth.dim}, expected {dim}")
    for name in WORLD_ARRAYS:
        if not np.isfinite(getattr(truth, name)).all():
            raise DataError(f"{path}: non-finite values in {name!r}")
    for split, lat in truth.splits.items():
        for name in ("identity_vectors", "nuisance", "eta"):
            if not np.isfinite(getattr(lat, name)).all():
                raise DataError(f"{path}: non-finite values in split {split!r} {name!r}")
    return truth
