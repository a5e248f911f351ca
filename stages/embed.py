"""DVC stage `embed`: write data/embeddings/{train,val,test}.parquet.

data.source = synthetic: generate the built-in CelebA-like CLIP embeddings.
data.source = celeba:    encode a local CelebA release with a local CLIP model.
"""

from pathlib import Path

import typer

from fclf.config import load_config
from fclf.data.embeddings_io import write_split
from fclf.data.synthetic import generate
from fclf.errors import exit_on_user_error
from layout import EMBED_CACHE_DIR, SPLITS, split_path

app = typer.Typer(add_completion=False, help=__doc__)


@app.command(help=__doc__)
@exit_on_user_error
def main(
    params: Path = typer.Option(Path("params.yaml"), help="validated params file"),
) -> None:
    config = load_config(params)
    data = config.data
    if data.source == "synthetic":
        syn = data.synthetic
        splits = generate(
            data.attributes,
            {"train": syn.train_identities, "val": syn.val_identities,
             "test": syn.test_identities},
            images_per_identity=syn.images_per_identity, dim=syn.dim,
            cone_cosine=syn.cone_cosine, same_identity_cosine=syn.same_identity_cosine,
            attribute_strength=syn.attribute_strength, seed=data.seed,
        )
        for split in SPLITS:
            write_split(split_path(split), splits[split])
            print(f"embed: wrote {split_path(split)} ({len(splits[split])} rows, synthetic)")
    else:
        from fclf.data.celeba_embed import embed_celeba

        embed_celeba(
            celeba_root=Path(data.celeba_root), attributes=data.attributes,
            embed=config.embed, out_paths={s: split_path(s) for s in SPLITS},
            work_dir=EMBED_CACHE_DIR,
        )


if __name__ == "__main__":
    app()
