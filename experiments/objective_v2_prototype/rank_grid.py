"""Choose the projector's ranks on val (post hoc on the C_auto_same fields, seed 0)."""
import json, sys, torch
torch.set_num_threads(1)
from common import *
from proto import *
from subspace import fit_projector, project_edit
z, y, ids = train_tensors(); reader = logistic_reader()
P = Protocol("val")
f = TimeField(512, 5, use_time=False); f.load_state_dict(torch.load("fields/C_auto_same_s0_val.pt")); f.eval()
base = make_editor(f)
for rg, rn in [(0,0),(8,0),(19,0),(32,0),(0,8),(0,16),(0,32),(19,16),(8,8),(32,32),(19,8),(19,32),(64,16)]:
    Q = fit_projector(z.numpy(), y.numpy(), ids.numpy(), rg, rn) if rg + rn else None
    ed = base if Q is None else (lambda zz, s, t, Q=Q: project_edit(zz, base(zz, s, t), Q, ((t - s) != 0).any(1)))
    r = P.score(ed, reader)
    print(json.dumps({"rg": rg, "rn": rn, **{k: round(v, 4) for k, v in r.items() if isinstance(v, float)}}), flush=True)
