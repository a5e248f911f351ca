import json, torch, numpy as np
torch.set_num_threads(1)
from common import *
from proto import *
from subspace import fit_projector, project_edit
z, y, ids = train_tensors(); reader = logistic_reader()
Q = fit_projector(z.numpy(), y.numpy(), ids.numpy())
def wrap(base):
    def edit(zz, s, t):
        return project_edit(zz, base(zz, s, t), Q, ((t - s) != 0).any(1))
    return edit
for split in ("val", "test"):
    P = Protocol(split)
    print(split, "oracle", {k: round(v, 4) for k, v in P.oracle.items()}, flush=True)
    for seed in (0, 1, 2):
        f = TimeField(512, 5, use_time=False); f.load_state_dict(torch.load(f"fields/C_auto_same_s{seed}_{split}.pt")); f.eval()
        for tag, ed in (("plain", make_editor(f)), ("proj", wrap(make_editor(f)))):
            r = P.score(ed, reader, per_attribute=True)
            print(split, seed, tag, fmt(r), {k: round(v, 3) for k, v in r["told_cre_per_attr"].items()}, flush=True)
            with open("final_eval.jsonl", "a") as fh: fh.write(json.dumps({"split": split, "seed": seed, "tag": tag, **r}) + "\n")
