"""python run.py NAME key=value ... : train one variant, score it on val (or split=test)."""
import json, sys, time, dataclasses
import torch
torch.set_num_threads(2)
from common import Protocol, train_tensors, logistic_reader, fmt
from proto import Config, train, make_editor

def parse(v):
    for f in (int, float):
        try: return f(v)
        except ValueError: pass
    return {"True": True, "False": False}.get(v, v)

name = sys.argv[1]
kw = dict(a.split("=", 1) for a in sys.argv[2:])
split = kw.pop("split", "val"); steps = int(kw.pop("steps", 10)); integ = kw.pop("integrator", "euler")
seeds = [int(s) for s in kw.pop("seeds", "0").split(",")]
cfg0 = Config(**{k: parse(v) for k, v in kw.items()})
z, y, ids = train_tensors()
reader = logistic_reader()
P = Protocol(split)
for seed in seeds:
    cfg = dataclasses.replace(cfg0, seed=seed)
    t0 = time.time()
    field, info = train(cfg, z, y, ids, reader)
    wall = time.time() - t0
    res = P.score(make_editor(field, steps, integ), reader, per_attribute=True)
    rec = {"name": name, "split": split, "seed": seed, "steps": steps, "integrator": integ,
           "cfg": dataclasses.asdict(cfg), **info, "wall_s": wall, **res}
    print(f"{name} s{seed} [{split}] {fmt(res)}  sps={info['samples_per_s']:.0f} wall={wall:.0f}s "
          f"same={info['same_share']:.3f} ang={info['partner_angle']:.3f} it={info['sinkhorn_iters']:.0f} "
          f"fm={info['fm']:.4f} perattr={ {k: round(v,3) for k,v in res['told_cre_per_attr'].items()} }", flush=True)
    with open("results.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    torch.save(field.state_dict(), f"fields/{name}_s{seed}_{split}.pt")
