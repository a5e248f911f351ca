"""DVC stage `clean-checkpoints`: wipe checkpoints/ when they belong to another run.

A run is defined by the model, flow horizon, loss, flip and optimisation params
(the epoch count included) and the training data, not by the device or gradient
checkpointing: change loss.lambda_identity or train.epochs and training starts
fresh; only an interrupted run of the same params resumes.
"""

from pathlib import Path

import typer

from fclf.atomic import write_json
from fclf.config import load_config
from fclf.data.embeddings_io import read_split
from fclf.errors import exit_on_user_error
from fclf.train.checkpoint import clean_stale
from fclf.train.run_definition import compute_fingerprint
from layout import CHECKPOINT_DIR, RUN_FINGERPRINT, split_path

app = typer.Typer(add_completion=False, help=__doc__)


@app.command(help=__doc__)
@exit_on_user_error
def main(params: Path = typer.Option(Path("params.yaml"), help="validated params file")) -> None:
    config = load_config(params)
    train = read_split(split_path("train"), config.data.attributes)
    fp, _ = compute_fingerprint(config, train.embeddings, train.attributes)
    action = clean_stale(CHECKPOINT_DIR, fp)
    print(f"clean-checkpoints: {CHECKPOINT_DIR}/ {action} (run fingerprint {fp[:12]})")
    write_json(RUN_FINGERPRINT, {"fingerprint": fp})


if __name__ == "__main__":
    app()
