"""The kernel's isolation layers around a worker, entered in its process before it runs anything.

`enter` runs in the freshly forked worker (Popen's preexec_fn, or the zygote's child: one thread in
both cases), before it drops to the sandbox uid; `confine` runs in the worker once Python, torch
and CUDA are loaded, just before the first student file is imported. Each layer is tried on its
own, so that a kernel (or a container) that refuses one still gets the others, and each reports
"active" or "not available: <why>": the grader shows the list to instructors in every results.json
and in grade-batch's summary.

| layer | what it stops |
|---|---|
| sandbox uid (root) / user namespace (not root) | signals to, and files of, the grader and other students |
| network namespace | the network, loopback and abstract Unix sockets included |
| IPC namespace | System V shared memory, queues and semaphores, POSIX queues, outliving the worker or read by the next |
| mount namespace | private empty /tmp, /var/tmp, /dev/shm, /run/lock (sized tmpfs, gone with the worker); the folders in `private` (the kit's secrets, the class, the outputs) covered by an empty read-only tmpfs; every other file system read-only |
| seccomp (libseccomp) | creating processes (fork, vfork, clone without CLONE_THREAD, clone3, exec), new threads on CPU runs, System V and POSIX IPC, Unix sockets, ptrace and process_vm_*, mounts and namespaces, io_uring, bpf, perf events, keyrings, userfaultfd, signals to any process but itself |
| parent-death signal | a worker outliving the grader (or the zygote) that started it |

Without root, the user namespace is what makes the rest possible: the worker keeps the
instructor's uid (mapped to itself), gains the right to build its own namespaces, and drops every
capability before student code runs. Where not even that is allowed (some clusters disable user
namespaces), `available()` says so and the grader refuses to run student code unless told to by
name (`--unsafe-no-isolation`).
"""
import ctypes
import errno
import json
import os
import platform
import site
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWIPC, CLONE_NEWNET = 0x20000, 0x10000000, 0x08000000, 0x40000000
CLONE_THREAD = 0x10000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 4096, 16384, 1 << 18
AT_FDCWD, AT_RECURSIVE, MOUNT_ATTR_RDONLY = -100, 0x8000, 1
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (a syscall added after 5.0)
SYS_CAPSET = {"x86_64": 126, "aarch64": 91}.get(platform.machine())
O_PATH = getattr(os, "O_PATH", 0o10000000)

# The world-writable folders every worker gets a private, empty, sized copy of (mount namespace).
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
ACTIVE = "active"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.syscall.restype = ctypes.c_long


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _fail(what):
    e = ctypes.get_errno()
    return "not available: %s failed (%s)" % (what, errno.errorcode.get(e, str(e)))


def _mount(source, target, fstype, flags, data=None):
    enc = (lambda s: s.encode() if isinstance(s, str) else s)
    if _libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount %s on %s: %s" % (fstype or source, target, os.strerror(e)))


