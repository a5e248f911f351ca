"""DVC stage `fit-judge`: fit the yardstick's readers on the judge split, once.

The judge (a class-balanced linear probe and a small MLP) reads the attributes
of edits; the typicality Gaussian (Ledoit-Wolf) scores how far edits leave the
data (`off_manifold`). Both are fitted on the judge split only, people no
editor, peer or selection ever sees, and written to models/judge.pt, which the
train-baselines and evaluate-transfer stages and `fclf score` read instead of
refitting.

It also fits the read-out probes (one logistic regression per attribute on train,
C = 1) that `fclf transfer` shows along a path, into models/probes.pt, so one edit
takes milliseconds instead of a probe fit.
"""

from pathlib import Path

import typer

from fclf.config import load_config
from fclf.data.embeddings_io import read_split
from fclf.errors import exit_on_user_error
from fclf.evaluate.probes import AttributeProbes
from fclf.evaluate.probes_io import READOUT_C, save_probes, split_fingerprint
from fclf.evaluate.protocol import ProtocolSettings, Yardstick
from fclf.evaluate.yardstick_io import save_yardstick
from layout import JUDGE_PATH, JUDGE_SPLIT, PROBES_PATH, split_path

app = typer.Typer(add_completion=False, help=__doc__)


@app.command(help=__doc__)
@exit_on_user_error
def main(params: Path = typer.Option(Path("params.yaml"), help="validated params file")) -> None:
    config = load_config(params)
    names = config.data.attributes
    judge_split = read_split(split_path(JUDGE_SPLIT), names)
    train = read_split(split_path("train"), names)
    settings = ProtocolSettings(seed=config.eval.seed, judge_c=config.eval.judge_c)
    save_yardstick(JUDGE_PATH, Yardstick.fit(judge_split, train, settings))
    print(f"fit-judge: wrote {JUDGE_PATH} (fitted on {len(judge_split)} judge-split rows)")
    probes = AttributeProbes.from_split(train, c=READOUT_C)
    save_probes(PROBES_PATH, probes, split_fingerprint(train))
    print(f"fit-judge: wrote {PROBES_PATH} (read-out probes for `fclf transfer`, "
          f"fitted on {len(train)} train rows)")


if __name__ == "__main__":
    app()
