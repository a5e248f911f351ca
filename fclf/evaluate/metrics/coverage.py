"""Density and coverage of edited points against real points of their target class.

Naeem et al. (ICML 2020), "Reliable Fidelity and Diversity Metrics for
Generative Models". Each real point of a class gets a ball reaching its k-th
nearest other real point of that class.

- coverage: fraction of real points whose ball holds at least one edit of
  their class. Edits near a few real prototypes cover few balls. Beware
  hubness: in high dimensions a central point (a class mean) lies inside most
  balls, so a collapse onto class means covers nearly everything; density
  then reads far above 1 (and neighbourhoods and distinct neighbours fail).
- density: balls holding each edit, summed over edits, / (k x number of edits);
  ~1 when edits look like a fresh sample of the class, ~0 for edits off the
  data (noise, rotations), above 1 for edits piled where reals are dense.

Balls are small when k is below the number of images per person: then a
real's k nearest are mostly the same person, and an edit of someone not among
the reals (identity-disjoint splits) lands in few balls even when perfect.
Choose k above the images per person, or calibrate thresholds for the k used.

Scored per target code (attribute combination), for each code present among
the edits that has at least k+1 real points; coverage is aggregated weighted
by real points, density by edits. Edits of other codes are not scored
(fraction_scored says how many were). Euclidean distance on the raw vectors,
strict inequalities (a point on a ball's boundary is outside, as in the
authors' code).

Distances come from blocked float32 matmuls (no N x M matrix) after centering
each code on its real mean: squared distances, radii included, are read off
one augmented product, [x, 1, -|x|^2] . [2y, -|y|^2, 1] = -|x - y|^2. Radii
shrink by DISTANCE_TOL x the largest squared real norm when tested, so float32
rounding cannot put an exact duplicate inside a zero-radius ball. The positive
entries of a block (edit inside ball) are sparse and found through maxima over
strided groups of columns, as in neighbourhood.py. Where the CPU has bf16 dot
products, the edit-to-ball products run in bf16 as a filter with a rigorous
error bound, and the few pairs it cannot decide are recomputed in float64
(_BF16Cross): the same answer as float32, in about half the time.
"""

from __future__ import annotations

import numpy as np
import torch

from fclf.evaluate.metrics.neighbourhood import _group, top_k_others

BLOCK = 2048
DISTANCE_TOL = 1e-5
USE_BF16: bool | None = None  # None: use bf16 filtering where the CPU has bf16 units


def _stack(x: torch.Tensor, scale: float, first: torch.Tensor, second: torch.Tensor):
    """float32 rows [scale * x, first, second]."""
    return torch.cat([x * scale, first[:, None].float(), second[:, None].float()], dim=1)


