#!/bin/bash
# One shard of an `fclf sweep` on a cluster node: clone the project, check out the sweep's
# commit, install fclf (or use an existing environment) and run `fclf sweep work` for this
# shard, pushing every finished experiment to the git remote (refs) and the DVC remote
# (outputs). The same file is a Slurm array job (one array task per shard) and the command
# of the Kubernetes indexed Job in k8s-job.yaml.
#
#   sbatch --array=1-16 --export=ALL,FCLF_REPO=git@git.example.org:lab/fclf.git,\
#FCLF_COMMIT=0123abc,FCLF_SWEEP=sweeps/identity.yaml sweeps/cluster/fclf-sweep-worker.sh
#
# The #SBATCH lines are defaults; options given to sbatch override them. Array indices
# must be 1..N (shard I of N is array task I): to re-run some shards alone, submit just
# those indices with FCLF_SHARDS=N. A requeued or pre-empted task starts again in the same
# clone and skips what it already pushed.
#
#SBATCH --job-name=fclf-sweep
#SBATCH --array=1-16
#SBATCH --cpus-per-task=4
#SBATCH --time=08:00:00
#SBATCH --requeue
#SBATCH --open-mode=append
#SBATCH --output=fclf-sweep-%A_%a.out
#
# Settings, from the environment (sbatch passes the submitting shell's environment):
#   FCLF_REPO        git URL every node can clone from and push to             (required)
#   FCLF_COMMIT      commit holding the sweep file and the DVC remote's config  (required)
#   FCLF_SWEEP       the sweep file in the repository, e.g. sweeps/identity.yaml (required)
#   FCLF_SHARD       I/N; default SLURM_ARRAY_TASK_ID/N under Slurm and
#                    (JOB_COMPLETION_INDEX + 1)/N under Kubernetes, N = FCLF_SHARDS
#   FCLF_SHARDS      N; default SLURM_ARRAY_TASK_COUNT (required under Kubernetes)
#   FCLF_DVC_REMOTE  DVC remote for the outputs (default: the repository's default remote)
#   FCLF_JOBS        local DVC queue workers (default SLURM_CPUS_PER_TASK, else 1)
#   FCLF_WORKDIR     where the clones go (default $SCRATCH, else $TMPDIR, else /tmp)
#   FCLF_VENV        a virtualenv with fclf installed (default: `make install` in the clone)
#   FCLF_POLL        seconds between checks for finished experiments (default 5)
set -euo pipefail
export DVC_NO_ANALYTICS=1 DVC_STUDIO_OFFLINE=1

die() { echo "fclf-sweep-worker: $*" >&2; exit 2; }

for name in FCLF_REPO FCLF_COMMIT FCLF_SWEEP; do
    [ -n "${!name:-}" ] || die "set $name (see the top of this script)"
done
shards="${FCLF_SHARDS:-${SLURM_ARRAY_TASK_COUNT:-}}"
if [ -n "${FCLF_SHARD:-}" ]; then
    shard="$FCLF_SHARD"
elif [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
    shard="$SLURM_ARRAY_TASK_ID/$shards"
elif [ -n "${JOB_COMPLETION_INDEX:-}" ]; then
    [ -n "$shards" ] || die "set FCLF_SHARDS to the Job's completions"
    shard="$((JOB_COMPLETION_INDEX + 1))/$shards"
else
    die "set FCLF_SHARD=I/N (or run as a Slurm array task or a Kubernetes indexed Job)"
fi
jobs="${FCLF_JOBS:-${SLURM_CPUS_PER_TASK:-1}}"
workdir="${FCLF_WORKDIR:-${SCRATCH:-${TMPDIR:-/tmp}}}"
sweep_name="$(basename "$FCLF_SWEEP" .yaml)"
clone="$workdir/fclf-$sweep_name-${SLURM_ARRAY_JOB_ID:-0}-shard${shard%/*}of${shard#*/}"

echo "fclf-sweep-worker: shard $shard of $FCLF_SWEEP at $FCLF_COMMIT on $(hostname)," \
     "clone $clone, restart ${SLURM_RESTART_COUNT:-0}, $(date -u +%FT%TZ)"
mkdir -p "$workdir"
if ! git -C "$clone" rev-parse --git-dir >/dev/null 2>&1; then
    rm -rf "$clone"  # a clone a killed task left half-made
    git clone -q "$FCLF_REPO" "$clone"  # a full clone: DVC experiments need the history
fi
cd "$clone"
git cat-file -e "$FCLF_COMMIT^{commit}" 2>/dev/null || git fetch -q origin
git checkout -q --detach "$FCLF_COMMIT"
if [ -z "$(git config user.name || true)" ]; then  # `dvc exp` commits need an identity
    git config user.name "fclf-sweep"
    git config user.email "fclf-sweep@$(hostname)"
fi
if [ -n "${FCLF_VENV:-}" ]; then
    export PATH="$FCLF_VENV/bin:$PATH"
else
    make install && export PATH="$clone/.venv/bin:$PATH"
fi
args=(sweep work "$FCLF_SWEEP" --shard "$shard" --jobs "$jobs" --push origin
      --poll "${FCLF_POLL:-5}")
[ -z "${FCLF_DVC_REMOTE:-}" ] || args+=(--dvc-remote "$FCLF_DVC_REMOTE")
exec fclf "${args[@]}"  # fclf itself gets SIGTERM on requeue/pre-emption and exits 130
