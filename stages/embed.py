"""DVC stage `embed`: write data/embeddings/{train,val,test,judge}.parquet.

data.source = synthetic: generate the built-in CelebA-like CLIP embeddings, and
                         data/embeddings/truth.npz, the world's latent factors
                         (exact counterfactuals; fclf.data.truth).
data.source = celeba:    encode a local CelebA release with a local CLIP model;
                         the judge split is 10 % of the train people (no truth.npz).
The judge split is identity-disjoint from the others; only the evaluation's
judge is fitted on it.
"""

from pathlib import Path

import typer
from check_params import check_world_fits

from fclf.config import load_config
from fclf.data.embeddings_io import read_split, write_split
from fclf.data.judge_split import METADATA_KEY, carve_judge
from fclf.data.synthetic import generate_world
from fclf.data.truth import write_truth
from fclf.errors import ConfigError, DataError, exit_on_user_error
from layout import ALL_SPLITS, EMBED_CACHE_DIR, JUDGE_SPLIT, SPLITS, TRUTH_PATH, split_path

app = typer.Typer(add_completion=False, help=__doc__)


@app.command(help=__doc__)
@exit_on_user_error
def main(
    params: Path = typer.Option(Path("params.yaml"), help="validated params file"),
) -> None:
    config = load_config(params)
    data = config.data
    if data.source == "synthetic":
        _synthetic(config, params)
    else:
        from fclf.data.celeba_embed import embed_celeba

        TRUTH_PATH.unlink(missing_ok=True)  # never leave a synthetic truth beside CelebA
        embed_celeba(
            celeba_root=Path(data.celeba_root), attributes=data.attributes,
            embed=config.embed, out_paths={s: split_path(s) for s in SPLITS},
            work_dir=EMBED_CACHE_DIR,
        )
        _carve_celeba_judge(data.attributes)


def _synthetic(config, params: Path) -> None:
    data, syn = config.data, config.data.synthetic
    world = {
        "attribute_context": syn.attribute_context, "identity_groups": syn.identity_groups,
        "look_alike_cosine": syn.look_alike_cosine, "nuisance_rank": syn.nuisance_rank,
        "identity_rank": syn.identity_rank, "rates": dict(syn.rates),
    }
    check_world_fits(config, params)
    sizes = {"train": syn.train_identities, "val": syn.val_identities,
             "test": syn.test_identities, JUDGE_SPLIT: syn.judge_identities}
    try:
        splits, truth = generate_world(
            data.attributes, sizes, images_per_identity=syn.images_per_identity, dim=syn.dim,
            cone_cosine=syn.cone_cosine, same_identity_cosine=syn.same_identity_cosine,
            attribute_strength=syn.attribute_strength, seed=data.seed, **world,
        )
    except ValueError as exc:
        raise ConfigError(f"{params}: data.synthetic: {exc}") from None
    for split in ALL_SPLITS:
        write_split(split_path(split), splits[split])
        print(f"embed: wrote {split_path(split)} ({len(splits[split])} rows, synthetic)")
    if syn.withhold_truth:
        TRUTH_PATH.unlink(missing_ok=True)
        print(f"embed: {TRUTH_PATH} withheld (data.synthetic.withhold_truth): the evaluation "
              "uses the truth-free yardstick, as on real CelebA")
        return
    write_truth(TRUTH_PATH, truth)
    print(f"embed: wrote {TRUTH_PATH} (latent factors: exact counterfactuals)")


def _carve_celeba_judge(attributes: list[str]) -> None:
    """Move 10 % of the train people (seeded hash of the identity) to the judge split."""
    train_path = split_path("train")
    train = read_split(train_path, attribute_names=attributes)
    if METADATA_KEY in train.metadata:
        raise DataError(f"{train_path}: the judge split was already carved out of this file; "
                        "re-run the embed stage from the encoder's output")
    try:
        rest, judge = carve_judge(train)
    except DataError as exc:
        raise DataError(f"{train_path}: {exc}") from None
    write_split(split_path(JUDGE_SPLIT), judge)
    write_split(train_path, rest)
    print(f"embed: moved {len(judge)} rows ({len(set(judge.identities.tolist()))} people) of "
          f"{train_path} to {split_path(JUDGE_SPLIT)}; {len(rest)} train rows remain")


if __name__ == "__main__":
    app()
