"""The yardstick file: the fitted judge, the typicality Gaussian and the centring mean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fclf.atomic import torch_load, torch_save
from fclf.errors import FclfError
from fclf.evaluate.judge import Judge
from fclf.evaluate.metrics.realism import Typicality
from fclf.evaluate.protocol import Yardstick

FORMAT = 1


def save_yardstick(path: str | Path, yardstick: Yardstick) -> None:
    torch_save({
        "format": FORMAT,
        "judge": yardstick.judge.state(),
        "typicality": {"mean": torch.from_numpy(np.array(yardstick.typicality.mean)),
                       "precision": torch.from_numpy(np.array(yardstick.typicality.precision))},
        "center": torch.from_numpy(np.array(yardstick.center)),
    }, path)


def load_yardstick(path: str | Path, attribute_names) -> Yardstick:
    record = torch_load(path, "judge file")
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise FclfError(f"{path}: not an fclf judge file of format {FORMAT}; "
                        "rerun the fit-judge stage")
    judge = Judge.from_state(record["judge"])
    if tuple(judge.attribute_names) != tuple(attribute_names):
        raise FclfError(f"{path}: a judge of attributes {list(judge.attribute_names)}, the data "
                        f"has {list(attribute_names)}; rerun the fit-judge stage")
    typicality = Typicality(record["typicality"]["mean"].numpy(),
                            record["typicality"]["precision"].numpy())
    return Yardstick(judge, typicality, record["center"].numpy())
