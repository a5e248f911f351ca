"""Where the pipeline keeps its files (relative to the repository root).

Only the stage scripts know this layout; `dvc.yaml` declares the same paths.
"""

from pathlib import Path

EMBEDDINGS_DIR = Path("data/embeddings")
EMBED_CACHE_DIR = Path("data/embed_cache")  # resumable encoder chunks; outside DVC outputs
SPLITS = ("train", "val", "test")
JUDGE_SPLIT = "judge"  # identity-disjoint; fits the evaluation's judge only
ALL_SPLITS = (*SPLITS, JUDGE_SPLIT)
TRUTH_PATH = EMBEDDINGS_DIR / "truth.npz"  # synthetic data only: fclf.data.truth
CHECKPOINT_DIR = Path("checkpoints")
MODEL_PATH = Path("models/fclf.pt")
TRAIN_METRICS = Path("metrics/train.json")
TRAIN_TIMING = Path("logs/train_timing.json")  # wall time and speed: a run log, not a metric
TRAIN_LIVE_DIR = Path("dvclive/train")
TRANSFER_METRICS = Path("metrics/transfer.json")  # every number (a plain out, in git)
HEADLINE_METRICS = Path("metrics/headline.json")  # ~ten of them: the DVC metric
EDITS_PATH = Path("eval/edits.npz")
EVAL_DIR = Path("eval")
PLOTS_DIR = Path("plots")
PLOT_DATA_DIR = Path("plots/data")


def split_path(split: str) -> Path:
    return EMBEDDINGS_DIR / f"{split}.parquet"


def protocol_path(split: str) -> Path:
    """What `fclf score` reads: the sources and targets the evaluate stage used."""
    return EVAL_DIR / f"protocol_{split}.npz"


def curves_path(split: str) -> Path:
    """Trade-off curves of one evaluated split (a DVC plot, committed to git)."""
    return Path("metrics") / f"curves_{split}.csv"


RUN_FINGERPRINT = CHECKPOINT_DIR / "run.json"  # = fclf.train.checkpoint.RUN_MARKER
