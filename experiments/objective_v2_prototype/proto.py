"""Objective v2 prototype: a time-conditioned, delta-contracted field trained by conditional
flow matching on the sphere with identity-first couplings.

Pieces (each can be switched off for ablations, see `Config`):

- `TimeField`: fclf's VectorField v = sum_j delta_j h_j(z, y) plus a time input t in [0, 1]:
  Fourier features of t go through one bias-free linear layer added to the first hidden
  pre-activation, so the hand-written JVP/VJP w.r.t. z (and hence the curl/div penalties)
  are unchanged, and delta = 0 still gives v = 0 exactly.
- `Partners`: for each moving source (row i, target code y): a train photo of the SAME
  identity with code y when one exists (uniform among them, or the nearest), else a
  partner from an entropic C2OT plan between the remaining sources and a pool of
  `pool` x n_g real points per code (Sinkhorn in log space to a tolerance; `rho` < 1 makes
  the target marginal soft (unbalanced, rho = 0 = per-source softmin)).
- `train`: Adam + cosine schedule like fclf.train.loop; sources s = the LABELS (told).
- `make_editor`: integrates the field over t in [0, 1] (euler / midpoint / rk4).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field as dfield

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fclf.model.field import Condition, ForwardCache, VectorField, _silu_grad
from fclf.model.flow import geodesic_angle, project_tangent, retract, slerp, slerp_velocity
from fclf.model.jacobian_penalties import estimate_penalties
from fclf.train.bank import CodeBank, row_codes
from fclf.train.flips import sample_targets


# ----------------------------------------------------------------------------- the field

class TimeField(VectorField):
    """v(z, s, y, t) = sum_j delta_j (W_j a(z, y, t) + b_j); time enters the first layer."""

    def __init__(self, dim, num_attributes, hidden_dim=256, num_layers=2, attribute_embed_dim=32,
                 init_scale=0.01, time_features=8, use_time=True):
        super().__init__(dim, num_attributes, hidden_dim, num_layers, attribute_embed_dim,
                         init_scale)
        self.use_time = use_time
        self.time_features = time_features
        if use_time:
            self.input_t = nn.Linear(2 * time_features + 1, hidden_dim, bias=False)
            self.register_buffer("freqs", math.pi * torch.arange(1, time_features + 1).float())

    def _time(self, t: torch.Tensor, dtype) -> torch.Tensor:
        t = t.reshape(-1, 1).to(dtype)
        ang = t * self.freqs.to(dtype)
        return torch.cat([t, torch.sin(ang), torch.cos(ang)], -1)

    def forward_cached(self, z, condition, t=None):
        e = F.silu(self.attribute_embed(condition.target.to(z.dtype)))
        h = self.input_z(z) + self.input_y(e)
        if self.use_time:
            if t is None:
                raise ValueError("a time-conditioned field needs t")
            t = torch.as_tensor(t, dtype=z.dtype).expand(len(z)) if torch.as_tensor(t).ndim == 0 else t
            h = h + self.input_t(self._time(t, z.dtype))
        pres = [h]
        a = F.silu(h)
        for layer in self.hidden:
            h = layer(a)
            pres.append(h)
            a = F.silu(h)
        v = self._heads(a, condition, bias=True)
        return v, ForwardCache(pres, [_silu_grad(p) for p in pres], condition)

    def forward(self, z, condition, t=None):
        return self.forward_cached(z, condition, t)[0]


def integrate_t(field: TimeField, z, condition, num_steps=10, integrator="euler"):
    """Flow z over t in [0, 1] in num_steps steps; rows with delta = 0 are not touched."""
    active = condition.active
    out = z.clone()
    idx = active.nonzero().squeeze(1)
    if len(idx) == 0:
        return out
    x = z[idx]
    cond = condition.select(idx)
    h = 1.0 / num_steps

    def f(x, t):
        tt = torch.full((len(x),), float(t), dtype=x.dtype)
        return project_tangent(x, field(x, cond, tt))

    def move(x, dx):
        return retract(x + dx)

    for i in range(num_steps):
        t = i * h
        if integrator == "euler":
            x = move(x, h * f(x, t))
        elif integrator == "midpoint":
            x = move(x, h * f(move(x, 0.5 * h * f(x, t)), t + 0.5 * h))
        elif integrator == "rk4":
            k1 = f(x, t)
            k2 = f(move(x, 0.5 * h * k1), t + 0.5 * h)
            k3 = f(move(x, 0.5 * h * k2), t + 0.5 * h)
            k4 = f(move(x, h * k3), t + h)
            x = move(x, h / 6 * (k1 + 2 * k2 + 2 * k3 + k4))
        else:
            raise ValueError(integrator)
    return out.index_copy(0, idx, x)


# ----------------------------------------------------------------------------- couplings

def sinkhorn_blocks(log_k, a_mask, b_mask, rho=1.0, tol=1e-3, max_iter=2000, check_every=10):
    """Entropic OT per block, in log space. log_k (G, n, m) = -cost (-inf across padding),
    a_mask (G, n), b_mask (G, m) bool. Uniform marginals per block (1/n_g rows, 1/m_g cols).
    rho = 1 balanced; rho < 1 softens the column marginal (unbalanced KL, rho = tau/(tau+1));
    rho = 0: rows are a softmin (semi-relaxed). Stops when the max relative row-marginal
    error (balanced: columns are exact after the g update) is below tol. Returns (plan (G, n, m)
    row-normalised to 1, iterations)."""
    n_g = a_mask.sum(1, keepdim=True).clamp_min(1).double()
    m_g = b_mask.sum(1, keepdim=True).clamp_min(1).double()
    log_a = torch.where(a_mask, -torch.log(n_g), torch.zeros((), dtype=torch.float64))
    log_b = torch.where(b_mask, -torch.log(m_g), torch.zeros((), dtype=torch.float64))
    # padding: rows/cols outside the block see -inf; give padded rows a dummy 0 to stay finite
    pad = ~(a_mask[:, :, None] & b_mask[:, None, :])
    pad_both = ~a_mask[:, :, None] & ~b_mask[:, None, :]
    log_k = torch.where(pad, torch.where(pad_both, 0.0, float("-inf")), log_k)
    # rows of a real source with padded cols: -inf; padded rows with real cols: -inf, with padded
    # cols: 0. A padded row must see at least one finite entry: every block has padded cols
    # only if m < mmax; ensure an extra always-padded column.
    G, n, m = log_k.shape
    extra = torch.where(a_mask, float("-inf"), 0.0).double()[:, :, None]
    log_k = torch.cat([log_k, extra], 2)
    b_ext = torch.cat([b_mask, torch.zeros(G, 1, dtype=torch.bool)], 1)
    log_b = torch.cat([log_b, torch.zeros(G, 1, dtype=torch.float64)], 1)
    f = torch.zeros(G, n, dtype=torch.float64)
    g = torch.zeros(G, m + 1, dtype=torch.float64)
    it = 0
    for it in range(1, max_iter + 1):
        f = log_a - torch.logsumexp(log_k + g[:, None, :], 2)
        if rho == 0:
            break
        g_new = log_b - torch.logsumexp(log_k + f[:, :, None], 1)
        g = torch.where(b_ext, rho * g_new, 0.0) if rho < 1 else torch.where(b_ext, g_new, 0.0)
        if it % check_every == 0:
            row = torch.logsumexp(log_k + g[:, None, :], 2) + f
            err = (row - log_a).abs().masked_fill(~a_mask, 0).max()
            if float(err) < tol:
                break
    plan = torch.exp(f[:, :, None] + log_k + g[:, None, :])[:, :, :m]
    plan = plan * a_mask[:, :, None] * b_mask[:, None, :]
    plan = plan / plan.sum(2, keepdim=True).clamp_min(1e-300)
    return plan, it


class Partners:
    """Identity-first partners for flow matching (see the module docstring)."""

    def __init__(self, z, labels, identities, same_identity=True, nearest_same=False,
                 pool=1, lam=10.0, rho=1.0, tol=1e-3, max_iter=2000):
        self.z = z
        self.bank = CodeBank(z, labels)
        self.codes = row_codes(labels.long())
        self.ids = identities
        self.same_identity = same_identity
        self.nearest_same = nearest_same
        self.pool, self.lam, self.rho, self.tol, self.max_iter = pool, lam, rho, tol, max_iter
        # CSR over (identity, code): rows sorted by key
        self.key = identities * 64 + self.codes
        self.order = torch.argsort(self.key, stable=True)
        self.sorted_key = self.key[self.order]
        self.stats = {"same": 0, "total": 0, "angle_sum": 0.0, "iters": 0, "calls": 0}

    def _same_identity(self, rows, target_codes, gen):
        q = self.ids[rows] * 64 + target_codes
        lo = torch.searchsorted(self.sorted_key, q)
        hi = torch.searchsorted(self.sorted_key, q, right=True)
        cnt = hi - lo
        has = cnt > 0
        choice = torch.full_like(rows, -1)
        if bool(has.any()):
            if self.nearest_same:
                # nearest among candidates (max over at most ~10 candidates)
                idx = has.nonzero().squeeze(1)
                width = int(cnt[idx].max())
                offs = torch.arange(width)
                cand_pos = (lo[idx, None] + offs).clamp_max(len(self.order) - 1)
                cand = self.order[cand_pos]
                valid = offs[None, :] < cnt[idx, None]
                cos = (self.z[cand] * self.z[rows[idx]][:, None, :]).sum(-1)
                cos = cos.masked_fill(~valid, -2)
                choice[idx] = cand[torch.arange(len(idx)), cos.argmax(1)]
            else:
                off = (torch.rand(len(rows), generator=gen) * cnt).long().clamp_max(
                    (cnt - 1).clamp_min(0))
                pick = self.order[(lo + off).clamp_max(len(self.order) - 1)]
                choice = torch.where(has, pick, choice)
        return choice

    def _ot(self, z, target_labels, gen):
        """(n,) train rows: C2OT over a pool of `pool` draws per source of its code."""
        groups = self.bank.groups(target_labels)
        uniq, inv, counts = torch.unique(groups, return_inverse=True, return_counts=True)
        G, nmax = len(uniq), int(counts.max())
        order = torch.argsort(inv, stable=True)
        slot = torch.arange(len(groups)) - (torch.cumsum(counts, 0) - counts).repeat_interleave(
            counts)
        rows = torch.full((G, nmax), -1, dtype=torch.long)
        rows[inv[order], slot] = order
        a_mask = rows >= 0
        m_counts = counts * self.pool
        mmax = int(m_counts.max())
        # pool draws: per group m_g uniform draws (with replacement) from the group's bank block
        offs = (torch.rand(G, mmax, generator=gen) * self.bank.counts[uniq][:, None]).long()
        offs = torch.minimum(offs, self.bank.counts[uniq][:, None] - 1)
        cols = self.bank.starts[uniq][:, None] + offs  # bank positions
        b_mask = torch.arange(mmax)[None, :] < m_counts[:, None]
        zs = z[rows.clamp_min(0)].double()  # (G, nmax, d)
        zt = self.bank.embeddings[cols].double()  # (G, mmax, d)
        cos = torch.einsum("gnd,gmd->gnm", zs, zt).clamp(-1, 1)
        log_k = -self.lam * torch.arccos(cos).pow(2)
        plan, it = sinkhorn_blocks(log_k, a_mask, b_mask, self.rho, self.tol, self.max_iter)
        self.stats["iters"] += it
        self.stats["calls"] += 1
        flat = plan[a_mask]  # (n, mmax) in order of rows[a_mask]
        pick = torch.multinomial(flat, 1, generator=gen)[:, 0]
        src = rows[a_mask]
        chosen_bank = cols[a_mask.nonzero()[:, 0], pick]
        out = torch.empty(len(groups), dtype=torch.long)
        out[src] = self.bank.source_rows[chosen_bank]
        return out

    @torch.no_grad()
    def __call__(self, rows, z, target_labels, gen):
        """(n,) train rows of the partners of train rows `rows` (embeddings z) -> targets."""
        tc = row_codes(target_labels.long())
        choice = (self._same_identity(rows, tc, gen) if self.same_identity
                  else torch.full_like(rows, -1))
        rest = (choice < 0).nonzero().squeeze(1)
        if len(rest):
            choice[rest] = self._ot(z[rest], target_labels[rest], gen)
        self.stats["same"] += int((choice >= 0).sum() - len(rest))
        self.stats["total"] += len(rows)
        self.stats["angle_sum"] += float(geodesic_angle(z, self.z[choice]).sum())
        return choice


# ----------------------------------------------------------------------------- training

@dataclass
class Config:
    use_time: bool = True
    same_identity: bool = True
    nearest_same: bool = False
    pool: int = 1
    lam: float = 10.0
    rho: float = 1.0
    tol: float = 1e-3
    epochs: int = 5
    batch_size: int = 512
    lr: float = 2e-3
    flip_prob: float = 0.5
    max_flips: int = 2
    lambda_curl: float = 1e-4
    lambda_div: float = 1e-4
    hidden_dim: int = 256
    num_layers: int = 2
    time_features: int = 8
    seed: int = 0
    sources: str = "labels"  # labels | reader
    t_dist: str = "uniform"  # uniform | ...
    mode: str = "ot"  # ot | analogy | kernel | analogy+kernel (see Targets)
    lam_k: float = 10.0
    kernel_pool: int = 4096
    scale: float = 1.0
    rank: int = 0  # > 0: LowRankTimeField heads of this rank
    weight_decay: float = 0.0
    grad_clip: float = 1.0


def train(cfg: Config, z, y, ids, reader=None, log=False):
    torch.manual_seed(cfg.seed)
    if cfg.rank > 0:
        field = LowRankTimeField(z.shape[1], y.shape[1], cfg.hidden_dim, cfg.num_layers,
                                 time_features=cfg.time_features, use_time=cfg.use_time,
                                 rank=cfg.rank)
    else:
        field = TimeField(z.shape[1], y.shape[1], cfg.hidden_dim, cfg.num_layers,
                          time_features=cfg.time_features, use_time=cfg.use_time)
    partners = Partners(z, y, ids, cfg.same_identity, cfg.nearest_same, cfg.pool, cfg.lam,
                        cfg.rho, cfg.tol)
    targets_fn = Targets(partners, cfg.mode, cfg.lam_k, cfg.kernel_pool, cfg.scale)
    src_all = y if cfg.sources == "labels" else reader(z)
    opt = torch.optim.Adam([p for p in field.parameters() if p.requires_grad], lr=cfg.lr,
                           weight_decay=cfg.weight_decay)
    n = len(z)
    steps = (n // cfg.batch_size + (1 if n % cfg.batch_size >= 2 else 0)) * cfg.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    seen, secs = 0, 0.0
    hist = []
    for epoch in range(cfg.epochs):
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        targets_all = sample_targets(y, cfg.flip_prob, cfg.max_flips, gen)
        batches = list(torch.randperm(n, generator=gen).split(cfg.batch_size))
        if len(batches[-1]) < 2:
            batches.pop()
        t0 = time.perf_counter()
        fm_sum = 0.0
        for idx in batches:
            tgt, src = targets_all[idx], src_all[idx]
            cond_all = Condition.from_source(tgt, src)
            move = cond_all.active.nonzero().squeeze(1)
            nb = len(idx)
            if len(move) == 0:
                continue
            rows = idx[move]
            zs = z[rows]
            x1 = targets_fn(rows, zs, tgt[move], src[move], gen)
            t = torch.rand(len(move), generator=gen)
            z_t = slerp(zs, x1, t)
            u = slerp_velocity(zs, x1, t)
            cond = cond_all.select(move)
            v, cache = field.forward_cached(z_t, cond, t)
            fv = project_tangent(z_t, v)
            fm = (fv - u).pow(2).sum(-1).sum() / nb
            loss = fm
            if cfg.lambda_curl or cfg.lambda_div:
                pen = estimate_penalties(field, cache, z_t, v, True, 1, gen, "corrected")
                loss = loss + (cfg.lambda_curl * pen.curl.sum() + cfg.lambda_div
                               * pen.divergence.sum()) / nb
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(field.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            fm_sum += float(fm.detach()) * nb
            seen += nb
        secs += time.perf_counter() - t0
        hist.append(fm_sum / n)
        if log:
            print(f"  epoch {epoch + 1} fm {fm_sum / n:.4f}", flush=True)
    st = partners.stats
    ts = targets_fn.stats
    info = {"analogy_share": ts["analogy"] / max(ts["total"], 1),
            "kernel_share": ts["kernel"] / max(ts["total"], 1),
            "target_angle": ts["disp"] / max(ts["total"], 1),"samples_per_s": seen / secs, "train_s": secs,
            "same_share": st["same"] / max(st["total"], 1),
            "partner_angle": st["angle_sum"] / max(st["total"], 1),
            "sinkhorn_iters": st["iters"] / max(st["calls"], 1), "fm": hist[-1]}
    field.eval()
    return field, info


def make_editor(field, num_steps=10, integrator="euler"):
    @torch.no_grad()
    def edit(z, s, t):
        cond = Condition.of(t.float(), t.float() - s.float())
        if field.use_time:
            return integrate_t(field, z, cond, num_steps, integrator)
        # autonomous: same integration, time ignored
        return integrate_t(field, z, cond, num_steps, integrator)
    return edit


# ----------------------------------------------------------------------------- v2 targets

class Targets:
    """What each moving source flows toward (a point on the sphere), by `mode`:

    - "ot": a real train point: Partners (same identity first, then C2OT).
    - "analogy": if the source's identity has another photo x0 with the source code s
      and a photo x1 with the target code t: retract(z + x1 - x0) (the person's own
      attribute change transplanted onto this photo; nuisance/ambiguity differences of
      x1 - x0 are independent of z, so the target is unbiased for the counterfactual);
      otherwise the Partners point.
    - "kernel": retract(z + m_t(z) - m_s(z)) with m_c(z) the exp(-lam_k theta^2)-weighted
      mean of the train points of code c in a random pool of `kernel_pool` bank rows,
      the source's own identity excluded from both (the two smoothing biases cancel to first
      order); rows whose codes are missing from the pool fall back to Partners.
    - "analogy+kernel": analogy where possible, else kernel, else Partners.
    `scale` multiplies the constructed displacement (1 = as built).
    """

    def __init__(self, partners: Partners, mode="ot", lam_k=10.0, kernel_pool=4096, scale=1.0):
        self.p = partners
        self.mode = mode
        self.lam_k = lam_k
        self.kernel_pool = kernel_pool
        self.scale = scale
        self.pos = torch.empty_like(partners.order)
        self.pos[partners.order] = torch.arange(len(partners.order))
        self.stats = {"analogy": 0, "kernel": 0, "partner": 0, "total": 0, "disp": 0.0}

    def _range(self, rows, codes):
        q = self.p.ids[rows] * 64 + codes
        lo = torch.searchsorted(self.p.sorted_key, q)
        hi = torch.searchsorted(self.p.sorted_key, q, right=True)
        return lo, hi - lo

    def _analogy(self, rows, src_codes, tgt_codes, gen):
        """(x0 rows, x1 rows) with -1 where not available."""
        lo_s, c_s = self._range(rows, src_codes)
        lo_t, c_t = self._range(rows, tgt_codes)
        # x0: another photo with code s (the source row itself is in the range when its labels
        # are the code s)
        own_in = (self.pos[rows] >= lo_s) & (self.pos[rows] < lo_s + c_s)
        n_other = c_s - own_in.long()
        ok = (n_other > 0) & (c_t > 0)
        off = (torch.rand(len(rows), generator=gen) * n_other.clamp_min(1)).long()
        off = torch.minimum(off, (n_other - 1).clamp_min(0))
        p0 = lo_s + off
        p0 = p0 + (own_in & (p0 >= self.pos[rows])).long()
        off1 = (torch.rand(len(rows), generator=gen) * c_t.clamp_min(1)).long()
        off1 = torch.minimum(off1, (c_t - 1).clamp_min(0))
        p1 = lo_t + off1
        n = len(self.p.order) - 1
        x0 = torch.where(ok, self.p.order[p0.clamp(0, n)], -1)
        x1 = torch.where(ok, self.p.order[p1.clamp(0, n)], -1)
        return x0, x1

    def _kernel(self, rows, z, src_codes, tgt_codes, gen):
        """(n, d) displacement m_t - m_s and (n,) bool ok."""
        N = len(self.p.z)
        pool = torch.randint(N, (self.kernel_pool,), generator=gen)
        zp = self.p.z[pool]
        cp = self.p.codes[pool]
        same_id = self.p.ids[rows][:, None] == self.p.ids[pool][None, :]
        cos = (z @ zp.T).clamp(-1, 1)
        logw = -self.lam_k * torch.arccos(cos).pow(2)
        logw = logw.masked_fill(same_id, float("-inf"))
        lt = logw.masked_fill(cp[None, :] != tgt_codes[:, None], float("-inf"))
        ls = logw.masked_fill(cp[None, :] != src_codes[:, None], float("-inf"))
        ok = torch.isfinite(lt.max(1).values) & torch.isfinite(ls.max(1).values)
        wt = torch.softmax(lt, 1).nan_to_num(0.0)
        ws = torch.softmax(ls, 1).nan_to_num(0.0)
        return (wt - ws) @ zp, ok

    @torch.no_grad()
    def __call__(self, rows, z, target_labels, source_labels, gen):
        n = len(rows)
        tc = row_codes(target_labels.long())
        sc = row_codes(source_labels.long())
        x = torch.empty_like(z)
        done = torch.zeros(n, dtype=torch.bool)
        disp = torch.zeros_like(z)
        if self.mode in ("analogy", "analogy+kernel"):
            x0, x1 = self._analogy(rows, sc, tc, gen)
            ok = x0 >= 0
            disp[ok] = self.p.z[x1[ok]] - self.p.z[x0[ok]]
            done |= ok
            self.stats["analogy"] += int(ok.sum())
        if self.mode in ("kernel", "analogy+kernel"):
            rest = (~done).nonzero().squeeze(1)
            if len(rest):
                d, ok = self._kernel(rows[rest], z[rest], sc[rest], tc[rest], gen)
                disp[rest[ok]] = d[ok]
                done[rest[ok]] = True
                self.stats["kernel"] += int(ok.sum())
        x[done] = retract(z[done] + self.scale * disp[done])
        rest = (~done).nonzero().squeeze(1)
        if len(rest):
            pr = self.p(rows[rest], z[rest], target_labels[rest], gen)
            x[rest] = self.p.z[pr]
            self.stats["partner"] += len(rest)
        self.stats["total"] += n
        self.stats["disp"] += float(geodesic_angle(z, x).sum())
        return x


class LowRankTimeField(TimeField):
    """TimeField whose heads are low rank: h_j = A_j (B_j a + c_j), A_j (d, r), B_j (r, H).

    Each attribute can then only move a point inside its own learned r-dim subspace: the
    true change of attribute j spans ~30 directions (u_j, the 20 group directions w_{g,j},
    the pair directions v_{j,i}, v_{i,j}), while the flow-matching noise and the identity
    pull of other-person partners spread over the ~256 identity dims. The effective
    (k, d, H) head weight is formed once per call, so the forward/JVP/VJP code is
    unchanged (and delta = 0 still gives v = 0)."""

    def __init__(self, *args, rank=32, **kw):
        super().__init__(*args, **kw)
        k, d, H = self.num_attributes, self.dim, self.output.in_features
        self.rank = rank
        self.A = nn.Parameter(torch.randn(k, d, rank) / math.sqrt(d))
        self.B = nn.Parameter(torch.randn(k, rank, H) * kw.get("init_scale", 0.01) * math.sqrt(d / rank))
        self.c = nn.Parameter(torch.zeros(k, rank))
        self.output.weight.requires_grad_(False)
        self.output.bias.requires_grad_(False)

    def _head_weights(self):
        return self.A @ self.B, (self.A @ self.c[..., None])[..., 0]
