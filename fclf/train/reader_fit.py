"""Fitting the model's own attribute reader (fclf.model.source_reader) on train embeddings.

One L2-regularised logistic regression per attribute (`fclf.logistic`), the
same problem the evaluation's probes solve. It is fitted here, in the training
wing, because the model only applies it.
"""

from __future__ import annotations

import torch

from fclf.logistic import fit_logistic


def fit_source_reader(
    embeddings: torch.Tensor, labels: torch.Tensor, c: float = 1.0, max_iter: int = 200,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (k, d), bias (k)) in float32, on the device of `embeddings`."""
    return fit_logistic(embeddings, labels, c=c, max_iter=max_iter)
