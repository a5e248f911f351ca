"""A real single-node Slurm cluster for the `cluster` test tier, started and stopped by PID.

`LocalSlurm(folder)` installs Debian's `slurmctld slurmd slurm-client munge` when they are
missing (root + apt), writes a minimal single-node configuration into `folder`, and starts
its own munged (own key, own socket), slurmctld and slurmd there, no systemd. Clients find
the cluster through `SLURM_CONF` (`slurm.env`), so nothing under /etc changes and a system
Slurm, if any, is not touched. `stop()` cancels the jobs and stops exactly the daemons it
started: by the PIDs it recorded, after checking each one is still that daemon.

Measured facts this follows (Debian 12, Slurm 22.05): `cred_expire` below 5 falls back to
120 s and is read only at daemon start; a requeued task waits cred_expire + 1 s before it
may start again; `scontrol show job` answers for MinJobAge seconds after a job ends.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
COMMANDS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "slurmctld", "slurmd",
            "munged", "mungekey", "munge", "unmunge")
NODE = "localhost"
CRED_EXPIRE_S = 10  # a requeued task may start again after this + 1 s (below 5: ignored)
KILL_WAIT_S = 60  # SIGTERM to SIGKILL when a job ends early (requeue, cancel, time limit)


class SlurmUnavailable(RuntimeError):
    """Slurm cannot be installed or started here; the message says why."""


def _tail(text: str, lines: int = 3) -> str:
    kept = [line for line in (text or "").strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "no output"


def ensure_installed(timeout: float = 300.0) -> str:
    """Install the Slurm and munge packages with apt when a command is missing.
    Returns what was done; raises SlurmUnavailable naming the reason otherwise."""
    missing = [c for c in COMMANDS if _which(c) is None]
    if not missing:
        return "Slurm packages already installed"
    if os.geteuid() != 0:
        raise SlurmUnavailable(f"missing {', '.join(missing)} and not root: cannot apt-get "
                               f"install {' '.join(PACKAGES)}")
    if shutil.which("apt-get") is None:
        raise SlurmUnavailable(f"missing {', '.join(missing)} and no apt-get on this machine")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    started = time.monotonic()
    for args in (["apt-get", "update", "-qq"],
                 ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]):
        try:
            done = subprocess.run(args, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SlurmUnavailable(f"{' '.join(args[:2])} took over {timeout:.0f} s") from None
        if done.returncode != 0:
            raise SlurmUnavailable(f"{' '.join(args[:2])} failed: "
                                   f"{_tail(done.stderr or done.stdout)}")
    still = [c for c in COMMANDS if _which(c) is None]
    if still:
        raise SlurmUnavailable(f"installed {' '.join(PACKAGES)} but {', '.join(still)} is "
                               "still missing")
    return f"installed {' '.join(PACKAGES)} in {time.monotonic() - started:.0f} s"


def _which(command: str) -> str | None:
    return shutil.which(command, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _node_memory_mb() -> int:
    """~90 % of the memory `slurmd -C` reports (a node that claims more is drained)."""
    out = subprocess.run([_which("slurmd") or "slurmd", "-C"], capture_output=True,
                         text=True, check=True).stdout
    match = re.search(r"RealMemory=(\d+)", out)
    return max(1, int(int(match.group(1)) * 0.9)) if match else 1000


@dataclass
class Daemon:
    name: str  # what /proc/PID/comm says
    pid: int


@dataclass
class LocalSlurm:
    folder: Path
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)
    daemons: list[Daemon] = field(default_factory=list)
    munge_folder: Path | None = None  # outside `folder`: munged (user munge) must reach it

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """What a client (sbatch, squeue, scontrol) needs to reach this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    # --- start --------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        try:
            self._start_munge(timeout)
            self._write_conf()
            self._start("slurmctld", ["-f", str(self.conf)], "slurmctld.pid")
            self._wait(lambda: "UP" in self.scontrol("ping", check=False), timeout,
                       "slurmctld to answer `scontrol ping`", self.folder / "log/slurmctld.log")
            self._start("slurmd", ["-f", str(self.conf), "-N", NODE], "slurmd.pid")
            self._wait(lambda: self.node_state() == "idle", timeout,
                       f"node {NODE} to be idle", self.folder / "log/slurmd.log")
        except BaseException:
            self.stop()
            raise

    def _start_munge(self, timeout: float) -> None:
        # A folder of its own under the system's temp folder: pytest's are private (0700)
        # and munged runs as user munge; the socket's folder must be open to all.
        self.munge_folder = munge = Path(tempfile.mkdtemp(prefix="fclf-test-munge-"))
        keys = munge / "key"
        keys.mkdir(parents=True, exist_ok=True)
        for folder, mode in ((munge, 0o755), (keys, 0o700)):
            os.chmod(folder, mode)
            shutil.chown(folder, "munge", "munge")
        key = keys / "munge.key"
        if not key.exists():
            self._check([_which("mungekey"), "--create", f"--keyfile={key}"], "mungekey")
            shutil.chown(key, "munge", "munge")
            os.chmod(key, 0o600)
        args = [f"--socket={self.socket}", f"--key-file={key}", f"--pid-file={munge}/munged.pid",
                f"--log-file={munge}/munged.log", f"--seed-file={munge}/munged.seed"]
        self._check(["runuser", "-u", "munge", "--", _which("munged"), *args], "munged")
        self._record("munged", munge / "munged.pid", timeout)
        self._wait(self._munge_works, timeout, "munge -n | unmunge", munge / "munged.log")

    @property
    def socket(self) -> Path:
        assert self.munge_folder is not None, "munge is not started"
        return self.munge_folder / "munge.socket"

    def _munge_works(self) -> bool:
        token = subprocess.run([_which("munge"), "-n", f"--socket={self.socket}"],
                               capture_output=True)
        if token.returncode != 0:
            return False
        return subprocess.run([_which("unmunge"), f"--socket={self.socket}"],
                              input=token.stdout, capture_output=True).returncode == 0

    def _write_conf(self) -> None:
        for name in ("state", "spool", "log"):
            (self.folder / name).mkdir(exist_ok=True)
        f = self.folder
        self.conf.write_text("\n".join([
            "ClusterName=fclf-test",
            f"SlurmctldHost={NODE}",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.socket},cred_expire={CRED_EXPIRE_S}",
            "MpiDefault=none",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "ReturnToService=2",
            "SchedulerParameters=bf_interval=2,sched_interval=2",
            f"KillWait={KILL_WAIT_S}",
            "MinJobAge=600",
            f"StateSaveLocation={f}/state",
            f"SlurmdSpoolDir={f}/spool",
            f"SlurmctldPidFile={f}/slurmctld.pid",
            f"SlurmdPidFile={f}/slurmd.pid",
            f"SlurmctldLogFile={f}/log/slurmctld.log",
            f"SlurmdLogFile={f}/log/slurmd.log",
            f"NodeName={NODE} CPUs={self.cpus} RealMemory={_node_memory_mb()} State=UNKNOWN",
            f"PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
        ]) + "\n")

    def _start(self, name: str, args: list[str], pid_file: str) -> None:
        self._check([_which(name), *args], name)
        self._record(name, self.folder / pid_file, 10.0)

    def _check(self, args: list, what: str) -> None:
        done = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                              env={**os.environ, **self.env}, timeout=60)
        if done.returncode != 0:
            raise SlurmUnavailable(f"{what} failed: {_tail(done.stderr or done.stdout)}")

    def _record(self, name: str, pid_file: Path, timeout: float) -> None:
        """Remember the daemon's PID (from its pid file) once it is there and alive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                pid = 0
            if pid and _comm(pid) == name:
                self.daemons.append(Daemon(name, pid))
                return
            time.sleep(0.1)
        raise SlurmUnavailable(f"{name} did not start (no live PID in {pid_file})")

    def _wait(self, ready, timeout: float, what: str, log: Path) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if time.monotonic() > deadline:
                text = log.read_text() if log.exists() else ""
                raise SlurmUnavailable(f"timed out after {timeout:.0f} s waiting for {what}: "
                                       f"{_tail(text)}")
            time.sleep(0.2)

    # --- use ------------------------------------------------------------------------------

    def run(self, *args: str, check: bool = True, env: dict | None = None
            ) -> subprocess.CompletedProcess:
        done = subprocess.run(list(args), capture_output=True, text=True, timeout=60,
                              env={**os.environ, **(env or {}), **self.env})
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): "
                               f"{_tail(done.stderr or done.stdout)}")
        return done

    def scontrol(self, *args: str, check: bool = True) -> str:
        done = self.run("scontrol", *args, check=check)
        return done.stdout + done.stderr

    def node_state(self) -> str:
        return self.run("sinfo", "-h", "-n", NODE, "-o", "%T", check=False).stdout.strip()

    def sbatch(self, *args: str, env: dict | None = None) -> str:
        """Submit; returns the job id."""
        out = self.run("sbatch", "--parsable", *args, env=env).stdout.strip()
        return out.split(";")[0]

    def tasks(self, job: str) -> dict[str, dict[str, str]]:
        """`scontrol show job JOB` per array task: {"JOB_TASK": {key: value}} (JobState,
        Restarts, ExitCode, ...). Finished tasks stay listed for MinJobAge seconds."""
        text = self.scontrol("show", "job", "-o", job, check=False)
        tasks: dict[str, dict[str, str]] = {}
        for line in text.splitlines():
            fields = dict(re.findall(r"(\w+)=(\S*)", line))
            if "ArrayTaskId" in fields and "ArrayJobId" in fields:
                tasks[f"{fields['ArrayJobId']}_{fields['ArrayTaskId']}"] = fields
        return tasks

    # --- stop -----------------------------------------------------------------------------

    def stop(self) -> list[str]:
        """Cancel every job, then stop the daemons this object started, newest first, each
        by its recorded PID after checking /proc says it is still that daemon. Returns
        what it did, one line per daemon."""
        done: list[str] = []
        if any(d.name == "slurmctld" for d in self.daemons):
            self.run("scancel", "--full", "--user", "root", check=False)
        for daemon in reversed(self.daemons):
            if _comm(daemon.pid) != daemon.name:
                done.append(f"{daemon.name} (pid {daemon.pid}) had already exited")
                continue
            os.kill(daemon.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while _comm(daemon.pid) == daemon.name and time.monotonic() < deadline:
                time.sleep(0.1)
            if _comm(daemon.pid) == daemon.name:
                os.kill(daemon.pid, signal.SIGKILL)
            done.append(f"stopped {daemon.name} (pid {daemon.pid})")
        self.daemons.clear()
        if self.munge_folder is not None:
            shutil.rmtree(self.munge_folder, ignore_errors=True)
            self.munge_folder = None
        return done


def _comm(pid: int) -> str | None:
    """/proc/PID/comm, or None when there is no such process (or it is a zombie)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    if status.rsplit(")", 1)[-1].split()[0] == "Z":
        return None
    return Path(f"/proc/{pid}/comm").read_text().strip()
