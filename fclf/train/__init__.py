"""Training wing: objectives, random attribute flips, the loop and its checkpoints.

Owns the objective families (`objectives/`: contrastive, flow_matching), the
bank of real train embeddings grouped by attribute code, the fit of the
field's source reader, the flip sampler, the optimisation loop (exact resume),
atomic checkpoints and the run fingerprint that ties a checkpoint to its
params. May import `fclf.model`, `fclf.data`, the top-level helpers and scipy
(the OT assignment); never `fclf.evaluate` or `fclf.cli`.
"""
