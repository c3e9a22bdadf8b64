"""A real one-node SLURM cluster on loopback, started for the tests and stopped after them.

Debian's slurm-wlm and munge are installed with apt-get when missing (root only). The
configuration, state, logs and pid files live in a temporary directory; clients find the
configuration through ``SLURM_CONF`` and, because a job step's ``srun`` inside a batch job
does not see the submitter's ``SLURM_CONF``, at the default path /etc/slurm/slurm.conf too
(any file already there is put back when the cluster stops). Only the daemons started here
are stopped, by pid.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ["slurm-wlm", "munge"]
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_RUN = Path("/run/munge")
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")


class ClusterUnavailable(RuntimeError):
    """This machine cannot run the cluster (not root, packages not installable)."""


def install_packages() -> None:
    """apt-get install slurm-wlm and munge unless their daemons are already there."""
    if all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "munged", "sbatch")):
        return
    if os.geteuid() != 0:
        raise ClusterUnavailable("slurm-wlm is not installed and installing it needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise ClusterUnavailable(f"{' '.join(command)} failed: {result.stderr[-500:]}")


def _munge_works() -> bool:
    try:
        encoded = subprocess.run(["munge", "-n"], capture_output=True, timeout=10)
        if encoded.returncode != 0:
            return False
        decoded = subprocess.run(["unmunge"], input=encoded.stdout, capture_output=True, timeout=10)
        return decoded.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _node_line() -> str:
    """This machine as a SLURM node: CPUs and memory as slurmd itself reads them."""
    described = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True)
    first = described.stdout.splitlines()[0]
    fields = dict(item.split("=", 1) for item in first.split())
    fields.pop("NodeName", None)
    # Leave the operating system some memory; jobs ask for what they use.
    fields["RealMemory"] = str(int(int(fields["RealMemory"]) * 0.9))
    return " ".join(f"{k}={v}" for k, v in fields.items())


class SlurmCluster:
    """``with SlurmCluster(workdir) as cluster:`` a running cluster; ``cluster.env`` holds the
    environment that points SLURM's commands at it."""

    def __init__(self, workdir: Path, timeout: float = 60.0) -> None:
        self.workdir = Path(workdir)
        self.timeout = timeout
        self.hostname = socket.gethostname()
        self.conf = self.workdir / "slurm.conf"
        self.controller_log = self.workdir / "slurmctld.log"
        self.processes: list[subprocess.Popen] = []
        self.previous_default_conf: bytes | None = None
        self.wrote_default_conf = False
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def __enter__(self) -> SlurmCluster:
        if os.geteuid() != 0:
            raise ClusterUnavailable("starting slurmctld, slurmd and munged needs root")
        install_packages()
        try:
            self._start_munge()
            self._write_conf()
            self._start("slurmctld", "-D", "-f", str(self.conf))
            self._start("slurmd", "-D", "-f", str(self.conf))
            self._wait_idle()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _start_munge(self) -> None:
        if _munge_works():
            return  # a munged is running already: use it, and leave it running
        munge_user = pwd.getpwnam("munge")
        if not MUNGE_KEY.exists():
            MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
            MUNGE_KEY.write_bytes(os.urandom(1024))
            os.chown(MUNGE_KEY, munge_user.pw_uid, munge_user.pw_gid)
            MUNGE_KEY.chmod(0o400)
        MUNGE_RUN.mkdir(parents=True, exist_ok=True)
        os.chown(MUNGE_RUN, munge_user.pw_uid, munge_user.pw_gid)
        self.processes.append(
            subprocess.Popen(
                ["munged", "--foreground", "--force"],
                user="munge",
                group="munge",
                stdout=subprocess.DEVNULL,
                stderr=open(self.workdir / "munged.log", "wb"),  # noqa: SIM115
            )
        )
        self._wait(_munge_works, "munged to answer")

    def _write_conf(self) -> None:
        state, spool = self.workdir / "state", self.workdir / "spool"
        state.mkdir(exist_ok=True)
        spool.mkdir(exist_ok=True)
        lines = [
            "ClusterName=mbbench-test",
            f"SlurmctldHost={self.hostname}(127.0.0.1)",
            "AuthType=auth/munge",
            # pgid: scancel signals a job's whole process group, so the job's own snakemake
            # (a child of the batch script) goes too; linuxproc left it running here.
            "ProctrackType=proctrack/pgid",
            "TaskPlugin=task/none",
            "MpiDefault=none",
            "SlurmUser=root",
            "SlurmdUser=root",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "ReturnToService=2",
            f"StateSaveLocation={state}",
            f"SlurmdSpoolDir={spool}",
            f"SlurmctldPidFile={self.workdir / 'slurmctld.pid'}",
            f"SlurmdPidFile={self.workdir / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.controller_log}",
            f"SlurmdLogFile={self.workdir / 'slurmd.log'}",
            "SlurmctldDebug=info",
            f"NodeName={self.hostname} NodeAddr=127.0.0.1 {_node_line()} State=UNKNOWN",
            f"PartitionName=debug Nodes={self.hostname} Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        if DEFAULT_CONF.exists():
            self.previous_default_conf = DEFAULT_CONF.read_bytes()
        DEFAULT_CONF.parent.mkdir(parents=True, exist_ok=True)
        DEFAULT_CONF.write_bytes(self.conf.read_bytes())
        self.wrote_default_conf = True

    def _start(self, *command: str) -> None:
        log = open(self.workdir / f"{command[0]}.stderr", "wb")  # noqa: SIM115
        self.processes.append(
            subprocess.Popen(list(command), env=self.env, stdout=log, stderr=subprocess.STDOUT)
        )

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not ready():
            for process in self.processes:
                if process.poll() is not None:
                    raise ClusterUnavailable(
                        f"{process.args[0]} exited with {process.returncode} while waiting for "
                        f"{what}; see {self.workdir}"
                    )
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"timed out waiting for {what}; see {self.workdir}")
            time.sleep(0.5)

    def _wait_idle(self) -> None:
        def idle() -> bool:
            shown = subprocess.run(
                ["sinfo", "--noheader", "--format=%t"], env=self.env, capture_output=True, text=True
            )
            return shown.returncode == 0 and shown.stdout.strip() in ("idle", "mix", "alloc")

        self._wait(idle, "the node to be idle in sinfo")

    def stop(self) -> None:
        """Stop the daemons this cluster started (in reverse order), by pid."""
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()
        if self.wrote_default_conf:
            if self.previous_default_conf is None:
                DEFAULT_CONF.unlink(missing_ok=True)
            else:
                DEFAULT_CONF.write_bytes(self.previous_default_conf)
            self.wrote_default_conf = False

    def squeue_job_ids(self) -> list[str]:
        shown = subprocess.run(
            ["squeue", "--noheader", "--format=%i"], env=self.env, capture_output=True, text=True
        )
        return shown.stdout.split()

    def scancel(self, job_id: str) -> None:
        subprocess.run(["scancel", job_id], env=self.env, check=True)

    def known_job_ids(self) -> set[str]:
        """Ids of every job this cluster's controller handled (from its log: there is no
        accounting database here). Scheduling lines vary (main scheduler, backfill), so any
        ``JobId=<n>`` counts."""
        text = self.controller_log.read_text() if self.controller_log.exists() else ""
        return set(re.findall(r"\bJobId=(\d+)", text))
