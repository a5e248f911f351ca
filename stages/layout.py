"""Where the pipeline keeps its files (relative to the repository root).

Only the stage scripts know this layout; `dvc.yaml` declares the same paths.
"""

from pathlib import Path

PARAMS_CHECKED = Path("checks/params.txt")  # the check-params stage's proof; every stage needs it
EMBEDDINGS_DIR = Path("data/embeddings")
EMBED_CACHE_DIR = Path("data/embed_cache")  # resumable encoder chunks; outside DVC outputs
SPLITS = ("train", "val", "test")
JUDGE_SPLIT = "judge"  # identity-disjoint; fits the evaluation's judge only
ALL_SPLITS = (*SPLITS, JUDGE_SPLIT)
TRUTH_PATH = EMBEDDINGS_DIR / "truth.npz"  # synthetic data only: fclf.data.truth
CHECKPOINT_DIR = Path("checkpoints")
MODEL_PATH = Path("models/fclf.pt")  # the model of train.seed (what `fclf transfer` uses)
REPLICATES_DIR = Path("models/replicates")  # the models of the other training seeds
PROBES_PATH = Path("models/probes.pt")  # the read-out probes `fclf transfer` reuses
JUDGE_PATH = Path("models/judge.pt")  # the judge and typicality Gaussian (judge split only)
PEERS_PATH = Path("models/peers.pt")  # the tuned peers and the supervised reference
PEERS_METRICS = Path("metrics/peers.json")  # what each peer's tuning chose on val
PEERS_TIMING = Path("logs/peers_timing.json")  # seconds per peer: a run log, not a metric
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


def protocol_path(split: str, mode: str = "told") -> Path:
    """What `fclf score` reads: the rows and requests the evaluate stage used, in one mode."""
    return EVAL_DIR / f"protocol_{split}_{mode}.npz"


def replicate_path(seed: int) -> Path:
    return REPLICATES_DIR / f"fclf_seed{seed}.pt"


def replicate_checkpoint(seed: int) -> Path:
    """Checkpoint of an extra training seed (the main seed keeps checkpoints/latest.pt)."""
    return CHECKPOINT_DIR / f"replicate_seed{seed}.pt"


def curves_path(split: str) -> Path:
    """Trade-off curves of one evaluated split (a DVC plot, committed to git)."""
    return Path("metrics") / f"curves_{split}.csv"


RUN_FINGERPRINT = CHECKPOINT_DIR / "run.json"  # = fclf.train.checkpoint.RUN_MARKER
