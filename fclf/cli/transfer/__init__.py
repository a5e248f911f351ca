"""`fclf transfer`: one face's attributes edited by the flow, read by the probes and shown
as its nearest real faces (decoder-free).

- `command`: `transfer_from_files` and `TransferReport`, the orchestration (reads the files).
- `inputs`: what goes in: arguments, embeddings, CLIP embedding of a new image, CelebA
  folder, the source's attributes and the target.
- `edit`: the flow toward the target, read at every step (`run_transfer`, `TransferPath`).
- `nearest`: the real faces searched for the nearest one (`Gallery`).
- `output`: the JSON and the table (`path_to_json`, `format_table`).
- `figure`: the PNG of `--out` (face strip, or probe read-outs for synthetic embeddings).

Nothing is re-exported here: import from the modules.
"""
