"""Start, talk to and kill the worker process that runs student code.

The grading process never imports student code. A `Worker` is a fresh interpreter that runs
`worker.py` (sent as source text over a pipe) in a scratch copy of the submission:
- as an unprivileged user when the grader runs as root (as on Gradescope), in its own network
  namespace where the kernel allows it, with no supplementary groups;
- with resource limits (memory used, processes, file size) and its own session, so that the
  whole process group can be killed;
- with its stdout/stderr drained by a thread into a bounded buffer (a print flood neither
  stalls the worker nor fills the grader's memory).
A call that runs past its deadline, or a worker that dies, raises `WorkerLost`; the caller
starts a new worker and goes on. A grading called off from outside (a batch's Ctrl-C, see
`cancellable`) raises `Cancelled` where the grader waits on its worker.
"""
import contextlib
import ctypes
import fcntl
import json
import os
import pwd
import resource
import select
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

from . import isolation, wire
from .memory import POLL, Watchdog
from .worker import BOOTSTRAP
from .launch import STARTUP_TIMEOUT, worker_env

_HERE = os.path.dirname(os.path.abspath(__file__))
# Without root, a worker must have its kernel layers (REQUIRED_WITHOUT_ROOT) or it does not run. The public
# checker, which runs a student's own code on the student's own machine, turns this off.
REQUIRE_ISOLATION = True


@dataclass
class Limits:
    """Resource limits of the worker. Environment variables override the defaults."""

    call_timeout: float = 10.0  # seconds of wall time for one call (or one import)
    startup_timeout: float = STARTUP_TIMEOUT  # seconds to start the interpreter and import torch
    # Memory the student's code may use on top of the worker's own once torch is loaded; counted
    # as memory used (writable private memory, and resident memory), never as address space: a
    # CUDA build of torch maps ~3 GB it never touches. 0 = no limit. See `memory.py`.
    memory_mb: int = 300
    nproc: int = 256  # processes + threads of the sandbox user (when root)
    fsize_mb: int = 64  # largest file the worker may write
    output_bytes: int = 32 * 1024  # student output kept for the report

    @classmethod
    def from_env(cls, base=None):
        """`base` (default: the defaults above) with the AUTOGRADER_* variables that are set."""
        lim = base if base is not None else cls()
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
        self.output = ""  # the worker's own output, when it could not start


class Cancelled(BaseException):
    """The grading was called off from outside (`cancellable`). A BaseException, so that no
    `except Exception` on the way turns it into a grader failure; `finally` blocks still kill the
    worker, delete its files and release the sandbox uid."""


_cancel = threading.local()


@contextlib.contextmanager
def cancellable(event):
    """Within this block, this thread's waits on a worker raise Cancelled once `event` is set.

    Every wait for a worker's answer (its ready message, a call, an instructor test) goes through
    Worker._receive's poll loop, which checks the event every POLL seconds: a grading stops within
    that time of being called off, at a point where its worker can be killed cleanly. (Asking the
    zygote for a fork is not such a wait: it answers at once, or within 30 s is given up on.)
    """
    previous = getattr(_cancel, "event", None)
    _cancel.event = event
    try:
        yield
    finally:
        _cancel.event = previous


def _check_cancelled():
    event = getattr(_cancel, "event", None)
    if event is not None and event.is_set():
        raise Cancelled


class _NotForked(Exception):
    """The zygote could not fork a worker (Worker.start then starts a fresh interpreter)."""


class EnvironmentFailure(RuntimeError):
    """The worker could not start before any student code ran: the grader's environment is at fault."""

    def __init__(self, reason, output=""):
        super().__init__("the sandboxed worker (Python + torch) could not start, before any student "
                         "code ran: %s\nWhat it printed:\n%s" % (reason, output.strip()[-3000:] or "(nothing)"))


SANDBOX_UID = 64000  # default base: uids no account uses, so killing "all its processes" is safe
LEASE_DIR = "/run/autograder-sandbox"  # root-only folder of uid leases
MAX_SLOTS = 512


