"""Truth-free 'photo/person subspace' projector for edit displacements (fit on train only).

fit_projector(z, labels, identities, r_group=19, r_nuisance=16) -> Q (d, r) orthonormal:
- nuisance: top r_nuisance principal directions of within-person deviations (x - person mean),
  residualised on the label deviations (y - person mean labels);
- person/group: top r_group principal directions of the person means, residualised on the
  person-mean labels and their pairwise products, after removing the span of the 5
  class-mean-difference directions mean(z|y_j=1) - mean(z|y_j=0) (protected).
`project_edit(z, x, Q)` removes span(Q) from the displacement x - z and retracts; rows whose
request is empty are returned untouched (no-op stays exactly 0).
"""
import numpy as np
import torch
from fclf.model.flow import retract


def _resid(X, F):
    F1 = np.c_[np.ones(len(F)), F]
    return X - F1 @ np.linalg.lstsq(F1, X, rcond=None)[0]


def fit_projector(z, labels, identities, r_group=19, r_nuisance=16):
    Z = np.asarray(z, np.float64); Y = np.asarray(labels, np.float64); I = np.asarray(identities)
    _, inv = np.unique(I, return_inverse=True)
    cnt = np.bincount(inv)
    M = np.zeros((cnt.size, Z.shape[1])); np.add.at(M, inv, Z); M /= cnt[:, None]
    YM = np.zeros((cnt.size, Y.shape[1])); np.add.at(YM, inv, Y); YM /= cnt[:, None]
    k = Y.shape[1]
    feats = np.c_[YM, np.stack([YM[:, a] * YM[:, b] for a in range(k) for b in range(a + 1, k)], 1)]
    D = np.stack([Z[Y[:, j] == 1].mean(0) - Z[Y[:, j] == 0].mean(0) for j in range(k)], 1)
    prot = np.linalg.qr(D)[0]
    Rp = _resid(M, feats)
    Rp = Rp - (Rp @ prot) @ prot.T
    Ug = np.linalg.svd(Rp.T, full_matrices=False)[0][:, :r_group]
    Rw = _resid(Z - M[inv], Y - YM[inv])
    Un = np.linalg.svd(Rw.T, full_matrices=False)[0][:, :r_nuisance]
    return torch.from_numpy(np.linalg.qr(np.c_[Ug, Un])[0]).float()


def project_edit(z, x, Q, moving):
    e = x - z
    e = e - (e @ Q) @ Q.T
    return torch.where(moving[:, None], retract(z + e), z)
