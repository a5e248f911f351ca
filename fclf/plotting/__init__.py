"""Figures and DVC plot data of the evaluation, one idea per module.

- style: the Agg backend, method names/colours, atomic PNG saving
- sampling: seeded row subsamples (what is drawn)
- combos: readable names of attribute combinations and flips, category colours
- pca: the 2-D PCA plane of the real embeddings
- inputs: the evaluation's artifacts and metrics, checked; dvclive training logs
- banner: the collapse summary and the red COLLAPSED banner
- scatter: real points and FCLF edits in the PCA plane
- trajectories: FCLF trajectories in the PCA plane
- bars: per-attribute flip success / preservation, FCLF vs baselines
- curves: training loss components per epoch
- plot_data: the CSV tables `dvc plots` reads

Nothing here knows where the pipeline keeps its files: callers pass paths and arrays.
Plotting wing: may import the top-level helpers only.
"""
