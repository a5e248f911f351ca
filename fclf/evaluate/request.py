"""What an editor is asked for: the requested change, and what it is told about the source.

A protocol row asks for a change of some attributes. Its *request* holds the
value each requested attribute must take and `KEEP` (-1) everywhere else:
every attribute that is not requested keeps the source's value. The same rows
are scored in two modes (`MODES`):

- `told`: the editor is given the source's labels (what the protocol knows);
  its target is the labels with the request applied, so it is asked for
  exactly the requested change and nothing else (the headline and the gate);
- `blind`: the editor reads the source itself, as `fclf transfer` must on a new
  face; its target is its own reading with the request applied.

Asking for the labels with one attribute flipped (the old protocol) made an
editor whose reader disagrees with a label "correct" attributes nobody asked to
change. The truth (synthetic data) is the labels with the request applied: the
same person and photo with only the requested attributes changed. The no-op
asks for nothing (`noop_request`): in told mode an honest editor leaves the
point exactly where it is.
"""

from __future__ import annotations

import numpy as np

MODES = ("told", "blind")
KEEP = -1
TRANSFER_MODES = ("single", "multi")
_SUBSAMPLE_STREAM = 1
_REQUEST_STREAM = 2


def subsample_indices(n: int, num_samples: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded subsample of size num_samples (all n if None or >= n)."""
    if num_samples is None or num_samples >= n:
        return np.arange(n)
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    rng = np.random.default_rng((seed, _SUBSAMPLE_STREAM))
    return np.sort(rng.choice(n, size=num_samples, replace=False))


def sample_requests(labels: np.ndarray, transfer_mode: str, seed: int) -> np.ndarray:
    """(N, k) int8 requests: change attributes away from the source's labels.

    single: one uniformly random attribute per row; multi: 2 or 3 distinct ones
    (uniform count, capped at k). A requested attribute gets 1 - its label, the
    others `KEEP`. The draw is the old protocol's (same seed, same attributes).
    """
    attrs = np.asarray(labels, np.int8)
    n, k = attrs.shape
    if transfer_mode not in TRANSFER_MODES:
        raise ValueError(f"transfer_mode must be one of {TRANSFER_MODES}, got {transfer_mode!r}")
    if k == 0:
        raise ValueError("there are no attributes to change")
    rng = np.random.default_rng((seed, _REQUEST_STREAM))
    if transfer_mode == "single":
        counts = np.ones(n, np.int64)
    else:
        if k < 2:
            raise ValueError("transfer_mode 'multi' needs at least 2 attributes")
        counts = rng.integers(2, min(3, k) + 1, size=n)
    # a random permutation per row; request the attributes ranked below the count
    ranks = np.argsort(np.argsort(rng.random((n, k)), axis=1), axis=1)
    requested = ranks < counts[:, None]
    return np.where(requested, 1 - attrs, KEEP).astype(np.int8)


def noop_request(n: int, k: int) -> np.ndarray:
    """(n, k) requests that ask for no change at all."""
    return np.full((n, k), KEEP, np.int8)


def requested(request: np.ndarray) -> np.ndarray:
    """(N, k) bool: the attributes a request asks to set."""
    return np.asarray(request) != KEEP


def apply_request(request: np.ndarray, source: np.ndarray) -> np.ndarray:
    """(N, k) int8 targets: `source` (labels or a reading) with the requested values set."""
    request, source = np.asarray(request), np.asarray(source)
    if request.shape != source.shape:
        raise ValueError(f"request {request.shape} and source {source.shape} differ in shape")
    return np.where(request == KEEP, source, request).astype(np.int8)


def check_request(request: np.ndarray, k: int, what: str = "request") -> np.ndarray:
    """The request as int8 (N, k) with values in {-1, 0, 1}; ValueError naming `what`."""
    request = np.asarray(request)
    if request.ndim != 2 or request.shape[1] != k:
        raise ValueError(f"{what} must be (N, {k}), got {request.shape}")
    if request.size and not np.isin(request, (KEEP, 0, 1)).all():
        raise ValueError(f"{what} must hold only -1 (keep), 0 and 1")
    return request.astype(np.int8)


def sample_targets(labels: np.ndarray, transfer_mode: str, seed: int) -> np.ndarray:
    """(N, k) int8: the labels with `sample_requests`' changes applied (told-mode targets)."""
    return apply_request(sample_requests(labels, transfer_mode, seed), labels)
