"""The trained model file: weights plus what is needed to rebuild and use the field.

The record holds the field's weights (its source reader included), its
ModelConfig, the attribute names and the flow *horizon* it was trained with
(`flow`: num_steps, step_size, integrator). Evaluation and `fclf transfer`
integrate that horizon (`recorded_flow`), so an edit is exactly the flow that
training optimised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from fclf.atomic import torch_load, torch_save
from fclf.config import FlowConfig, ModelConfig, to_dict
from fclf.errors import FclfError
from fclf.model.field import Condition, VectorField, build_field
from fclf.model.flow import integrate

MODEL_FORMAT = 2  # 2: heads contracted with delta = y - s, source reader, recorded horizon


def save_model(
    path: str | Path, field: VectorField, model_config: ModelConfig,
    attribute_names: list[str], extra: dict[str, Any] | None = None,
    flow: FlowConfig | None = None,
) -> None:
    """Write the model record; `flow` is the horizon it was trained with (default: FlowConfig())."""
    torch_save({
        "format": MODEL_FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in field.state_dict().items()},
        "model_config": to_dict(model_config),
        "dim": field.dim,
        "attributes": list(attribute_names),
        "flow": to_dict(flow or FlowConfig()),
        **(extra or {}),
    }, path)


def load_model(path: str | Path) -> tuple[VectorField, ModelConfig, dict[str, Any]]:
    """(field in eval mode, its ModelConfig, the whole saved record)."""
    record = torch_load(path, "model file")
    if record.get("format") != MODEL_FORMAT:
        found = record.get("format")
        hint = "; it was written by an older fclf: retrain it" if isinstance(found, int) else ""
        raise FclfError(f"{path}: not an fclf model file of format {MODEL_FORMAT} "
                        f"(format {found!r}){hint}")
    model_config = ModelConfig(**record["model_config"])
    field = build_field(record["dim"], len(record["attributes"]), model_config)
    field.load_state_dict(record["state_dict"])
    field.eval()
    return field, model_config, record


def recorded_flow(record: dict[str, Any]) -> FlowConfig:
    """The horizon a loaded model was trained with (from `load_model`'s record)."""
    return FlowConfig(**record["flow"])


def edit_function(
    field: VectorField, model_config: ModelConfig, num_steps: int, step_size: float,
    device: torch.device | str = "cpu", batch_size: int = 8192, integrator: str = "euler",
):
    """An EditFn (z (N,d), targets (N,k)) -> trajectories (num_steps+1, N, d) for evaluation.

    Pass the recorded horizon (`recorded_flow(record)`: num_steps, step_size,
    integrator) to edit exactly as the model was trained. The source attributes
    s are read by the model's own reader from z, so delta = targets - s; the
    returned function also takes `sources=` (N, k) 0/1 to give s explicitly.
    A row with targets == s does not move at all (v = 0), so it is not integrated.
    """
    field = field.to(device)

    @torch.no_grad()
    def edit(z: np.ndarray, targets: np.ndarray, sources: np.ndarray | None = None) -> np.ndarray:
        z = np.asarray(z, np.float32)
        out = np.broadcast_to(z, (num_steps + 1, *z.shape)).copy()  # rows with delta = 0 stay
        for start in range(0, len(z), batch_size):
            zb = torch.as_tensor(z[start : start + batch_size], device=device)
            yb = torch.as_tensor(targets[start : start + batch_size], device=device)
            if sources is None:
                condition = field.condition(zb, yb)
            else:
                sb = torch.as_tensor(sources[start : start + batch_size], device=device)
                condition = Condition.from_source(yb, sb, zb.dtype)
            moving = condition.active.nonzero().squeeze(1)
            if len(moving) == 0:
                continue
            traj = integrate(
                field, zb[moving], condition.select(moving), num_steps=num_steps,
                step_size=step_size, sphere=model_config.sphere, integrator=integrator,
                keep_trajectory=True,
            )
            out[:, start + moving.cpu().numpy()] = traj.cpu().numpy()
        return out

    return edit


def reader_function(field: VectorField, device: torch.device | str = "cpu",
                    batch_size: int = 8192):
    """(N, d) points -> (N, k) int8: the model's own reading of source attributes (blind mode)."""
    field = field.to(device)

    @torch.no_grad()
    def read(z: np.ndarray) -> np.ndarray:
        out = [field.reader.read(torch.as_tensor(z[start : start + batch_size], device=device))
               .cpu().numpy() for start in range(0, len(z), batch_size)]
        return np.concatenate(out).astype(np.int8) if out else np.zeros((0, field.num_attributes),
                                                                         np.int8)

    return read
