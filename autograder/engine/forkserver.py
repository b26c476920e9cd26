"""Pay torch's import once per grading process, not once per worker (batch regrading).

    fs = forkserver.start()   # every sandbox.Worker started in this process now forks from it
    ...                       # grade as usual
    fs.stop()

A fresh worker spends most of its start-up importing torch (about 1 s of a 3 s grading here).
`start()` launches a zygote (zygote.py): a fresh interpreter, started with the workers' own clean
environment, that imports torch and the worker's code and then only forks. Each forked child
enters the sandbox exactly as a fresh worker does and serves one submission.

Isolation is unchanged: the zygote is not a copy of the grader (it holds no plan, no expected
answer, no result) and runs no student code, so every child starts from the same clean image
and holds nothing of another student. The child gets the same user, session, limits, network
namespace and environment as a fresh worker; its memory baseline counts the pages it shares with
the zygote in full (memory.py). If the zygote dies, workers are started fresh again.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time

from . import IMPORT_ROOT, launch  # standard library only: the zygote starts before the grader has imported torch

BOOT = "import sys; sys.path.insert(0, sys.argv[2]); from %s import zygote; " \
       "zygote.serve(int(sys.argv[1]), sys.argv[2])" % __package__



class ForkServer:
    """The zygote and the grader's side of its socket. wait=False returns at once: the zygote
    imports torch while the grader imports its own modules and builds its plan, and the first
    spawn() waits for it."""

    def __init__(self, startup_timeout=None, wait=True):
        if startup_timeout is None:  # as sandbox.Limits.from_env reads it (sandbox is not imported here: torch)
            startup_timeout = float(os.environ.get("AUTOGRADER_STARTUP_TIMEOUT") or launch.STARTUP_TIMEOUT)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = parent
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-B", "-c", BOOT, str(child.fileno()), IMPORT_ROOT],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(child.fileno(),), env=launch.worker_env("/"),
                start_new_session=True, close_fds=True)
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self.lock = threading.Lock()  # one spawn request at a time
        self.cond = threading.Condition()
        self.replies, self.exits = {}, {}
        self.next_id = 0
        self.alive = True  # until it fails to start, or stops
        self.ready = None  # None: not known yet; then True or False
        self.deadline = time.monotonic() + startup_timeout
        self.reader = None
        if wait and not self.wait_ready():
            raise RuntimeError("the fork server (a Python with torch preloaded) did not start")

    def wait_ready(self):
        """Whether the zygote is up (waiting for its first message the first time)."""
        if self.ready is None:
            self.sock.settimeout(max(0.1, self.deadline - time.monotonic()))
            try:
                self.ready = bool(json.loads(self.sock.recv(1 << 16) or b"{}").get("ready"))
            except (OSError, ValueError, AttributeError):
                self.ready = False
            self.sock.settimeout(None)
            if self.ready:
                self.reader = threading.Thread(target=self._read, daemon=True)
                self.reader.start()
            else:
                self.stop()
        return self.ready

    def _read(self):
        while True:
            try:
                msg = self.sock.recv(1 << 16)
            except OSError:
                msg = b""
            try:
                obj = json.loads(msg) if msg else None
            except ValueError:  # never from our zygote: treat it as gone
                obj = None
            with self.cond:
                if obj is None:
                    self.alive = False
                    self.cond.notify_all()
                    return
                if "exit" in obj:
                    self.exits[obj["exit"]] = obj["code"]
                else:
                    self.replies[obj["id"]] = obj["pid"]
                self.cond.notify_all()

    def spawn(self, fds, params, timeout=30.0):
        """Fork a worker with these five fds (request r, response w, output, layers report, witness)."""
        from .sandbox import WorkerLost

        with self.lock:
            if not self.wait_ready():
                raise WorkerLost("the fork server did not start")
            self.next_id += 1
            ident = self.next_id
            try:
                socket.send_fds(self.sock, [json.dumps(dict(params, id=ident)).encode()], list(fds))
            except OSError:
                self.alive = False
                raise WorkerLost("the fork server is gone")
            with self.cond:
                if not self.cond.wait_for(lambda: ident in self.replies or not self.alive, timeout) \
                        or ident not in self.replies:
                    self.alive = False  # a zygote that hangs once is not asked again: workers start fresh
                    raise WorkerLost("the fork server did not answer")
                pid = self.replies.pop(ident)
                self.exits.pop(pid, None)  # an unread exit of an earlier worker with the same pid
                return Forked(pid, self)

    def stop(self):
        self.alive = False
        sandbox = sys.modules.get(__package__ + ".sandbox")
        if sandbox is not None and sandbox.SPAWNER is self:
            sandbox.SPAWNER = None
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # the zygote exits when its socket closes
        except OSError:
            pass
        self.sock.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Forked:
    """A forked worker, with the part of subprocess.Popen's interface that sandbox.Worker uses."""

    def __init__(self, pid, server):
        self.pid, self.server, self.returncode = pid, server, None

    def poll(self):
        if self.returncode is None:
            with self.server.cond:
                self._update()
        return self.returncode

    def _update(self):
        if self.pid in self.server.exits:
            self.returncode = self.server.exits.pop(self.pid)
        elif not self.server.alive and not os.path.exists("/proc/%d" % self.pid):
            self.returncode = -9  # the zygote is gone and so is the worker: its status is lost

    def wait(self, timeout=None):
        end = None if timeout is None else time.monotonic() + timeout
        with self.server.cond:
            while True:
                self._update()
                if self.returncode is not None:
                    return self.returncode
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired("worker %d" % self.pid, timeout)
                self.server.cond.wait(0.1 if left is None else min(left, 0.1))


def start(wait=True, startup_timeout=None):
    """Start a fork server and make it the source of this process's workers. Returns it (stop() it).

    wait=False: return at once and let the zygote import torch in the background (`grade` does
    this first thing, so that the zygote is ready when the first worker is needed)."""
    server = ForkServer(startup_timeout, wait=wait)
    from . import sandbox

    sandbox.SPAWNER = server
    return server
