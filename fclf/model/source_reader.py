"""The model's own attribute reader: s(z), the source attributes a flow starts from.

The field v(z, s, y) moves only the attributes where the target y differs from
the source reading s. At evaluation and in `fclf transfer` the edit function
gets only (z, y), so the model carries its own reader: one logistic regression
per attribute, (weight (k, d), bias (k)) in raw embedding space, stored as
buffers of the field (so they travel in the model file and in checkpoints).
It is fitted by the training wing (`fclf.train.reader_fit`) on the real train
embeddings and labels; the model wing only applies it. An unfitted reader
(all zeros) reads every attribute as 0.

Training uses the same reader for s (not the labels), so the field sees at
training exactly the changes delta = y - s it will be asked for at
evaluation, including the reader's mistakes (see `fclf.train.objectives`).
"""

from __future__ import annotations

import torch
from torch import nn


class SourceReader(nn.Module):
    """Per-attribute logistic reader: read(z) = 1[z·w_j + b_j > 0]."""

    def __init__(self, dim: int, num_attributes: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros(num_attributes, dim))
        self.register_buffer("bias", torch.zeros(num_attributes))
        self.register_buffer("fitted", torch.tensor(False))

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """(N, k) decision values."""
        return z @ self.weight.to(z.dtype).T + self.bias.to(z.dtype)

    def read(self, z: torch.Tensor) -> torch.Tensor:
        """(N, k) 0/1 readings in z's dtype (1 where the logit is > 0)."""
        return (self.logits(z) > 0).to(z.dtype)

    def set(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Install fitted parameters (k, d) and (k,)."""
        if weight.shape != self.weight.shape or bias.shape != self.bias.shape:
            raise ValueError(
                f"reader parameters {tuple(weight.shape)}, {tuple(bias.shape)} do not fit "
                f"{tuple(self.weight.shape)}, {tuple(self.bias.shape)}"
            )
        with torch.no_grad():
            self.weight.copy_(weight)
            self.bias.copy_(bias)
            self.fitted.fill_(True)
