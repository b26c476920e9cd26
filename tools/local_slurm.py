"""A one-node Slurm on this machine, to try docs/regrading.md's script before a real cluster.

    python tools/local_slurm.py up   [--dir DIR]     start munge (if needed), slurmctld and slurmd
    python tools/local_slurm.py down [--dir DIR]     stop them (munge is left running)

(`make slurm-up`, `make slurm-down`.) `up` prints the line to give the shell its clients:
`export SLURM_CONF=DIR/slurm.conf`. Needs root (slurmd starts each job as its user) and Debian's
packages `slurm-wlm` and `munge` (`apt-get install slurm-wlm munge`). The cluster is one node (this
host, its CPUs and memory less 512 MB) in one partition, with what runs in a container: no cgroup
plugins (proctrack/linuxproc, task/none). Everything it writes (configuration, state, logs, pid files)
stays in DIR (default /tmp/autograder-slurm), and its daemons listen on free ports picked at `up`,
so that two clusters in two folders do not meet.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

DEFAULT = "/tmp/autograder-slurm"
NEEDED = ("slurmctld", "slurmd", "munged", "munge", "sbatch", "sinfo", "squeue")


class SlurmError(Exception):
    pass


def missing_tools():
    return [t for t in NEEDED if not shutil.which(t) and not os.path.exists("/usr/sbin/" + t)]


def _tool(name):
    return shutil.which(name) or "/usr/sbin/" + name


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb():
    with open("/proc/meminfo") as f:
        total = next(int(line.split()[1]) for line in f if line.startswith("MemTotal:"))
    return max(512, total // 1024 - 512)


def config(folder):
    """slurm.conf's text for a cluster kept in `folder`."""
    host = socket.gethostname().split(".")[0]
    port = _free_port()
    return "\n".join([
        "ClusterName=autograder",
        "SlurmctldHost=%s" % host,
        "SlurmUser=root", "SlurmdUser=root", "AuthType=auth/munge",
        "StateSaveLocation=%s/state" % folder, "SlurmdSpoolDir=%s/spool" % folder,
        "SlurmctldPidFile=%s/slurmctld.pid" % folder, "SlurmdPidFile=%s/slurmd.pid" % folder,
        "SlurmctldLogFile=%s/slurmctld.log" % folder, "SlurmdLogFile=%s/slurmd.log" % folder,
        "SlurmctldPort=%d" % port, "SlurmdPort=%d" % _free_port(),
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
        "JobAcctGatherType=jobacct_gather/linux", "ReturnToService=2",
        "SchedulerParameters=sched_interval=1", "MinJobAge=3600",
        "NodeName=%s CPUs=%d RealMemory=%d State=UNKNOWN" % (host, os.cpu_count() or 1, _memory_mb()),
        "PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""])


def _munge_works():
    try:
        cred = subprocess.run([_tool("munge"), "-n"], capture_output=True, timeout=10)
        return cred.returncode == 0 and subprocess.run(
            [_tool("unmunge")], input=cred.stdout, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _start_munge():
    if _munge_works():
        return
    if not os.path.exists("/etc/munge/munge.key"):
        subprocess.run([_tool("mungekey"), "--create"], check=True, timeout=30)
        shutil.chown("/etc/munge/munge.key", "munge", "munge")
    os.makedirs("/run/munge", exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    subprocess.run(["runuser", "-u", "munge", "--", _tool("munged")], check=True, timeout=30)
    for _ in range(50):
        if _munge_works():
            return
        time.sleep(0.2)
    raise SlurmError("munged did not start")


def env(folder=DEFAULT):
    """os.environ with the cluster's clients pointed at it."""
    return dict(os.environ, SLURM_CONF=os.path.join(folder, "slurm.conf"))


def up(folder=DEFAULT, timeout=60):
    """Start the cluster kept in `folder` (stopping one already there first); returns SLURM_CONF's value."""
    if os.geteuid() != 0:
        raise SlurmError("a local Slurm needs root: slurmd starts every job as its user")
    missing = missing_tools()
    if missing:
        raise SlurmError("not installed: %s (Debian: apt-get install slurm-wlm munge)" % ", ".join(missing))
    down(folder)
    for sub in ("state", "spool"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    conf = os.path.join(folder, "slurm.conf")
    with open(conf, "w") as f:
        f.write(config(folder))
    _start_munge()
    for daemon in ("slurmctld", "slurmd"):
        r = subprocess.run([_tool(daemon), "-f", conf], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise SlurmError("%s did not start: %s" % (daemon, (r.stderr or r.stdout).strip()[-500:]))
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        r = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, env=env(folder), timeout=30)
        state = r.stdout.strip()
        if state in ("idle", "mix", "alloc"):
            return conf
        time.sleep(0.5)
    log = os.path.join(folder, "slurmctld.log")
    tail = open(log).read()[-800:] if os.path.exists(log) else ""
    down(folder)
    raise SlurmError("the node did not come up within %d s (state %r)\n%s" % (timeout, state, tail))


def down(folder=DEFAULT):
    """Stop the cluster kept in `folder`, if any (its daemons, by their pid files)."""
    for daemon in ("slurmd", "slurmctld"):
        path = os.path.join(folder, "%s.pid" % daemon)
        try:
            with open(path) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            continue
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.unlink(path)
        except OSError:
            pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--dir", default=DEFAULT, help="where the cluster keeps everything (default %s)" % DEFAULT)
    args = parser.parse_args(argv)
    folder = os.path.abspath(args.dir)
    try:
        if args.action == "up":
            conf = up(folder)
            print("a one-node Slurm runs from %s; for its clients (sbatch, squeue, ...):\n  export SLURM_CONF=%s"
                  % (folder, conf))
        else:
            down(folder)
            print("stopped the Slurm of %s" % folder)
    except SlurmError as e:
        print("local Slurm: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
