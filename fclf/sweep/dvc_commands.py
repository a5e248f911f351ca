"""The git and DVC commands a sweep runs, each a subprocess whose failure is an FclfError.

Only DVC's documented commands are used (`exp run --queue`, `queue start|status|logs|kill|
remove|stop`, `exp list|push|pull`, `config --list`, `ls-url`): experiments are git refs moved
through a git remote, their outputs go to a DVC remote, and DVC's own task queue runs them.
Failure records (fclf.sweep.failures) are git blobs under their own refs, moved by git.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fclf.errors import FclfError
from fclf.sweep.failures import Failure, failure_ref, parse_failure, ref_prefix

REMOTE_TIMEOUT_S = 120
PULL_CHUNK = 100  # experiment names per `dvc exp pull` call (command-line length)
QUEUE_STATES = ("Queued", "Running", "Success", "Failed")


@dataclass
class Commands:
    """git and `dvc_path` (the dvc command) in one repository (`root`), without analytics
    or prompts. The command layer finds both (fclf.cli.dvc_locate)."""

    root: Path
    dvc_path: str

    @classmethod
    def at(cls, root: Path | None, dvc_path: str, cwd: Path, what: str) -> Commands:
        """In the DVC project `root` found above `cwd`; an error naming `what` to run in a
        clone when there is none, or it is not a git repository too."""
        if root is None or not (root / ".git").exists():
            raise FclfError(f"{cwd}: not inside a git + DVC repository (no .dvc/ and .git here "
                            f"or above); run `{what}` in a clone of the project")
        return cls(root, dvc_path)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_STUDIO_OFFLINE": "1",
                "GIT_TERMINAL_PROMPT": "0"}

    def run(self, args: Sequence[str], what: str, timeout: float | None = None,
            check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
        try:
            done = subprocess.run(list(args), cwd=self.root, env=self.env, capture_output=True,
                                  text=True, timeout=timeout, input=stdin)
        except subprocess.TimeoutExpired:
            raise FclfError(f"{what}: no answer after {timeout:.0f} s") from None
        if check and done.returncode != 0:
            raise FclfError(f"{what} failed: {last_lines(done.stderr or done.stdout)}")
        return done

    def dvc(self, *args: str, what: str | None = None, timeout: float | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
        return self.run([self.dvc_path, *args], what or f"dvc {' '.join(args[:2])}",
                        timeout, check)

    def git(self, *args: str, what: str | None = None, timeout: float | None = None,
            check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
        return self.run(["git", *args], what or f"git {args[0]}", timeout, check, stdin)

    # --- remotes ---------------------------------------------------------------------

    def head(self) -> str:
        return self.git("rev-parse", "HEAD", what="git rev-parse HEAD").stdout.strip()

    def check_git_remote(self, remote: str) -> None:
        """The git remote (name or URL) answers `git ls-remote`."""
        done = self.git("ls-remote", "--heads", remote, check=False, timeout=REMOTE_TIMEOUT_S,
                        what=f"git ls-remote {remote}")
        if done.returncode != 0:
            raise FclfError(f"git remote {remote!r} is unreachable: "
                            f"{last_lines(done.stderr or done.stdout)}")

    def _dvc_settings(self) -> dict[str, str]:
        listed = self.dvc("config", "--list", what="dvc config --list").stdout
        return dict(line.split("=", 1) for line in listed.splitlines() if "=" in line)

    def has_default_dvc_remote(self) -> bool:
        return "core.remote" in self._dvc_settings()

    def dvc_remote_url(self, name: str | None) -> tuple[str, str]:
        """(name, url) of the DVC remote `name`, or of the default one."""
        settings = self._dvc_settings()
        remotes = {key[len("remote."):-len(".url")]: url for key, url in settings.items()
                   if key.startswith("remote.") and key.endswith(".url")}
        if name is None:
            name = settings.get("core.remote")
            if name is None:
                raise FclfError("no default DVC remote: experiments' outputs need one every "
                                "machine can reach, e.g. `dvc remote add -d store "
                                "/shared/fclf-dvc-store` (committed), or pass --dvc-remote")
        if name not in remotes:
            known = ", ".join(remotes) or "none"
            raise FclfError(f"no DVC remote named {name!r} (configured: {known})")
        return name, remotes[name].strip()

    def check_dvc_remote(self, name: str | None) -> str:
        """The DVC remote's name, once it is known to answer: a local-folder remote must be a
        folder (an unmounted share is the usual cause of a missing one); any other URL (s3://,
        gs://, ssh://, ...) is listed with `dvc ls-url remote://NAME/` through DVC's own
        configuration (endpoint, credentials), so a wrong bucket, endpoint or missing
        credentials is one line here instead of an error at the first push."""
        name, url = self.dvc_remote_url(name)
        if "://" not in url:
            path = Path(url) if Path(url).is_absolute() else self.root / ".dvc" / url
            if not path.is_dir():
                raise FclfError(f"DVC remote {name!r} is unreachable: {url} is not a folder "
                                "on this machine (is the shared storage mounted?)")
            return name
        done = self.dvc("ls-url", f"remote://{name}/", check=False, timeout=REMOTE_TIMEOUT_S,
                        what=f"dvc ls-url remote://{name}/ ({url})")
        if done.returncode != 0:
            problem = remote_problem(dvc_error(done.stderr or done.stdout), name, url)
            if problem is not None:
                raise FclfError(f"DVC remote {name!r} ({url}) is unreachable: {problem}")
        return name

    # --- experiments -----------------------------------------------------------------

    def experiment_names(self, remote: str) -> set[str]:
        """Names of the experiments of HEAD's baseline on the git remote."""
        out = self.dvc("exp", "list", remote, "--names-only", what=f"dvc exp list {remote}",
                       timeout=REMOTE_TIMEOUT_S).stdout
        return {line.strip() for line in out.splitlines() if line.strip()}

    def finished_experiments(self, baseline: str) -> set[str]:
        """Names of the experiments of `baseline` in this clone: their git refs
        (refs/exps/<sha[:2]>/<sha[2:]>/<name>) appear when a run has succeeded. A git call:
        far cheaper than `dvc exp list`."""
        prefix = f"refs/exps/{baseline[:2]}/{baseline[2:]}/"
        out = self.git("for-each-ref", "--format=%(refname)", prefix,
                       what="git for-each-ref").stdout
        return {line[len(prefix):] for line in out.splitlines() if line.startswith(prefix)}

    def queue_experiment(self, name: str, set_args: Sequence[str]) -> None:
        self.dvc("exp", "run", "--queue", "-n", name, *set_args, what=f"queueing {name}")

    def push(self, remote: str, name: str, dvc_remote: str | None) -> None:
        extra = ["-r", dvc_remote] if dvc_remote else []
        self.dvc("--wait-for-lock", "exp", "push", remote, name, *extra,
                 what=f"dvc exp push {remote} {name}")

    def pull(self, remote: str, names: Iterable[str], dvc_remote: str | None,
             cache: bool) -> None:
        names = sorted(names)
        extra = (["-r", dvc_remote] if dvc_remote else []) + ([] if cache else ["--no-cache"])
        for start in range(0, len(names), PULL_CHUNK):
            chunk = names[start:start + PULL_CHUNK]
            self.dvc("--wait-for-lock", "exp", "pull", remote, *chunk, *extra,
                     what=f"dvc exp pull {remote} ({len(chunk)} experiments)")

    # --- failure records (fclf.sweep.failures) -----------------------------------------

    def record_failure(self, baseline: str, failure: Failure) -> None:
        """Keep the record in this clone (a blob under its ref), replacing an older one."""
        blob = self.git("hash-object", "-w", "--stdin", stdin=failure.to_json(),
                        what="git hash-object").stdout.strip()
        self.git("update-ref", failure_ref(baseline, failure.experiment), blob,
                 what="git update-ref")

    def push_failure(self, remote: str, baseline: str, name: str) -> None:
        ref = failure_ref(baseline, name)
        self.git("push", "-q", "--no-verify", remote, f"+{ref}:{ref}", timeout=REMOTE_TIMEOUT_S,
                 what=f"git push {remote} (failure record of {name})")

    def remote_failures(self, remote: str, baseline: str) -> set[str]:
        """Names of the points with a failure record on the git remote."""
        prefix = ref_prefix(baseline)
        out = self.git("ls-remote", remote, f"{prefix}*", timeout=REMOTE_TIMEOUT_S,
                       what=f"git ls-remote {remote}").stdout
        refs = (line.split("\t", 1)[-1] for line in out.splitlines())
        return {ref[len(prefix):] for ref in refs if ref.startswith(prefix)}

    def clear_failure(self, baseline: str, name: str, remote: str | None) -> None:
        """Delete the record of a point that has now succeeded, here and on `remote`."""
        ref = failure_ref(baseline, name)
        self.git("update-ref", "-d", ref, what="git update-ref -d")
        if remote is not None:
            self.git("push", "-q", "--no-verify", remote, f":{ref}", timeout=REMOTE_TIMEOUT_S,
                     what=f"git push {remote} (deleting the failure record of {name})")

    def fetch_failures(self, remote: str, baseline: str) -> None:
        """This clone's failure records of `baseline` := the remote's (stale ones pruned)."""
        prefix = ref_prefix(baseline)
        self.git("fetch", "-q", "--prune", "--no-tags", remote, f"+{prefix}*:{prefix}*",
                 timeout=REMOTE_TIMEOUT_S, what=f"git fetch {remote} (failure records)")

    def failures(self, baseline: str) -> dict[str, Failure]:
        """{experiment: its failure record} of `baseline` in this clone."""
        prefix = ref_prefix(baseline)
        out = self.git("for-each-ref", "--format=%(objectname) %(refname)", prefix,
                       what="git for-each-ref").stdout
        refs = [line.split(" ", 1) for line in out.splitlines() if line.strip()]
        if not refs:
            return {}
        batch = self.git("cat-file", "--batch", stdin="".join(f"{sha}\n" for sha, _ in refs),
                         what="git cat-file --batch").stdout
        found: dict[str, Failure] = {}
        for (_, ref), text in zip(refs, split_cat_file_batch(batch), strict=True):
            failure = parse_failure(text)
            if failure is not None and ref.startswith(prefix):
                found[ref[len(prefix):]] = failure
        return found

    # --- DVC's task queue ------------------------------------------------------------

    def queue_status(self) -> tuple[dict[str, str], int]:
        """({experiment name: Queued | Running | Success | Failed}, live queue workers)
        from `dvc queue status`."""
        out = self.dvc("queue", "status", what="dvc queue status").stdout
        return parse_queue_status(out), parse_worker_count(out)

    def start_workers(self, jobs: int) -> None:
        """`dvc queue start -j J`. Its output goes to a file, not a pipe: the daemonised
        workers inherit the command's stdout/stderr, and reading a pipe would wait for them
        to finish the whole queue."""
        with tempfile.TemporaryFile("w+") as out:
            done = subprocess.run([self.dvc_path, "queue", "start", "-j", str(jobs)],
                                  cwd=self.root, env=self.env, stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.STDOUT, text=True)
            if done.returncode != 0:
                out.seek(0)
                raise FclfError(f"dvc queue start failed: {last_lines(out.read())}")

    def stop_workers(self) -> None:
        """Stop this clone's queue workers and the experiments they run (best effort).
        The queued entries go first: a worker told to stop can still take the next one."""
        self.dvc("queue", "remove", "--queued", check=False, timeout=60)
        self.dvc("queue", "stop", "--kill", check=False, timeout=60)

    def stop_idle_workers(self, wait_seconds: float = 60.0) -> None:
        """`dvc queue stop` (no task is running) and wait until the workers are gone: DVC's
        workers idle for a while before they exit, and would look like another worker's."""
        self.dvc("queue", "stop", check=False, timeout=60)
        deadline = time.monotonic() + wait_seconds
        while self.queue_status()[1] and time.monotonic() < deadline:
            time.sleep(1.0)

    def queue_logs(self, name: str) -> str:
        done = self.dvc("queue", "logs", name, check=False, what=f"dvc queue logs {name}")
        return done.stdout + done.stderr

    def reset_queue(self) -> list[str]:
        """Empty this clone's queue, left over from an earlier (killed) worker: entries
        still marked running by dead workers are marked failed, then every entry goes.
        Finished experiments stay (they are git refs). Returns the names that were left."""
        status, _ = self.queue_status()
        if status:
            running = [name for name, state in status.items() if state == "Running"]
            if running:
                self.dvc("queue", "kill", "--force", *running, check=False)
            self.dvc("queue", "remove", "--all", what="dvc queue remove --all")
            self._remove_dead_workspaces()
        self.clean_messages()
        return sorted(status)

    def clean_messages(self) -> None:
        """`dvc exp clean`: drop control messages addressed to dead workers. Without it a
        new worker reads a stale shutdown (from an earlier `dvc queue stop`) and quits
        after its first experiment."""
        self.dvc("exp", "clean", what="dvc exp clean")

    def _remove_dead_workspaces(self) -> None:
        """Temporary workspaces of experiments whose worker died (DVC keeps them)."""
        folder = self.root / ".dvc" / "tmp" / "exps"
        for workspace in folder.glob("tmp*"):
            if workspace.is_dir():
                shutil.rmtree(workspace, ignore_errors=True)


_STATUS_ROW = re.compile(r"^(?P<task>[0-9a-f]{7,})\s+(?P<name>\S+)\s+.*\s(?P<state>"
                         + "|".join(QUEUE_STATES) + r")\s*$")


def parse_queue_status(text: str) -> dict[str, str]:
    """Rows of `dvc queue status` (Task, Name, Created, Status) as {name: status}."""
    states: dict[str, str] = {}
    for line in text.splitlines():
        match = _STATUS_ROW.match(line.strip())
        if match:
            states[match.group("name")] = match.group("state")
    return states


def parse_worker_count(text: str) -> int:
    """Active + idle workers of `dvc queue status`'s last line (0 when it is missing)."""
    match = re.search(r"Worker status:\s*(\d+) active,\s*(\d+) idle", text)
    return int(match.group(1)) + int(match.group(2)) if match else 0


def split_cat_file_batch(text: str) -> list[str]:
    """The contents of `git cat-file --batch` output ("<sha> <type> <size>\\n<content>\\n"
    per object), in order."""
    data = text.encode()
    contents: list[str] = []
    position = 0
    while position < len(data):
        end = data.index(b"\n", position)
        header = data[position:end].split()
        size = int(header[2]) if len(header) == 3 else 0  # "<sha> missing": no content
        contents.append(data[end + 1:end + 1 + size].decode(errors="replace"))
        position = end + 1 + size + (1 if size or len(header) == 3 else 0)
    return contents


def dvc_error(text: str) -> str:
    """DVC's error message without its decoration ("ERROR: ", "unexpected error - ", the
    support line)."""
    lines = [line.strip() for line in (text or "").splitlines()
             if line.strip() and not line.startswith("Having any troubles?")]
    message = " ".join(lines)
    for prefix in ("ERROR: ", "unexpected error - "):
        message = message.removeprefix(prefix)
    return message or "no output"


# (what botocore and s3fs say, what to tell the user); first match wins
_REMOTE_PROBLEMS = (
    (("NoSuchBucket", "bucket does not exist"), "bucket {bucket!r} does not exist"),
    (("Could not connect to the endpoint URL",),
     "{message} (is the endpoint right and the server up? `dvc remote modify {name} "
     "endpointurl URL`)"),
    (("Unable to locate credentials", "NoCredentialsError"),
     "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or "
     "`dvc remote modify --local {name} access_key_id ...` and secret_access_key"),
    (("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden"),
     "the credentials were refused: {message}"),
)


def remote_problem(message: str, name: str, url: str) -> str | None:
    """What is wrong with DVC remote `name` (`url`) given the error of `dvc ls-url
    remote://NAME/`, or None when the remote answered that it is merely empty (nothing
    pushed under its prefix yet: a path that does not exist, with no other cause)."""
    path = url.split("://", 1)[1].rstrip("/")
    if re.search(r"does not exist: " + re.escape(path) + r"/?$", message):
        return None
    bucket = path.split("/", 1)[0]
    for needles, text in _REMOTE_PROBLEMS:
        if any(needle in message for needle in needles):
            return text.format(bucket=bucket, message=message, name=name)
    return message


def last_lines(text: str, count: int = 3) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "no output"
