"""Start, talk to and kill the worker process that runs student code.

The grading process never imports student code. A `Worker` is a fresh interpreter that runs
`worker.py` (sent as source text over a pipe) in a scratch copy of the submission:
- as an unprivileged user when the grader runs as root (as on Gradescope), in its own network
  namespace where the kernel allows it, with no supplementary groups;
- with resource limits (address space, processes, file size, CPU time) and its own session, so
  that the whole process group can be killed;
- with its stdout/stderr drained by a thread into a bounded buffer (a print flood neither
  stalls the worker nor fills the grader's memory).
A call that runs past its deadline, or a worker that dies, raises `WorkerLost`; the caller
starts a new worker and goes on.
"""
import ctypes
import json
import os
import pwd
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from . import wire
from .worker import BOOTSTRAP

_HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Limits:
    """Resource limits of the worker. Environment variables override the defaults."""

    call_timeout: float = 20.0  # seconds of wall time for one call (or one import)
    startup_timeout: float = 90.0  # seconds to start the interpreter and import torch
    memory_mb: int = 3072  # address-space cap (RLIMIT_AS); 0 = none (needed for CUDA)
    nproc: int = 256  # processes + threads of the sandbox user (when root)
    fsize_mb: int = 64  # largest file the worker may write
    output_bytes: int = 32 * 1024  # student output kept for the report

    @classmethod
    def from_env(cls):
        lim = cls()
        for field, conv in (("call_timeout", float), ("startup_timeout", float), ("memory_mb", int),
                            ("nproc", int), ("fsize_mb", int), ("output_bytes", int)):
            value = os.environ.get("AUTOGRADER_" + field.upper())
            if value:
                setattr(lim, field, conv(value))
        return lim


class WorkerLost(Exception):
    """The worker timed out, died, or broke the protocol. `reason` is student-facing."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def sandbox_user():
    """(uid, gid) to run student code as, or None when the grader is not root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("AUTOGRADER_SANDBOX_USER", "nobody")
    pw = pwd.getpwnam(name)
    return pw.pw_uid, pw.pw_gid


def _unshare_network():
    """Best effort: put this (child) process into a new, empty network namespace."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.unshare(0x40000000)  # CLONE_NEWNET
    except Exception:
        pass


class _OutputSink(threading.Thread):
    """Drains a pipe, keeping the first `cap` bytes and counting the rest."""

    def __init__(self, fd, cap):
        super().__init__(daemon=True)
        self.fd, self.cap = fd, cap
        self.kept = bytearray()
        self.dropped = 0

    def run(self):
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            room = self.cap - len(self.kept)
            if room > 0:
                self.kept += chunk[:room]
            self.dropped += max(0, len(chunk) - max(room, 0))
        os.close(self.fd)

    def text(self):
        s = self.kept.decode("utf-8", "replace")
        if self.dropped:
            s += "\n[... %d more bytes of output dropped]" % self.dropped
        return s


class Worker:
    """One sandboxed interpreter serving load/call requests for one submission."""

    def __init__(self, scratch, limits, use_cuda=False):
        self.scratch = scratch
        self.limits = limits
        self.use_cuda = use_cuda
        self.user = sandbox_user()
        self.proc = None
        self.next_id = 0
        self.info = {}

    # -- lifecycle -----------------------------------------------------------------------
    def start(self):
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        out_r, out_w = os.pipe()
        user, limits = self.user, self.limits
        memory = 0 if self.use_cuda else limits.memory_mb

        def preexec():
            if user is not None:
                _unshare_network()
                os.setgroups([])
                os.setgid(user[1])
                os.setuid(user[0])
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.nproc, limits.nproc))
            if memory:
                resource.setrlimit(resource.RLIMIT_AS, (memory << 20, memory << 20))
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.fsize_mb << 20, limits.fsize_mb << 20))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": self.scratch,
            "TMPDIR": self.scratch,
            "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
        }
        for key in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):
            if key in os.environ:
                env[key] = os.environ[key]
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-B", "-c", BOOTSTRAP, str(req_r), str(resp_w), self.scratch],
                stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, pass_fds=(req_r, resp_w),
                cwd=self.scratch, env=env, start_new_session=True, preexec_fn=preexec, close_fds=True)
        finally:
            os.close(req_r)
            os.close(resp_w)
            os.close(out_w)
        self.req_w, self.resp_r = req_w, resp_r
        self.output = _OutputSink(out_r, limits.output_bytes)
        self.output.start()
        with open(os.path.join(_HERE, "wire.py")) as f:
            wire_src = f.read()
        with open(os.path.join(_HERE, "worker.py")) as f:
            worker_src = f.read()
        self._send({"wire": wire_src, "worker": worker_src}, raw_json=True)
        self.info = self._receive(None, time.monotonic() + limits.startup_timeout, "starting Python and torch")
        if not isinstance(self.info, dict) or not self.info.get("ready"):
            self.stop()
            raise WorkerLost("the worker did not start")
        return self

    def stop(self):
        """Kill the worker's process group (and, as root, every process of the sandbox user)."""
        if self.proc is None:
            return
        for fd in (self.req_w, self.resp_r):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self.user is not None:
            kill_user_processes(self.user[0])
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        self.output.join(timeout=2)
        self.proc = None

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- requests ------------------------------------------------------------------------
    def request(self, obj, timeout, what):
        """Send one request and wait for its response; raise WorkerLost on timeout or death."""
        self.next_id += 1
        obj = dict(obj, id=self.next_id)
        self._send(obj)
        return self._receive(self.next_id, time.monotonic() + timeout, what)

    def _send(self, obj, raw_json=False):
        if raw_json:  # the bootstrap frame: plain JSON, read before wire.py exists in the worker
            header = json.dumps(obj).encode()
            data = struct.pack(">QQ", len(header), 0) + header
        else:
            data = wire.frame(obj)
        try:
            view = memoryview(data)
            while view:
                n = os.write(self.req_w, view)
                view = view[n:]
        except (BrokenPipeError, OSError):
            raise WorkerLost(self._death("while receiving its inputs"))

    def _receive(self, want_id, deadline, what):
        def read(fd, n):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                raise TimeoutError
            return os.read(fd, n)

        while True:
            try:
                header, payload = wire.read_frame(self.resp_r, read)
                msg = wire.decode(header, payload)
            except TimeoutError:
                seconds = self.limits.startup_timeout if want_id is None else self.limits.call_timeout
                raise WorkerLost("timed out after %g s %s (the per-call time limit): look for an "
                                 "infinite loop or very slow code" % (seconds, what))
            except EOFError:
                raise WorkerLost(self._death(what))
            except (wire.WireError, ValueError, OSError) as e:
                raise WorkerLost("the worker sent malformed data %s (%s)" % (what, e))
            if want_id is None or (isinstance(msg, dict) and msg.get("id") == want_id):
                return msg

    def _death(self, what):
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            return "the worker stopped answering %s" % what
        if code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            extra = " (out of memory?)" if -code in (signal.SIGKILL, signal.SIGSEGV) else ""
            return "the worker process was killed by %s %s%s" % (name, what, extra)
        return "the worker process exited with status %d %s (sys.exit or os._exit?)" % (code, what)


def kill_user_processes(uid):
    """SIGKILL every process owned by `uid` (the sandbox user), twice to catch late forks."""
    for _ in range(2):
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                if os.stat("/proc/" + pid).st_uid == uid:
                    os.kill(int(pid), signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                pass
        time.sleep(0.05)
