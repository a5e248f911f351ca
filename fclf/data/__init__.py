"""Data wing: where embeddings come from and how they are stored.

Owns the synthetic CelebA-like world (and its ground truth), the CelebA text
reader, CLIP preprocessing and the local-only encoder, and the Parquet
embeddings format. May import only the top-level helpers (`fclf.config`,
`fclf.errors`, `fclf.atomic`, `fclf.devices`, `fclf.attributes`).
"""
