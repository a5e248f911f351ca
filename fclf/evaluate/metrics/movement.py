"""How far edits move points, and how evenly along the trajectory."""

from __future__ import annotations

import numpy as np
import torch


def movement(sources: np.ndarray, edited: np.ndarray) -> float:
    """Mean Euclidean distance between each source and its edited point."""
    diff = torch.as_tensor(edited, dtype=torch.float32) - torch.as_tensor(sources)
    return float(diff.norm(dim=1).double().mean())


def centred_cosines(a: np.ndarray, b: np.ndarray, center: np.ndarray) -> np.ndarray:
    """(N,) float64 cosines of rows of a and b after subtracting `center` from both.

    Use the train-set mean embedding as the center: CLIP faces sit in a narrow
    cone, so raw cosines between any two faces are high and say little.
    """
    c = torch.as_tensor(np.asarray(center, np.float32))
    x = torch.as_tensor(np.asarray(a, np.float32)) - c
    y = torch.as_tensor(np.asarray(b, np.float32)) - c
    return torch.nn.functional.cosine_similarity(x, y, dim=1, eps=1e-12).double().numpy()


def identity_cosine(sources: np.ndarray, edited: np.ndarray, center: np.ndarray) -> float:
    """Mean centred cosine of source and edited point (see `centred_cosines`)."""
    return float(centred_cosines(sources, edited, center).mean())


def step_lengths(trajectories: np.ndarray) -> np.ndarray:
    """(T, N) distances |x_{t+1} - x_t| along (T+1, N, d) trajectories."""
    traj = torch.as_tensor(trajectories)
    if traj.shape[0] < 2:
        return np.zeros((0, traj.shape[1]))
    buf = torch.empty_like(traj[0])
    return (
        torch.stack(
            [
                torch.linalg.vector_norm(torch.sub(traj[t + 1], traj[t], out=buf), dim=1)
                for t in range(traj.shape[0] - 1)
            ]
        )
        .double()
        .numpy()
    )


def step_statistics(steps: np.ndarray) -> tuple[float, float]:
    """Mean and std of per-step distances (from `step_lengths`) over all steps and points.

    The original's "trajectory smoothness": a flow that jumps in one step and
    stalls in the others has a large std.
    """
    steps = np.asarray(steps, np.float64)
    if steps.size == 0:
        return 0.0, 0.0
    return float(steps.mean()), float(steps.std())