def _mount_setattr(path, attr_set=0, attr_clr=0, recursive=False):
    attr = _MountAttr(attr_set, attr_clr, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    if _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), flags, ctypes.byref(attr),
                     ctypes.sizeof(attr)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "mount_setattr %s: %s" % (path, os.strerror(e)))


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def interpreter_paths():
    """What the worker's Python needs to see wherever it lies (under /tmp, say): its prefixes,
    site-packages and the folder of its executable."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    try:
        paths.update(site.getsitepackages())
    except AttributeError:
        pass
    return sorted(p for p in paths if p and os.path.isdir(p))


def _under(path, folder):
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _private_tmp(scratch, keep, tmpfs_mb):
    """An empty, sized tmpfs on each world-writable folder, with the scratch folder and the
    interpreter's own folders (when they lie under one) bound back at the same paths."""
    for top in PRIVATE_TMP:
        if not os.path.isdir(top) or os.path.islink(top):
            continue
        real = os.path.realpath(top)
        back = [p for p in [scratch] + list(keep) if _under(os.path.realpath(p), real)]
        fds = [(p, os.open(p, O_PATH | os.O_DIRECTORY)) for p in back]
        try:
            size = ",size=%dm" % tmpfs_mb if tmpfs_mb else ""
            _mount("tmpfs", real, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777" + size)
            for path, fd in fds:
                target = os.path.realpath(path) if path != scratch else path
                os.makedirs(target, exist_ok=True)
                _mount("/proc/self/fd/%d" % fd, target, None, MS_BIND | MS_REC)
        finally:
            for _, fd in fds:
                os.close(fd)


def _private_scratch(scratch, tmpfs_mb, owner):
    """The worker's folder becomes a sized tmpfs holding copies of the submission's files: nothing the
    worker writes reaches the host's disk or memory beyond that size, and it is gone with the worker."""
    real = os.open(scratch, O_PATH | os.O_DIRECTORY)
    try:
        size = ",size=%dm" % tmpfs_mb if tmpfs_mb else ""
        _mount("tmpfs", scratch, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700" + size)
        here = "/proc/self/fd/%d" % real
        for name in os.listdir(here):
            src = os.path.join(here, name)
            if os.path.isfile(src) and not os.path.islink(src):
                with open(src, "rb") as f, open(os.path.join(scratch, name), "xb") as g:
                    g.write(f.read())
        if owner is not None:
            for path in [scratch] + [os.path.join(scratch, n) for n in os.listdir(scratch)]:
                os.chown(path, *owner)
    finally:
        os.close(real)


def _cover(paths, scratch):
    """An empty read-only tmpfs over each folder of `paths` (never one holding the scratch)."""
    for path in sorted(set(paths)):
        if os.path.isdir(path) and not os.path.islink(path) and not _under(scratch, path):
            _mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=000")


def _drop_capabilities():
    """No capability left in any set (the user-namespace case: the worker keeps its uid)."""
    for cap in range(64):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    if SYS_CAPSET is None:
        raise OSError(errno.ENOSYS, "capset: unknown architecture")
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    if _libc.syscall(SYS_CAPSET, ctypes.byref(header), ctypes.byref(data)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "capset: %s" % os.strerror(e))


def enter(user, scratch, private=(), tmpfs_mb=0):
    """Put this (single-threaded, just forked) process into its namespaces, drop to `user`.

    user: (uid, gid) of the sandbox when the grader is root, else None (a user namespace keeps
    this uid). scratch: the worker's folder (stays writable). private: folders to cover.
    tmpfs_mb: size of each private tmpfs (0: the kernel's default). Returns {layer: status}.
    Raises only when dropping to `user` fails (the caller must not run student code then).
    """
    layers = {}
    root = user is not None
    # Inherited from a grader (or zygote) that closed itself (not_dumpable): this process's own /proc
    # files, which the bind mounts below go through, would be closed to it too.
    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    if not root:
        uid, gid = os.getuid(), os.getgid()
        status = _unshare(CLONE_NEWUSER, "user")
        if status != ACTIVE:
            layers["user namespace"] = status
            for name in ("network namespace", "IPC namespace", "mount namespace"):
                layers[name] = "not available: needs a user namespace when not root"
            layers["parent-death signal"] = _pdeathsig()
            return layers
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", "%d %d 1" % (uid, uid))
            _write("/proc/self/gid_map", "%d %d 1" % (gid, gid))
            layers["user namespace"] = ACTIVE
        except OSError as e:
            layers["user namespace"] = "not available: uid map (%s)" % e.strerror
    for name, flag, ns in (("network namespace", CLONE_NEWNET, "net"), ("IPC namespace", CLONE_NEWIPC, "ipc"),
                           ("mount namespace", CLONE_NEWNS, "mnt")):
        layers[name] = _unshare(flag, ns)
    if layers["mount namespace"] == ACTIVE:
        try:
            _mount(None, "/", None, MS_REC | MS_PRIVATE)
            try:
                _mount_setattr("/", attr_set=MOUNT_ATTR_RDONLY, recursive=True)
                readonly = ACTIVE
            except OSError as e:
                readonly = "not available: %s" % e.strerror
            _private_tmp(scratch, interpreter_paths(), tmpfs_mb)
            _private_scratch(scratch, tmpfs_mb, user)
            _cover(private, scratch)
            layers["read-only file systems"] = readonly
        except OSError as e:
            layers["mount namespace"] = "not available: %s" % e
    if not os.path.isdir(scratch):  # a mount namespace half made: never run student code in it
        raise OSError(errno.ENOENT, "the worker's folder %s is not reachable in its mount namespace (%s)"
                      % (scratch, layers.get("mount namespace")))
    if root:
        os.setgroups([])
        os.setgid(user[1])
        os.setuid(user[0])
    else:
        try:
            _drop_capabilities()
        except OSError as e:
            layers["user namespace"] = "not available: %s" % e
    layers["parent-death signal"] = _pdeathsig()
    return layers


def _namespace(kind):
    try:
        return os.stat("/proc/self/ns/" + kind).st_ino
    except OSError:
        return None


def _unshare(flag, kind):
    """"active" only when this process is now in a namespace of its own: never mount (or trust a layer)
    on the word of a call that changed nothing."""
    before = _namespace(kind)
    if _libc.unshare(ctypes.c_int(flag)) != 0:
        return _fail("unshare")
    if before is None or _namespace(kind) == before:
        return "not available: unshare left this process in the namespace it had"
    return ACTIVE


def _pdeathsig():
    """SIGKILL when the process that started this one ends (set after the uid change, which clears it)."""
    if _libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0) != 0:
        return _fail("prctl(PR_SET_PDEATHSIG)")
    return ACTIVE


def not_dumpable():
    """This process's memory and /proc files closed to processes of the same uid (the grader
    without root shares its uid with the workers)."""
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


# --------------------------------------------------------------------------- seccomp
DENY_ALWAYS = ("fork", "vfork", "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev",
               "shmget", "shmat", "msgget", "semget", "mq_open", "mq_timedsend", "mq_timedreceive",
               "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "open_tree", "move_mount",
               "fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr", "io_uring_setup", "io_uring_enter",
               "io_uring_register", "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd",
               "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "tkill", "kcmp", "name_to_handle_at",
               "open_by_handle_at", "init_module", "finit_module", "delete_module", "kexec_load", "reboot",
               "swapon", "swapoff", "acct", "quotactl",
               # memory no limit counts (never mapped, it is in no RSS), and other processes' resources
               "memfd_create", "memfd_secret", "ioprio_set", "process_madvise", "process_mrelease")
# Calls that name another process by its first argument (0: the caller): without root the grader and the
# other students' workers share the worker's uid, and the kernel lets that uid change their limits,
# priority, CPUs and memory placement.
OTHER_PROCESS = ("prlimit64", "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr",
                 "migrate_pages", "move_pages")


SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_RESTRICT_SELF = 444, 446  # every architecture
LANDLOCK_CREATE_RULESET_VERSION = 1
# File-system rights the worker never needs (making sockets, pipes, devices in a folder): handled and
# granted nowhere. What the domain is for is its other effect: a process in a Landlock domain cannot
# ptrace, or read the /proc files (mem, environ, fd, maps) of, a process outside it, such as another
# student's worker running as the same uid (grading without root); the grader, outside every domain,
# still reads the worker's.
LANDLOCK_FS = (1 << 6) | (1 << 9) | (1 << 10) | (1 << 11)  # MAKE_CHAR, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK
LANDLOCK_SCOPE = 0x1 | 0x2  # ABI 6: abstract Unix sockets and signals outside the domain


def landlock():
    """Put this process in a Landlock domain of its own. Returns the layer's status."""
    abi = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, 0, LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 1:
        return _fail("landlock_create_ruleset")
    attr = (ctypes.c_uint64 * 3)(LANDLOCK_FS, 0, LANDLOCK_SCOPE if abi >= 6 else 0)
    size = 24 if abi >= 6 else 8  # the fields this kernel knows
    fd = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), size, 0)
    if fd < 0:
        return _fail("landlock_create_ruleset")
    try:
        _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if _libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, fd, 0) != 0:
            return _fail("landlock_restrict_self")
    finally:
        os.close(fd)
    return ACTIVE


