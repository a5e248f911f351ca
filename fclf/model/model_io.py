"""The trained model file: weights plus what is needed to rebuild and use the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fclf.atomic import torch_load, torch_save
from fclf.config import ModelConfig, to_dict
from fclf.errors import FclfError
from fclf.model.field import VectorField, build_field
from fclf.model.flow import integrate

MODEL_FORMAT = 1


def save_model(
    path: str | Path, field: VectorField, model_config: ModelConfig,
    attribute_names: list[str], extra: dict[str, Any] | None = None,
) -> None:
    torch_save({
        "format": MODEL_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in field.state_dict().items()},
        "model_config": to_dict(model_config),
        "dim": field.dim,
        "attributes": list(attribute_names),
        **(extra or {}),
    }, path)


def load_model(path: str | Path) -> tuple[VectorField, ModelConfig, dict[str, Any]]:
    """(field in eval mode, its ModelConfig, the whole saved record)."""
    record = torch_load(path, "model file")
    if record.get("format") != MODEL_FORMAT:
        raise FclfError(f"{path}: not an fclf model file (format {record.get('format')!r})")
    model_config = ModelConfig(**record["model_config"])
    field = build_field(record["dim"], len(record["attributes"]), model_config)
    field.load_state_dict(record["state_dict"])
    field.eval()
    return field, model_config, record


def edit_function(
    field: VectorField, model_config: ModelConfig, num_steps: int, step_size: float,
    device: torch.device | str = "cpu", batch_size: int = 8192,
):
    """An EditFn (z (N,d), targets (N,k)) -> trajectories (num_steps+1, N, d) for evaluation."""
    field = field.to(device)

    @torch.no_grad()
    def edit(z: np.ndarray, targets: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(z), batch_size):
            zb = torch.as_tensor(z[start : start + batch_size], device=device)
            yb = torch.as_tensor(targets[start : start + batch_size], device=device).float()
            traj = integrate(
                field, zb, yb, num_steps=num_steps, step_size=step_size,
                sphere=model_config.sphere, integrator=model_config.integrator,
                keep_trajectory=True,
            )
            out.append(traj.cpu().numpy())
        return np.concatenate(out, axis=1).astype(np.float32)

    return edit
