"""Training wing: objectives, random attribute flips, the loop and its checkpoints.

Owns the objectives, the flip sampler, the optimisation loop (exact resume),
atomic checkpoints and the run fingerprint that ties a checkpoint to its
params. May import `fclf.model`, `fclf.data` and the top-level helpers; never
`fclf.evaluate` or `fclf.cli`.
"""
