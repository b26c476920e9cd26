"""The worker's memory limit: memory actually used, never address space.

A CUDA build of torch (what a plain `pip install torch` gives on Linux) maps ~3 GB of address
space at import and reserves more when CUDA starts, yet uses ~500 MB. An address-space cap
(RLIMIT_AS) that fits the CPU wheel therefore stops that build from starting at all. Two layers
count what is really used instead, both relative to the worker's own footprint once torch is
loaded, so that `AUTOGRADER_MEMORY_MB` means "what the student's code may use":

1. RLIMIT_DATA, set by the worker itself right after `import torch` (worker.py,
   `limit_private_memory`): the kernel refuses any new *writable private* mapping beyond
   baseline + limit. PROT_NONE reservations and read-only library mappings do not count. A torch
   allocation then fails at once with "can't allocate memory", a Python one with MemoryError,
   and the check names the limit; the worker lives on.
2. A watchdog in the grader (`Watchdog` below, polled while a request is pending): the
   proportional resident set (PSS, anonymous + shared memory) of every process of the sandbox,
   forked children and MAP_SHARED memory included, which RLIMIT_DATA does not see. Over
   baseline + limit, the worker is killed and the check names the limit.

The worker also sets its own OOM score to the maximum, so that if the container itself runs out
of memory the kernel kills student code, not the grader.
"""
import os

# Polling period of the watchdog while a request is pending (seconds).
POLL = 0.05


def process_memory(pid, inherited=False):
    """Bytes of anonymous and shared memory of one process (PSS), or 0 when it is gone.

    inherited: count anonymous memory in full rather than in proportion (a worker forked from the
    zygote shares torch's heap with it; its share grows as pages are copied on write or as sibling
    workers exit, without the student allocating anything: its baseline is taken this way).
    """
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            text = f.read()
        keys = ("Anonymous:" if inherited else "Pss_Anon:", "Pss_Shmem:")
    except OSError:
        try:
            with open("/proc/%d/status" % pid) as f:
                text = f.read()
            keys = ("RssAnon:", "RssShmem:")
        except OSError:
            return 0
    total = 0
    for line in text.splitlines():
        if line.startswith(keys):
            total += int(line.split()[1]) << 10
    return total


def group_pids(pgid=None, uid=None):
    """Live processes of a process group or of a user (the sandbox uid catches setsid escapes)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if uid is not None:
                if os.stat("/proc/" + name).st_uid != uid:
                    continue
            else:
                with open("/proc/%s/stat" % name) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[2]) != pgid:  # fields: state, ppid, pgrp, ...
                    continue
            found.append(int(name))
        except (OSError, IndexError, ValueError):
            continue
    return found


class Watchdog:
    """Kills nothing itself: says when the sandbox uses more than baseline + limit_mb."""

    def __init__(self, pgid, uid, limit_mb, forked=False):
        self.pgid, self.uid, self.limit = pgid, uid, limit_mb << 20
        self.baseline = self.used(inherited=forked) if limit_mb else 0

    def used(self, inherited=False):
        return sum(process_memory(pid, inherited) for pid in group_pids(self.pgid, self.uid))

    def over(self):
        """The bytes used beyond the baseline when that exceeds the limit, else None."""
        if not self.limit:
            return None
        extra = self.used() - self.baseline
        return extra if extra > self.limit else None