def _centred(points: np.ndarray, center: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(float32 points - center, float64 squared norms)."""
    x = torch.as_tensor(np.asarray(points, np.float32)) - center
    return x, (x * x).sum(dim=1, dtype=torch.float64)


def _balls(
    real: np.ndarray, fake: np.ndarray, k: int, block_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(balls holding each fake (F,) int64, real points with a fake in their ball (M,) bool)."""
    raw = torch.as_tensor(np.asarray(real, np.float32))
    center = (raw.sum(dim=0, dtype=torch.float64) / len(raw)).float()
    xr, sq_r = _centred(real, center)
    xf, sq_f = _centred(fake, center)
    ones_r = torch.ones(len(xr), dtype=torch.float64)

    # [x, 1, -|x|^2] . [2y, -|y|^2, 1] = -|x - y|^2: the k-th largest is minus the squared radius
    left, right = _stack(xr, 1.0, ones_r, -sq_r), _stack(xr, 2.0, -sq_r, ones_r)
    top = top_k_others(left, right, k, block_size)
    radii2 = (-top.values[:, k - 1].double()).clamp_min(0.0)

    # inside <=> s = 2 f.r + c_r - |f|^2 > 0 with c_r = -(|r|^2 - radius^2 + tol),
    # i.e. |f - r|^2 < radius^2 - tol (tol from the reals only: far fakes must not widen it)
    c = -(sq_r - radii2 + DISTANCE_TOL * max(float(sq_r.max()), 1e-30))
    cross = _BF16Cross(xf, xr, sq_f, c) if _use_bf16() else _Float32Cross(xf, xr, sq_f, c)
    counts = torch.zeros(len(xf), dtype=torch.int64)
    covered = torch.zeros(len(xr), dtype=torch.bool)
    for i0 in range(0, len(xf), block_size):
        for j0 in range(0, len(xr), block_size):
            f, r = cross.inside(slice(i0, i0 + block_size), slice(j0, j0 + block_size))
            counts.index_add_(0, f + i0, torch.ones_like(f))
            covered[r + j0] = True
    return counts.numpy(), covered.numpy()


def _positive(scores: torch.Tensor, bars: torch.Tensor):
    """(row, col, value) of the entries above their row's bar, via strided group maxima.

    The entries sought are sparse, so one pass of group maxima finds the few
    groups worth gathering.
    """
    n_rows, n_cols = scores.shape
    g = _group(n_cols)
    q = n_cols // g
    grouped = scores.view(n_rows, g, q)  # group (r, j) holds columns j, j + q, j + 2q, ...
    r, j = (grouped.amax(dim=1) > bars[:, None]).nonzero(as_tuple=True)
    hit, t = (grouped[r, :, j] > bars[r, None]).nonzero(as_tuple=True)
    return r[hit], t * q + j[hit], grouped[r[hit], t, j[hit]]


class _Float32Cross:
    """s for a block of (fake, real) pairs from one float32 matmul of augmented rows."""

    def __init__(self, xf, xr, sq_f, c):
        self.fakes = _stack(xf, 1.0, torch.ones(len(xf)), -sq_f)
        self.reals = _stack(xr, 2.0, c, torch.ones(len(xr)))
        self.buf = None

    def inside(self, rows: slice, cols: slice) -> tuple[torch.Tensor, torch.Tensor]:
        fi, rj = self.fakes[rows], self.reals[cols]
        if self.buf is None or self.buf.numel() < len(fi) * len(rj):
            self.buf = torch.empty(len(fi) * len(rj))
        scores = torch.mm(fi, rj.T, out=self.buf[: len(fi) * len(rj)].view(len(fi), len(rj)))
        f, r, _ = _positive(scores, torch.zeros(len(fi)))
        return f, r


class _BF16Cross:
    """The same signs from a bfloat16 matmul (~4x faster where the CPU has bf16 units).

    bf16 keeps 8 significant bits (u = 2^-8), so the product is only a filter:
    with inputs rounded once, float32 accumulation and a bf16 result,
    |approx - s| <= 2u(1 + u) |f| |2r| + (scalar and accumulation terms) + u |approx| / (1 - u).
    The scalars travel as two bf16 parts (hi + lo, ~16 bits). Pairs whose
    approx lies within that bound of 0 (a few per real point) are recomputed in
    float64; if a block has too many, the whole block is redone in float32.
    """

    MAX_AMBIGUOUS = 0.01  # fraction of a block beyond which it is redone in float32

    def __init__(self, xf, xr, sq_f, c):
        self.xf, self.xr, self.sq_f, self.c = xf, xr, sq_f, c  # float32 rows, float64 scalars
        one_f, one_r = torch.ones(len(xf), 1), torch.ones(len(xr), 1)
        self.fakes = torch.cat([xf, one_f, one_f, -_split(sq_f)], 1).bfloat16()
        self.reals = torch.cat([2 * xr, _split(c), one_r, one_r], 1).bfloat16()
        norm_f = torch.linalg.vector_norm(xf, dim=1, dtype=torch.float64)
        norm_2r = 2 * float(torch.linalg.vector_norm(xr, dim=1, dtype=torch.float64).max())
        max_c = float(c.abs().max())
        bound = 2**-7 * 1.01 * norm_f * norm_2r + 2**-13 * (max_c + self.sq_f + norm_f * norm_2r)
        self.bars = (bound / (1 - 2**-7)).float()
        self.fallback = None

    def inside(self, rows: slice, cols: slice) -> tuple[torch.Tensor, torch.Tensor]:
        approx = torch.mm(self.fakes[rows], self.reals[cols].T)
        bar = self.bars[rows]
        f, r, v = _positive(approx, -bar)
        sure = v.float() > bar[f]
        unsure = (~sure).nonzero().squeeze(1)
        if len(unsure) > self.MAX_AMBIGUOUS * approx.numel():
            if self.fallback is None:
                self.fallback = _Float32Cross(self.xf, self.xr, self.sq_f, self.c)
            return self.fallback.inside(rows, cols)
        fu, ru = f[unsure], r[unsure]
        gf, gr = fu + rows.start, ru + cols.start
        dots = (self.xf[gf].double() * self.xr[gr].double()).sum(dim=1)
        exact = 2 * dots + self.c[gr] - self.sq_f[gf]
        keep = sure.clone()
        keep[unsure] = exact > 0
        return f[keep], r[keep]


def _split(x: torch.Tensor) -> torch.Tensor:
    """(n, 2) float32: float64 x as a bf16-exact high part and the remainder (~16 bits in bf16)."""
    hi = x.bfloat16().double()
    return torch.stack([hi, x - hi], dim=1).float()


def _use_bf16() -> bool:
    """USE_BF16 if set, else whether this CPU has native bf16 dot products."""
    if USE_BF16 is not None:
        return USE_BF16
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)  # private: may vanish
    try:
        return bool(check and check())
    except Exception:  # any failure means: do not rely on it
        return False


def density_coverage(
    real: np.ndarray,
    real_codes: np.ndarray,
    fake: np.ndarray,
    fake_codes: np.ndarray,
    k: int = 5,
    block_size: int = BLOCK,
) -> dict:
    """{density, coverage, fraction_scored} of `fake` against same-code `real` points.

    density and coverage are None when no fake could be scored.
    """
    real_codes, fake_codes = np.asarray(real_codes), np.asarray(fake_codes)
    if len(real_codes) != len(real) or len(fake_codes) != len(fake):
        raise ValueError("each point needs one code")
    if k < 1:
        raise ValueError(f"k={k} must be >= 1")
    balls = covered = real_scored = fake_scored = 0
    for code in np.unique(fake_codes):
        real_rows = np.flatnonzero(real_codes == code)
        if len(real_rows) < k + 1:
            continue
        fake_rows = np.flatnonzero(fake_codes == code)
        counts, hit = _balls(real[real_rows], fake[fake_rows], k, block_size)
        balls += int(counts.sum())
        covered += int(hit.sum())
        real_scored += len(real_rows)
        fake_scored += len(fake_rows)
    return {
        "density": balls / (k * fake_scored) if fake_scored else None,
        "coverage": covered / real_scored if real_scored else None,
        "fraction_scored": fake_scored / len(fake) if len(fake) else 0.0,
    }