class SandboxUser:
    """An exclusive lease on one sandbox uid, so that concurrent graders never share a user.

    Each grader (batch regrading runs several) holds an flock on its uid's lease file for as long
    as it grades; killing "every process of my uid" then touches only its own student's code.
    AUTOGRADER_SANDBOX_USER may name an account or a number to use as the base uid.
    """

    def __init__(self):
        name = os.environ.get("AUTOGRADER_SANDBOX_USER", str(SANDBOX_UID))
        if name.isdigit():
            base_uid = base_gid = int(name)
        else:
            pw = pwd.getpwnam(name)
            base_uid, base_gid = pw.pw_uid, pw.pw_gid
        folder = _lease_dir()
        # Graders in other processes (a parallel test run, batch shards) start their search elsewhere,
        # so that a uid just released is rarely leased again at once by someone else.
        # (A named account is tried first: its own uid is the one the instructor chose.)
        first = (os.getpid() * 7919) % MAX_SLOTS if name.isdigit() else 0
        for slot in [(first + i) % MAX_SLOTS for i in range(MAX_SLOTS)]:
            fd = os.open(os.path.join(folder, "%d.lock" % (base_uid + slot)), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self.fd = fd
            self.uid, self.gid = base_uid + slot, base_gid + slot
            killuser_processes((self.uid, self.gid))  # leftovers of a grader that died
            return
        raise RuntimeError("no free sandbox uid (all %d leases in %s are held)" % (MAX_SLOTS, LEASE_DIR))

    def __iter__(self):
        return iter((self.uid, self.gid))

    def release(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _lease_dir():
    for folder in (LEASE_DIR, os.path.join(tempfile.gettempdir(), "autograder-sandbox-leases")):
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            st = os.lstat(folder)
            if st.st_uid == 0 and stat.S_ISDIR(st.st_mode):
                os.chmod(folder, 0o700)
                return folder
        except OSError:
            continue
    raise RuntimeError("no folder for sandbox uid leases (tried %s)" % LEASE_DIR)


def sandbox_user():
    """A SandboxUser lease when the grader runs as root, else None (code runs as this user)."""
    return SandboxUser() if os.geteuid() == 0 else None


UNSAFE_ENV = "AUTOGRADER_UNSAFE_NO_ISOLATION"  # set by --unsafe-no-isolation
UNSAFE_NOTE = ("WARNING: student code ran WITHOUT isolation (--unsafe-no-isolation): it had the grader's "
               "own rights, and its score cannot be trusted")
# Without root, a worker that lacks one of these runs as the instructor with nothing in between (read-only
# file systems: else it could rewrite the kit's own code, which every later grading runs).
REQUIRED_WITHOUT_ROOT = ("user namespace", "mount namespace", "read-only file systems", "seccomp")


def unsafe():
    return os.environ.get(UNSAFE_ENV) == "1"


def lease(kit=None):
    """What every grading takes before any student code runs: a sandbox uid when root (its leftovers
    swept), the kit's folders hidden from it (kit: the kit's folder, plans.Plan.kit), and this process
    closed to same-uid reading."""
    isolation.not_dumpable()
    user = sandbox_user()
    if user is not None:
        if kit is not None:
            hide_from_sandbox(kit)
        sweep_user(user.uid)
    return user


def release(user, layers):
    """The end of a grading, after its last worker stopped: nothing the sandbox uid owns is left (files
    in every world-writable folder, System V IPC) and the uid goes back. Returns the notes for results."""
    if user is not None:
        # (no layers: no worker started, so no student code ran)
        sweep_user(user.uid, everywhere=bool(layers) and layers.get("mount namespace") != isolation.ACTIVE)
        user.release()
    return [UNSAFE_NOTE] if unsafe() else []


def probe(limits, use_cuda=False):
    """Start and stop one worker on an empty folder: its layers, or the EnvironmentFailure every
    grading on this host would end in (no student code is involved)."""
    scratch = tempfile.mkdtemp(prefix="ag-probe-")
    user = lease()
    try:
        if user is not None:
            os.chown(scratch, *user)
        worker = Worker(scratch, limits, use_cuda, user).start()
        worker.stop()
        return worker.layers
    except WorkerLost as e:
        raise EnvironmentFailure(e.reason, e.output)
    finally:
        release(user, {})
        shutil.rmtree(scratch, ignore_errors=True)


def sweep_user(uid, everywhere=False):
    """Delete what `uid` left: files in the world-writable folders (every one on the system when its
    workers had no private /tmp: `everywhere`), and its System V shared memory, queues and semaphores."""
    remove_user_files(uid, SHARED_WRITABLE + (tuple(world_writable_dirs()) if everywhere else ()))
    remove_user_ipc(uid)


KIT_SECRETS = ("autograder", "solutions", "tests", ".git", "dist", "handouts", "instructor_tests", "tools")


def hide_from_sandbox(root, secret_names=KIT_SECRETS):
    """As root: make the kit's own files unreadable to the sandbox user (others get no access).

    The kit's folder keeps only its traverse bit for others, so a virtual environment inside it
    (.venv) still works for the worker; the named folders lose every permission for others.
    """
    if os.geteuid() != 0:
        return
    mode = os.stat(root).st_mode & 0o7777
    os.chmod(root, (mode & ~0o006) | 0o001)
    for name in secret_names:
        path = os.path.realpath(os.path.join(root, name))  # a link's target, never the link
        if os.path.isdir(path):
            os.chmod(path, os.stat(path).st_mode & 0o7770)


# Where workers come from: None starts a fresh interpreter per worker; forkserver.start() sets a
# pre-imported zygote here, which forks them (batch regrading pays torch's import once).
SPAWNER = None

# Folders no worker of this process may see (the kit's own secrets are added by the grader; grade-batch
# adds the class folder and its output folder): each worker's mount namespace covers them with an empty,
# read-only tmpfs. A set of absolute paths; add and remove with PRIVATE_PATHS.update/difference_update.
PRIVATE_PATHS = set()


def enter_sandbox(user, nproc, fsize_mb, flag_w, scratch, private=(), tmpfs_mb=0):
    """In the worker's process, before it runs anything: its kernel layers, its user, its limits.

    user: (uid, gid) of the sandbox uid, or None (the grader is not root: a user namespace keeps
    this uid). scratch: the worker's folder; private: folders no worker may see (PRIVATE_PATHS);
    tmpfs_mb: size of each private /tmp-like folder. Writes the layers' report (isolation.enter,
    as JSON) to flag_w. Runs after fork (Popen's preexec_fn, or the zygote's child).
    """
    try:  # if the container runs out of memory, the kernel kills student code first
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    layers = isolation.enter(user, scratch, private, tmpfs_mb)
    if user is not None:
        layers = dict({"sandbox uid": isolation.ACTIVE}, **layers)
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_mb << 20, fsize_mb << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))  # open files are memory too (tmpfs, pipes)
    os.chdir(scratch)  # through the mount namespace's view of it
    os.write(flag_w, isolation.dumps(layers))


