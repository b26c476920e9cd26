"""The zygote: a pre-imported interpreter that forks the sandboxed workers (see forkserver.py).

Runs in a process of its own, started by the grader as a fresh interpreter: it imports torch and
the worker's code once, then for each request forks a child that enters the sandbox exactly as a
freshly started worker does (`sandbox.enter_sandbox`: own session, sandbox user, no network,
limits) and serves the submission (`worker.main`). It never receives student data, inputs or
expected answers, and never runs student code itself: each child starts from the same clean
image, holding nothing of the grader or of another student.

It is the children's parent and a child subreaper, so it also reaps whatever a student's code
forked and orphaned. It tells the grader each worker's pid and, when a worker ends, its exit code.

Protocol on a SOCK_SEQPACKET socket (one JSON object per message):
    <- {"ready": true}                                   once torch is imported
    -> {"id": k, "scratch", "user": [uid, gid] | null, "nproc", "fsize_mb", "data_mb", "cuda", "env"}
       with five fds attached: request pipe (read), response pipe (write), output, layers report,
       witness (the operator observer's record, worker.py)
    <- {"id": k, "pid": p}
    <- {"exit": p, "code": c}                            c as subprocess's returncode (-signal)
"""
import ctypes
import json
import os
import select
import signal
import socket
import sys

PR_SET_CHILD_SUBREAPER = 36


def serve(sock_fd, import_root):
    import torch  # noqa: F401  (the point of the zygote: paid once)

    from . import isolation, sandbox, wire, worker

    sys.modules["_ag_wire"] = wire
    sys.modules["_ag_isolation"] = isolation
    worker.preload()  # once for every child, before any student path exists
    isolation.not_dumpable()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        libc.prctl(isolation.PR_SET_PDEATHSIG, 9, 0, 0, 0)  # it goes with the grader that started it
    except Exception:
        pass
    sock = socket.socket(fileno=sock_fd)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *a: None)
    workers = set()
    try:
        sock.send(json.dumps({"ready": True}).encode())
    except OSError:  # the grader stopped before needing a worker
        os._exit(0)
    while True:
        try:
            ready, _, _ = select.select([sock, wake_r], [], [])
        except InterruptedError:
            continue
        if wake_r in ready:
            os.read(wake_r, 4096)
        if sock in ready:
            try:
                msg, fds, _, _ = socket.recv_fds(sock, 1 << 16, 5)
            except OSError:
                msg, fds = b"", []
            if not msg:  # the grader is gone
                os._exit(0)
            req = json.loads(msg)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(req, fds, import_root, sandbox, worker)
            for fd in fds:
                os.close(fd)
            workers.add(pid)
            sock.send(json.dumps({"id": req["id"], "pid": pid}).encode())
        while True:  # reap every ended child (orphans of student code too); report the workers
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in workers:
                workers.discard(pid)
                sock.send(json.dumps({"exit": pid, "code": os.waitstatus_to_exitcode(status)}).encode())


def _child(req, fds, import_root, sandbox, worker):
    """The forked worker: same start as a fresh one (sandbox.Worker.start + worker.BOOTSTRAP)."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        req_r, resp_w, out_w, flag_w, witness_w = fds
        os.setsid()
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        user = tuple(req["user"]) if req["user"] else None
        sandbox.enter_sandbox(user, req["nproc"], req["fsize_mb"], flag_w, req["scratch"], req["private"],
                              req["tmpfs_mb"])
        keep = {0, 1, 2, req_r, resp_w, witness_w}
        for name in os.listdir("/proc/self/fd"):  # the zygote's socket and pipes included
            if int(name) not in keep:
                try:
                    os.close(int(name))
                except OSError:
                    pass
        os.chdir(req["scratch"])
        os.environ.clear()
        os.environ.update(req["env"])
        import tempfile

        tempfile.tempdir = None
        sys.path[:] = [p for p in sys.path if p != import_root]
        worker.main(req_r, resp_w, req["scratch"], req["data_mb"], req["cuda"], witness_w)
    finally:
        os._exit(70)
