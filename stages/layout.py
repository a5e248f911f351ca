"""Where the pipeline keeps its files (relative to the repository root).

Only the stage scripts know this layout; `dvc.yaml` declares the same paths.
"""

from pathlib import Path

EMBEDDINGS_DIR = Path("data/embeddings")
EMBED_CACHE_DIR = Path("data/embed_cache")  # resumable encoder chunks; outside DVC outputs
SPLITS = ("train", "val", "test")
CHECKPOINT_DIR = Path("checkpoints")
MODEL_PATH = Path("models/fclf.pt")
TRAIN_METRICS = Path("metrics/train.json")
TRAIN_LIVE_DIR = Path("dvclive/train")
TRANSFER_METRICS = Path("metrics/transfer.json")
EDITS_PATH = Path("eval/edits.npz")
PLOTS_DIR = Path("plots")
PLOT_DATA_DIR = Path("plots/data")


def split_path(split: str) -> Path:
    return EMBEDDINGS_DIR / f"{split}.parquet"
RUN_FINGERPRINT = CHECKPOINT_DIR / "run.json"  # = fclf.train.checkpoint.RUN_MARKER
