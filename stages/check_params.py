"""DVC stage `check-params`: validate the whole params file before any other stage runs.

DVC deletes a stage's outputs just before it runs the stage. Every other stage depends
on this stage's output, so a bad params file (a typo in data.attributes, epochs: -1, a
world that does not fit its dimension) stops `dvc repro` / `dvc exp run` here, with the
key and line named, before the embeddings, models or metrics are removed.

The output (checks/params.txt) has the same content for every valid params file, so a
params change re-runs only this check and the stages whose own params changed.
"""

from pathlib import Path

import typer

from fclf.atomic import write_text
from fclf.config import load_config, read_yaml_with_lines
from fclf.data.synthetic import required_dim
from fclf.errors import ConfigError, exit_on_user_error
from layout import PARAMS_CHECKED

PASSED = ("The params file passed `python stages/check_params.py`: every key, range and\n"
          "cross-field rule of fclf.config, and the synthetic world fits its dimension.\n"
          "Every other stage depends on this file (see stages/check_params.py).\n")

app = typer.Typer(add_completion=False, help=__doc__)


@app.command(help=__doc__)
@exit_on_user_error
def main(
    params: Path = typer.Option(Path("params.yaml"), help="params file to validate"),
) -> None:
    config = load_config(params)
    check_world_fits(config, params)
    write_text(PARAMS_CHECKED, PASSED)
    print(f"check-params: {params} is valid")


def check_world_fits(config, params: Path) -> None:
    """data.source synthetic: the world's directions fit data.synthetic.dim."""
    data, syn = config.data, config.data.synthetic
    if data.source != "synthetic":
        return
    need = required_dim(len(data.attributes), syn.attribute_context, syn.identity_groups,
                        syn.nuisance_rank)
    if syn.dim < need:
        line = read_yaml_with_lines(params)[1].get("data.synthetic.dim")
        where = f"{params}:{line}" if line else str(params)
        raise ConfigError(
            f"{where}: data.synthetic.dim = {syn.dim} is too small for this world; it needs"
            f" >= {need} for {len(data.attributes)} attributes with attribute_context ="
            f" {syn.attribute_context}, identity_groups = {syn.identity_groups} and"
            f" nuisance_rank = {syn.nuisance_rank} (lower those, or set attribute_context: 0)"
        )


if __name__ == "__main__":
    app()
