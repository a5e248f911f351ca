"""`fclf thresholds`: where honest editors and cheats fall on val, for every thresholded measure.

The collapse and realism thresholds (`eval.collapse_*`, `eval.max_off_manifold`,
`eval.max_overshoot_rate`) are chosen on val, between what honest editors do
(the oracle where the truth exists, FCLF, every tuned peer, the reference) and
what the cheats of `fclf.evaluate.cheaters` do. This command reads the
workspace's models and data, edits val in told mode, and prints each editor's
value of each measure next to the current threshold, marking values on the
wrong side, so a user (on real CelebA, say) can check or re-choose them.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from fclf.config import Config
from fclf.data.embeddings_io import read_split
from fclf.evaluate import cheaters
from fclf.evaluate.configured import protocol_settings
from fclf.evaluate.editors import EditBatch, FlowEditor
from fclf.evaluate.peers.store import load_peers
from fclf.evaluate.protocol import build_context, split_request
from fclf.evaluate.scoring import score_method
from fclf.evaluate.yardstick_io import load_yardstick
from fclf.model.model_io import edit_function, load_model, reader_function, recorded_flow

# (measure, params key, "min" or "max")
LIMITS = (
    ("distinct_fraction", "collapse_min_distinct", "min"),
    ("neighbourhood_preservation", "collapse_min_neighbourhood", "min"),
    ("coverage", "collapse_min_coverage", "min"),
    ("density", "collapse_min_density", "min"),
    ("density", "collapse_max_density", "max"),
    ("silhouette_by_target", "collapse_max_silhouette", "max"),
    ("off_manifold", "max_off_manifold", "max"),
    ("overshoot_rate", "max_overshoot_rate", "max"),
)


@dataclasses.dataclass
class Row:
    name: str
    honest: bool
    values: dict


def threshold_rows(config: Config, embeddings: Path, model: Path, judge: Path, peers: Path,
                   split: str = "val") -> list[Row]:
    """Every honest editor's and every cheat's measures on `split` (told mode)."""
    names = config.data.attributes
    data = {s: read_split(embeddings / f"{s}.parquet", names) for s in ("train", split)}
    truth = None
    if (embeddings / "truth.npz").exists():
        from fclf.data.truth import read_truth

        world = read_truth(embeddings / "truth.npz", names)

        def truth(rows, targets):
            return world.counterfactual(split, rows, targets)

    field, model_config, record = load_model(model)
    horizon = recorded_flow(record)
    settings = protocol_settings(config, horizon)
    index, request = split_request(data[split], settings)
    ctx = build_context(split, data[split], load_yardstick(judge, names), index, request, truth,
                        settings)
    batch = EditBatch(ctx.sources, ctx.index, ctx.source_attributes, ctx.targets)
    flow = FlowEditor(lambda n: edit_function(field, model_config, n, horizon.step_size,
                                              integrator=horizon.integrator),
                      reader_function(field), horizon.num_steps)
    fclf = flow.end(batch)[0]
    honest = {"fclf": fclf}
    if ctx.counterfactuals is not None:
        honest = {"oracle": ctx.counterfactuals, **honest}
    peer_editors, reference, _ = load_peers(peers, data["train"])
    honest.update({name: peer.end(batch)[0] for name, peer in peer_editors.items()})
    if reference is not None:
        honest["reference"] = reference.end(batch)[0]
    train = data["train"]
    t_emb, t_att, targets, z = train.embeddings, train.attributes, ctx.targets, ctx.sources
    best = ctx.counterfactuals if ctx.counterfactuals is not None else fclf
    cheats = {
        "prototype pull 50 %": cheaters.prototype_pull(z, t_emb, t_att, targets, 0.5),
        "prototype pull 85 %": cheaters.prototype_pull(z, t_emb, t_att, targets, 0.85),
        "prototype pull 100 %": cheaters.prototype_pull(z, t_emb, t_att, targets, 1.0),
        "prototype + noise": cheaters.prototype_noise(t_emb, t_att, targets),
        "snap to 3 faces per code": cheaters.snap(t_emb, t_att, targets),
        "pure noise": cheaters.pure_noise(z),
        "fclf + noise 0.3": cheaters.with_noise(fclf, 0.3),
        ("truth" if truth else "fclf") + " walked 2x": cheaters.overshoot(z, best, 2.0),
        "probe walk to margin 10": cheaters.probe_walk(z, t_emb, t_att, names, ctx.request,
                                                       targets, 10.0),
    }
    rows = []
    for is_honest, group in ((True, honest), (False, cheats)):
        for name, edited in group.items():
            block, _, _ = score_method(ctx, edited, None, full=True)
            rows.append(Row(name, is_honest, {m: block.get(m) for m, _, _ in LIMITS}))
    return rows


def format_rows(rows: list[Row], config: Config) -> str:
    """A Markdown table: one row per editor, a star where a value breaks its threshold."""
    measures = list(dict.fromkeys(m for m, _, _ in LIMITS))
    header = "| editor | " + " | ".join(measures) + " |"
    limits = []
    for measure in measures:
        bounds = [f"{'>=' if kind == 'min' else '<='} {getattr(config.eval, key):g}"
                  for m, key, kind in LIMITS if m == measure]
        limits.append(", ".join(bounds))
    lines = [header, "|" + "---|" * (len(measures) + 1),
             "| *threshold* | " + " | ".join(limits) + " |"]
    for row in rows:
        cells = []
        for measure in measures:
            value = row.values.get(measure)
            broken = any(value is not None and (
                value < getattr(config.eval, key) if kind == "min"
                else value > getattr(config.eval, key))
                for m, key, kind in LIMITS if m == measure)
            cells.append("-" if value is None else f"{value:.3f}{' *' if broken else ''}")
        label = row.name if row.honest else f"cheat: {row.name}"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("* = on the wrong side of its threshold (an honest editor must have none; "
                 "every cheat at least one)")
    return "\n".join(lines)


def separation_problems(rows: list[Row], config: Config) -> list[str]:
    """Honest editors a threshold refuses, and cheats no threshold refuses."""
    def broken(row: Row) -> list[str]:
        out = []
        for measure, key, kind in LIMITS:
            value, limit = row.values.get(measure), getattr(config.eval, key)
            if value is not None and (value < limit if kind == "min" else value > limit):
                out.append(measure)
        return out

    problems = [f"honest {r.name} refused by {', '.join(broken(r))}" for r in rows
                if r.honest and broken(r)]
    problems += [f"cheat {r.name} passes every threshold" for r in rows
                 if not r.honest and not broken(r)]
    return problems

