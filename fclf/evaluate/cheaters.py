"""Edits built to game the yardstick: every verdict must refuse them.

Each returns (N, d) points for the sources of a protocol (rows of one split,
told-mode targets). They are used by the yardstick's tests and by `fclf
thresholds`, which shows on val where honest editors and these cheats fall for
every measure with a threshold, so the thresholds can sit between them.

- collapse: `prototype_pull` (toward the train mean of the target code),
  `prototype_noise` (the prototype plus noise), `snap` (onto one of a few real
  faces of the target code), `pure_noise`;
- no truth needed to cheat, and none to be caught: `with_noise` (an honest
  edit plus isotropic noise), `overshoot` (an edit walked `factor` times as
  far along its own great circle), `probe_walk` (walk a class-balanced probe
  fitted on train, the judge's recipe, to a fixed margin).
"""

from __future__ import annotations

import numpy as np

from fclf.evaluate.editors import slerp
from fclf.evaluate.metrics import combination_labels
from fclf.evaluate.probes import AttributeProbes


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _code_pools(train_attributes: np.ndarray, targets: np.ndarray) -> dict[int, np.ndarray]:
    """target code -> train rows of that code (the closest code by Hamming distance if absent)."""
    codes = combination_labels(train_attributes)
    pools = {}
    for code in np.unique(combination_labels(targets)):
        pool = np.flatnonzero(codes == code)
        if len(pool) == 0:
            hamming = [bin(int(c) ^ int(code)).count("1") for c in codes]
            pool = np.flatnonzero(codes == codes[int(np.argmin(hamming))])
        pools[int(code)] = pool
    return pools


def prototypes(train_embeddings: np.ndarray, train_attributes: np.ndarray,
               targets: np.ndarray) -> np.ndarray:
    """(N, d): each row's target-code mean of real train faces."""
    wanted = combination_labels(targets)
    out = np.empty((len(targets), train_embeddings.shape[1]))
    for code, pool in _code_pools(train_attributes, targets).items():
        out[wanted == code] = np.asarray(train_embeddings[pool], np.float64).mean(axis=0)
    return out


def prototype_pull(sources, train_embeddings, train_attributes, targets, pull: float):
    return unit((1 - pull) * np.asarray(sources, np.float64)
                + pull * prototypes(train_embeddings, train_attributes, targets))


def prototype_noise(train_embeddings, train_attributes, targets, scale: float = 0.3,
                    seed: int = 0):
    proto = unit(prototypes(train_embeddings, train_attributes, targets))
    noise = np.random.default_rng(seed).standard_normal(proto.shape) / np.sqrt(proto.shape[1])
    return unit(proto + scale * noise)


def snap(train_embeddings, train_attributes, targets, per_code: int = 3, seed: int = 1):
    rng = np.random.default_rng(seed)
    wanted = combination_labels(targets)
    out = np.empty((len(targets), train_embeddings.shape[1]), np.float32)
    for code, pool in _code_pools(train_attributes, targets).items():
        chosen = rng.choice(pool, size=min(per_code, len(pool)), replace=False)
        rows = np.flatnonzero(wanted == code)
        out[rows] = train_embeddings[rng.choice(chosen, size=len(rows))]
    return out


def isotropic(shape: tuple[int, int], norm: float, seed: int) -> np.ndarray:
    """Rows of exactly `norm` in uniformly random directions."""
    noise = np.random.default_rng(seed).standard_normal(shape)
    return norm * noise / np.linalg.norm(noise, axis=1, keepdims=True)


def pure_noise(sources, norm: float = 2.0, seed: int = 2):
    return unit(np.asarray(sources, np.float64) + isotropic(np.shape(sources), norm, seed))


def with_noise(edits, norm: float = 0.3, seed: int = 3):
    return unit(np.asarray(edits, np.float64) + isotropic(np.shape(edits), norm, seed))


def overshoot(sources, edits, factor: float = 2.0):
    return slerp(sources, edits, factor)


def probe_walk(sources, train_embeddings, train_attributes, names, request: np.ndarray,
               targets: np.ndarray, margin: float = 10.0, c: float = 0.01,
               iterations: int = 50):
    """Walk each requested attribute along a class-balanced train probe's normal until the
    probe reads it at `margin` (-margin for a target of 0), renormalising as it goes."""
    probes = AttributeProbes(train_embeddings, train_attributes, names, c=c,
                             class_weight="balanced")
    asked = np.asarray(request) >= 0
    sign = np.where(np.asarray(targets) == 1, 1.0, -1.0) * asked
    scale = np.linalg.norm(probes.weights, axis=1)
    normals = probes.weights / scale[:, None]
    x = np.asarray(sources, np.float64).copy()
    for _ in range(iterations):
        short = (margin - sign * probes.logits(x)) * asked
        x += (short * sign / scale) @ normals
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)