NOFILE = 256  # files a worker may hold open


def tmpfs_mb(limits):
    """Size of each of a worker's five private tmpfs (its folder, /tmp, /var/tmp, /dev/shm, /run/lock):
    files there are memory the watchdog cannot see."""
    return max(16, limits.memory_mb // 4) if limits.memory_mb else 0


def private_paths(kit=None):
    """Everything a worker of this process must not see: the secrets of the kit (its folder, or None)
    and PRIVATE_PATHS."""
    secrets = {os.path.join(kit, name) for name in KIT_SECRETS} if kit is not None else set()
    paths = secrets | {os.path.abspath(p) for p in PRIVATE_PATHS}
    # A secret folder may be a link (solutions/ -> a private checkout): what it points at is covered too
    return sorted(paths | {os.path.realpath(p) for p in paths})


def _source(name):
    with open(os.path.join(_HERE, name)) as f:
        return f.read()


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
            s = "[%d more bytes of output dropped after these %d]\n%s" % (self.dropped, len(self.kept), s)
        return s


class Worker:
    """One sandboxed interpreter serving load/call requests for one submission."""

    def __init__(self, scratch, limits, use_cuda=False, user=None, kit=None):
        self.scratch = scratch
        self.kit = kit  # the kit whose secret folders the worker never sees (private_paths)
        self.limits = limits
        self.use_cuda = use_cuda
        self.user = tuple(user) if user is not None else None
        self.proc = None
        self.next_id = 0
        self.info = {}
        self.layers = {}  # isolation layer -> "active" or "not available: ..." (isolation.py)
        self.watchdog = None  # memory.Watchdog once the worker has started

    # -- lifecycle -----------------------------------------------------------------------
    def start(self):
        """Start the worker: forked from the zygote when there is one (forkserver.py), else a fresh
        interpreter. Returns self once the worker says it is ready."""
        if self.user is None and os.geteuid() == 0:
            raise RuntimeError("refusing to run student code as root: pass a SandboxUser")
        spawner = SPAWNER  # read once: another thread may stop it meanwhile
        if spawner is not None and spawner.alive:
            try:
                return self._start(spawner)
            except _NotForked:  # the zygote is gone: a fresh interpreter instead, on new pipes
                pass
        return self._start(None)

    def _start(self, spawner):
        req_r, req_w = os.pipe()
        resp_r, resp_w = os.pipe()
        out_r, out_w = os.pipe()
        user, limits = self.user, self.limits
        # RLIMIT_DATA is set by the worker itself once torch is loaded (not on CUDA runs, whose
        # driver maps host memory lazily); the watchdog counts resident memory on every run.
        data_mb = 0 if self.use_cuda else limits.memory_mb
        flag_r, flag_w = os.pipe()  # the child writes its isolation layers' report here
        wit_r, wit_w = os.pipe()  # the worker's operator observer writes each violation here, as it happens
        forked = spawner is not None
        private, tmpfs = private_paths(self.kit), tmpfs_mb(limits)
        try:
            if forked:
                try:
                    self.proc = spawner.spawn((req_r, resp_w, out_w, flag_w, wit_w), {
                        "scratch": self.scratch, "user": list(user) if user else None, "nproc": limits.nproc,
                        "fsize_mb": limits.fsize_mb, "data_mb": data_mb, "cuda": self.use_cuda,
                        "env": worker_env(self.scratch), "private": private, "tmpfs_mb": tmpfs})
                except WorkerLost:  # a fork that comes late may hold these pipes: closing our ends
                    for fd in (req_w, resp_r, out_r, flag_r, wit_r):  # makes it read EOF and exit
                        os.close(fd)
                    raise _NotForked()
            else:
                self.proc = subprocess.Popen(
                    [sys.executable, "-I", "-B", "-c", BOOTSTRAP, str(req_r), str(resp_w), self.scratch,
                     str(data_mb), str(int(self.use_cuda)), str(wit_w)],
                    stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, pass_fds=(req_r, resp_w, wit_w),
                    cwd=self.scratch, env=worker_env(self.scratch), start_new_session=True, close_fds=True,
                    preexec_fn=lambda: enter_sandbox(user, limits.nproc, limits.fsize_mb, flag_w, self.scratch,
                                                     private, tmpfs))
        finally:
            for fd in (req_r, resp_w, out_w, flag_w, wit_w):
                os.close(fd)
        self.req_w, self.resp_r, self.witness = req_w, resp_r, wit_r
        os.set_blocking(wit_r, False)
        os.set_blocking(req_w, False)  # every send has a deadline (_send)
        self.output = _OutputSink(out_r, limits.output_bytes)
        self.output.start()
        deadline = time.monotonic() + limits.startup_timeout
        try:
            if not forked:  # a fresh interpreter gets the worker's code over its request pipe
                self._send({"wire": _source("wire.py"), "isolation": _source("isolation.py"),
                            "worker": _source("worker.py")}, deadline, "starting Python and torch", raw_json=True)
            self.info = self._receive(None, deadline, "starting Python and torch")
            if not isinstance(self.info, dict) or not self.info.get("ready"):
                raise WorkerLost("the worker did not start")
        except BaseException as e:  # WorkerLost, or Cancelled: no half-started worker is left behind
            self.stop()
            if isinstance(e, WorkerLost):
                e.output = self.output.text()  # what Python printed while starting (for the instructor)
            raise
        finally:  # read once the worker is up: it has entered its namespaces by then
            self.layers = _read_layers(flag_r)
            os.close(flag_r)
        last = self.info.get("layers")  # isolation.confine's, said before any student code ran
        if isinstance(last, dict):
            self.layers.update({str(k)[:60]: str(v)[:300] for k, v in list(last.items())[:10]})
        missing = [name for name in REQUIRED_WITHOUT_ROOT if self.layers.get(name) != isolation.ACTIVE]
        if user is None and missing and REQUIRE_ISOLATION and not unsafe():
            self.stop()
            raise EnvironmentFailure(
                "refusing to run student code without isolation: the grader is not root and %s not "
                "available here (%s). Run as root (as on Gradescope), enable unprivileged user namespaces "
                "(sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone, or Ubuntu's "
                "kernel.apparmor_restrict_unprivileged_userns=0) on Linux 5.12 or newer (read-only mounts) and "
                "install libseccomp, or, knowing that the "
                "code then runs with your own rights, pass --unsafe-no-isolation"
                % (" and ".join(missing), "; ".join("%s: %s" % (m, self.layers.get(m, "not reported"))
                                                    for m in missing)))
        self.watchdog = Watchdog(self.proc.pid, user[0] if user else None, limits.memory_mb, forked)
        return self

    def stop(self):
        """Kill the worker's process group (and, as root, every process of the sandbox user)."""
        if self.proc is None:
            return
        for fd in (self.req_w, self.resp_r, self.witness):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if self.user is not None:
            killuser_processes(self.user)
        self.output.join(timeout=2)
        self.proc = None

    @property
    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # -- requests ------------------------------------------------------------------------
    def request(self, obj, timeout, what):
        """Send one request and wait for its response; raise WorkerLost on timeout or death.
        The send and the wait share one deadline: a worker that stops reading cannot hold the grader."""
        self.next_id += 1
        obj = dict(obj, id=self.next_id)
        deadline = time.monotonic() + timeout
        self._send(obj, deadline, what, timeout=timeout)
        resp = self._receive(self.next_id, deadline, what, timeout)
        if obj.get("op") in ("call", "load") and isinstance(resp, dict):
            _witnessed(resp, self.witnessed())
        return resp

    WITNESS_CLOSED = "a change to the grader's operator record (its pipe was closed or replaced)"
    WITNESS_FLOODED = "a flood of the grader's operator record (lines it never writes)"

    def witnessed(self):
        """[(step, label)] the worker's observer wrote to the witness pipe since the last request
        (bounded), plus a violation of its own if the worker no longer holds the pipe's write end."""
        data = b""
        try:
            while len(data) < WITNESS_BYTES:
                chunk = os.read(self.witness, 65536)
                if not chunk:
                    break
                data += chunk
        except (BlockingIOError, OSError):
            pass
        out = []
        lines = data.decode("utf-8", "replace").splitlines()
        for line in lines[:WITNESS_LINES]:
            step, _, label = line.partition("\t")
            try:
                out.append((int(step), label[:300]))
            except ValueError:
                out.append((None, label[:300]))
        if len(lines) > WITNESS_LINES or len(data) >= WITNESS_BYTES:  # the worker writes a few lines a call:
            out.append((None, self.WITNESS_FLOODED))                 # a flood hides what comes after it
        fd = self.info.get("witness") if isinstance(self.info, dict) else None
        try:
            held = isinstance(fd, int) and os.stat("/proc/%d/fd/%d" % (self.proc.pid, fd)).st_ino == \
                os.fstat(self.witness).st_ino
        except OSError:
            held = not os.path.exists("/proc/%d" % self.proc.pid)  # gone: nothing to tell
        if not held:
            out.append((None, self.WITNESS_CLOSED))
        return out

    def _send(self, obj, deadline, what, timeout=None, raw_json=False):
        if raw_json:  # the bootstrap frame: plain JSON, read before wire.py exists in the worker
            header = json.dumps(obj).encode()
            data = struct.pack(">QQ", len(header), 0) + header
        else:
            data = wire.frame(obj)
        view = memoryview(data)
        try:
            while view:
                _check_cancelled()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seconds = self.limits.startup_timeout if timeout is None else timeout
                    raise WorkerLost("timed out after %.3g s %s (the per-call time limit): the worker stopped "
                                     "reading its inputs (a thread that never lets go, or a blocked process?)"
                                     % (seconds, what))
                _, ready, _ = select.select([], [self.req_w], [], min(remaining, POLL))
                if ready:
                    try:
                        view = view[os.write(self.req_w, view):]
                    except BlockingIOError:
                        pass
                else:
                    self._check_memory(what)
        except (OSError, ValueError):  # a closed pipe (ValueError: select on a closed fd)
            raise WorkerLost(self._death("while receiving its inputs"))

    def _receive(self, want_id, deadline, what, timeout=None):
        def read(fd, n):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            while True:
                _check_cancelled()
                ready, _, _ = select.select([fd], [], [], min(remaining, POLL))
                if ready:
                    return os.read(fd, n)
                self._check_memory(what)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError

        while True:
            try:
                header, payload = wire.read_frame(self.resp_r, read)
                msg = wire.decode(header, payload)
            except TimeoutError:
                seconds = self.limits.startup_timeout if want_id is None else timeout
                raise WorkerLost("timed out after %.3g s %s (the per-call time limit): look for an "
                                 "infinite loop or very slow code" % (seconds, what))
            except EOFError:
                raise WorkerLost(self._death(what))
            except (wire.WireError, ValueError, OSError) as e:
                if "too large" in str(e):
                    raise WorkerLost("the values returned %s are too large to send back (over %d MB)"
                                     % (what, wire.MAX_PAYLOAD >> 20))
                raise WorkerLost("the worker sent malformed data %s (%s)" % (what, e))
            if want_id is None or (isinstance(msg, dict) and msg.get("id") == want_id):
                return msg
            # Every request is answered before the next is sent, and a worker that missed one is replaced: a
            # frame of another id is the student's, written to make the grader decode what it then drops.
            raise WorkerLost("the worker sent a frame that answers no request %s" % what)

    def _check_memory(self, what):
        extra = self.watchdog.over() if self.watchdog is not None else None
        if extra is not None:
            self.stop()
            raise WorkerLost("the worker was stopped %s: it used %d MB more than when it started, over the "
                             "memory limit of %d MB (AUTOGRADER_MEMORY_MB raises it): look for tensors "
                             "that grow without bound or far larger than the inputs"
                             % (what, extra >> 20, self.limits.memory_mb))

    def _death(self, what):
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        if code is None:
            return "the worker stopped answering %s" % what
        if code < 0:
            sig = -code
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            why = {signal.SIGXFSZ: " (the file-size limit of %d MB: AUTOGRADER_FSIZE_MB)" % self.limits.fsize_mb,
                   signal.SIGXCPU: " (the CPU-time limit)",
                   signal.SIGSEGV: " (a segmentation fault: ctypes, or memory exhausted inside a library?)",
                   signal.SIGKILL: " (out of memory, or killed by another process)"}.get(sig, "")
            return "the worker process was killed by %s %s%s" % (name, what, why)
        if self.watchdog is None:  # it never got as far as running student code
            return "the worker process exited with status %d %s, before any student code ran" % (code, what)
        return "the worker process exited with status %d %s (sys.exit or os._exit?)" % (code, what)


WITNESS_LINES, WITNESS_BYTES = 64, 64 << 10  # read per request: far more than one call ever records


def _witnessed(resp, seen):
    """Merge what the witness pipe saw into a response's violations ("load": the response's own; "call":
    each step's, by the step the worker named, else the last step's: the function under check)."""
    steps = resp.get("steps")
    for step, label in seen:
        if isinstance(steps, list) and steps:
            target = steps[step] if isinstance(step, int) and 0 <= step < len(steps) else steps[-1]
        elif isinstance(steps, list):
            continue
        else:
            target = resp
        if not isinstance(target, dict):
            continue
        if step is not None and step < 0 and steps is not None:
            continue  # an import's or an instructor test's record, sent late: not this call's
        known = target.get("violations")
        known = known if isinstance(known, list) else []
        if label not in known:
            target["violations"] = known + [label]


def _read_layers(flag_r):
    """The worker's report of its isolation layers (isolation.enter), or what its absence means."""
    os.set_blocking(flag_r, False)
    try:
        data = os.read(flag_r, 4096)
    except BlockingIOError:
        data = b""
    try:
        layers = json.loads(data.decode()) if data else None
    except ValueError:
        layers = None
    if not isinstance(layers, dict):
        return {"isolation": "not available: the worker did not report its layers"}
    return {str(k)[:60]: str(v)[:300] for k, v in list(layers.items())[:20]}


def killuser_processes(user):
    """SIGKILL every process of the sandbox user (daemons and fork loops included).

    A child that becomes the sandbox user calls kill(-1, SIGKILL): the kernel then signals every
    process that user owns in one sweep, which a fork loop cannot outrun. Repeated until none is
    left (checked through /proc).
    """
    uid, gid = user
    for _ in range(20):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            try:
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        if not user_processes(uid):
            return
        time.sleep(0.05)


SHARED_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/dev/mqueue")
_WORLD_WRITABLE = []


def world_writable_dirs():
    """Every world-writable folder of this host's file systems (found once per process: a student can
    only make new ones inside these, and those go with their parent's sweep)."""
    if not _WORLD_WRITABLE:
        skip = {"/proc", "/sys", "/dev"}
        found = []
        for top, dirs, _ in os.walk("/", onerror=lambda e: None):
            dirs[:] = [d for d in dirs if os.path.join(top, d) not in skip]
            for d in list(dirs):
                path = os.path.join(top, d)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_IWOTH:
                    found.append(path)
                    dirs.remove(d)  # its contents go with the sweep of it
        _WORLD_WRITABLE[:] = found or ["/tmp"]
    return list(_WORLD_WRITABLE)


IPC_RMID = 0


def remove_user_ipc(uid):
    """Remove the System V shared memory segments, message queues and semaphore sets `uid` owns or
    created (root only: read from /proc/sysvipc). Returns how many were removed."""
    libc = ctypes.CDLL(None, use_errno=True)
    removed = 0
    for kind, rm in (("shm", libc.shmctl), ("msg", libc.msgctl), ("sem", libc.semctl)):
        try:
            with open("/proc/sysvipc/" + kind) as f:
                head, *rows = f.read().splitlines()
        except OSError:
            continue
        cols = head.split()
        for row in rows:
            fields = dict(zip(cols, row.split()))
            try:
                ident = int(fields["shmid" if kind == "shm" else kind + "id"])
                owners = {int(fields["uid"]), int(fields["cuid"])}
            except (KeyError, ValueError):
                continue
            if uid in owners:
                removed += (rm(ident, 0, IPC_RMID, None) if kind == "sem" else rm(ident, IPC_RMID, None)) == 0
    return removed


def remove_user_files(uid, folders=SHARED_WRITABLE):
    """Delete what the sandbox uid left in the world-writable folders (links are not followed).

    Safe because the uid is the sandbox's own: nothing else owns files under it. Only folders
    the uid could write to are searched (world-writable ones), so this stays fast. Returns the
    number of entries removed.
    """
    removed = 0
    stack = [top for top in folders if os.path.isdir(top)]
    while stack:
        folder = stack.pop()
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if st.st_uid == uid:
                try:
                    if stat.S_ISDIR(st.st_mode):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        os.unlink(path)
                    removed += 1
                except OSError:
                    pass
            elif stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_IWOTH:
                stack.append(path)
    return removed


def user_processes(uid):
    """Live (non-zombie) processes owned by uid."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.stat("/proc/" + pid).st_uid != uid:
                    continue
                with open("/proc/%s/stat" % pid) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state not in ("Z", "X"):
                found.append(int(pid))
    return found