def confine(threads=False):
    """The worker's last layers, loaded just before the first student file: Landlock, then the seccomp
    filter (libseccomp through pyseccomp). Returns {layer: status}.

    threads: whether new threads stay allowed (CUDA runs: the driver and autograd's device
    threads need them); on CPU runs a student call starts no thread, so every operator it runs is
    on the thread the grader's operator observer watches.
    """
    return {"Landlock": landlock(), "seccomp": _seccomp(threads)}


def _seccomp(threads):
    try:
        import pyseccomp as sc
    except (ImportError, OSError, AttributeError) as e:  # no libseccomp on this host
        return "not available: pyseccomp/libseccomp (%s)" % e
    try:
        eperm = sc.ERRNO(errno.EPERM)
        f = sc.SyscallFilter(sc.ALLOW)
        for name in DENY_ALWAYS:
            try:
                f.add_rule(eperm, name)
            except (OSError, ValueError, RuntimeError):  # a syscall this architecture does not have
                continue
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # its flags sit in memory: glibc falls back to clone
        if threads:  # clone without CLONE_THREAD is a new process
            f.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
        else:
            f.add_rule(eperm, "clone")
        for name in ("socket", "socketpair"):
            f.add_rule(eperm, name, sc.Arg(0, sc.EQ, 1))  # AF_UNIX: no socket reached by path
        for name in OTHER_PROCESS:
            f.add_rule(eperm, name, sc.Arg(0, sc.NE, 0))
        f.add_rule(eperm, "setpriority", sc.Arg(1, sc.NE, 0))  # setpriority(which, who, prio)
        pid = os.getpid()  # signals: to itself only (raise and abort use tgkill on its own pid)
        for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
            f.add_rule(eperm, name, sc.Arg(0, sc.NE, pid))
        f.set_attr(sc.Attr.CTL_NNP, 1)
        f.load()
    except Exception as e:  # the kernel refused the filter (an older kernel, a container's own policy)
        return "not available: %s: %s" % (type(e).__name__, e)
    return ACTIVE


def combine(a, b):
    """Two reports of layers as one: a layer is active only where it was active in both."""
    out = dict(a)
    for name, status in b.items():
        if out.get(name, ACTIVE) == ACTIVE:
            out[name] = status
    return out


def describe(layers):
    """One line per layer, for results.json and the terminal."""
    return "\n".join("%s: %s" % kv for kv in layers.items())


def dumps(layers):
    return json.dumps(layers)[:3500].encode()
