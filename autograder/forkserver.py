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

from . import sandbox

KIT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOT = "import sys; sys.path.insert(0, sys.argv[2]); from autograder import zygote; " \
       "zygote.serve(int(sys.argv[1]), sys.argv[2])"


class ForkServer:
    def __init__(self, startup_timeout=90.0):
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = parent
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-B", "-c", BOOT, str(child.fileno()), KIT_ROOT],
            stdin=subprocess.DEVNULL, pass_fds=(child.fileno(),), env=sandbox.worker_env("/"),
            start_new_session=True, close_fds=True)
        child.close()
        self.lock = threading.Lock()  # one spawn request at a time
        self.cond = threading.Condition()
        self.replies, self.exits = {}, {}
        self.next_id = 0
        self.alive = False
        self.sock.settimeout(startup_timeout)
        try:
            ready = json.loads(self.sock.recv(1 << 16) or b"{}")
        except (OSError, ValueError):
            ready = {}
        self.sock.settimeout(None)
        if not ready.get("ready"):
            self.stop()
            raise RuntimeError("the fork server (a Python with torch preloaded) did not start")
        self.alive = True
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            try:
                msg = self.sock.recv(1 << 16)
            except OSError:
                msg = b""
            with self.cond:
                if not msg:
                    self.alive = False
                    self.cond.notify_all()
                    return
                obj = json.loads(msg)
                if "exit" in obj:
                    self.exits[obj["exit"]] = obj["code"]
                else:
                    self.replies[obj["id"]] = obj["pid"]
                self.cond.notify_all()

    def spawn(self, fds, params, timeout=30.0):
        """Fork a worker with these four fds (request r, response w, output, network flag)."""
        with self.lock:
            self.next_id += 1
            ident = self.next_id
            try:
                socket.send_fds(self.sock, [json.dumps(dict(params, id=ident)).encode()], list(fds))
            except OSError:
                self.alive = False
                raise sandbox.WorkerLost("the fork server is gone")
            with self.cond:
                if not self.cond.wait_for(lambda: ident in self.replies or not self.alive, timeout) \
                        or ident not in self.replies:
                    raise sandbox.WorkerLost("the fork server did not answer")
                return Forked(self.replies.pop(ident), self)

    def stop(self):
        self.alive = False
        if sandbox.SPAWNER is self:
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


def start():
    """Start a fork server and make it the source of this process's workers. Returns it (stop() it)."""
    server = ForkServer()
    sandbox.SPAWNER = server
    return server
