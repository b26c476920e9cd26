"""When run as root, make sure the sandbox user can start this venv's Python.

The grader runs student code as an unprivileged user when it runs as root (as on Gradescope).
That user must be able to execute the interpreter and read the standard library. A Python
installed under a private home (pyenv under /root, mode 700) is not reachable: this script
adds only the search bit (o+x, no listing) to the directories in the way, and says so.
"""
import os
import stat
import sys
import sysconfig


def blocking_dirs(path):
    """Directories above `path` that others cannot traverse."""
    out = []
    path = os.path.realpath(path)
    parts = path.split(os.sep)
    for i in range(2, len(parts)):
        d = os.sep.join(parts[:i]) or os.sep
        mode = os.stat(d).st_mode
        if not mode & stat.S_IXOTH:
            out.append(d)
    return out


def main():
    if os.geteuid() != 0:
        return 0
    targets = [sys.executable, sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"]]
    dirs = sorted({d for t in targets for d in blocking_dirs(t)})
    for d in dirs:
        mode = os.stat(d).st_mode
        os.chmod(d, stat.S_IMODE(mode) | stat.S_IXOTH)
        print("worker_python_access: added o+x (traverse only) to %s so that the grader's "
              "unprivileged sandbox user can run %s" % (d, os.path.realpath(sys.executable)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
