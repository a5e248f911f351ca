"""Figures and DVC plot data of the evaluation (test split), one idea per module.

- style: the Agg backend, method names/colours, atomic PNG saving
- sampling: seeded row subsamples (what is drawn)
- combos: readable names of attribute combinations and flips, category colours
- pca: the 2-D PCA plane of the real embeddings
- view: percentile-based axis limits; points outside drawn on the border
- inputs: the evaluation's metrics, edits and curves, checked; dvclive training logs
- banner: per-method collapse summaries and the red banner (collapsed methods' panels only)
- scatter: real points and each method's edits in the PCA plane
- trajectories: straight source -> edit segments per method (no path is recorded)
- bars: per-attribute flip success / preservation, both judges, every method
- tradeoff: trade-off curves over edit strength (metrics/curves_<split>.csv)
- curves: training loss components per epoch
- plot_data: the CSV tables `dvc plots` reads
- sweep_pareto: a sweep's runs, flip vs preservation (`fclf sweep report`)
- dvc_templates/: Vega-Lite templates that colour or split DVC plots by method (or, for
  sweeps, by group: val front / other / collapsed)

Nothing here knows where the pipeline keeps its files: callers pass paths and arrays.
Plotting wing: may import the top-level helpers only.
"""
