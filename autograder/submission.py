"""Find the student's files in a submission, vet them on the trusted side, copy them to scratch.

Nothing here imports or runs student code: files are read as bytes, decoded and parsed with
`ast` only, so a missing, empty, non-UTF-8 or syntactically broken file becomes a clear message
for that file's functions before any worker starts.
"""
import ast
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from typing import Optional

MAX_FILE_BYTES = 1 << 20
MAX_FILES = 64
SKIP_DIRS = {"__MACOSX", "__pycache__"}


@dataclass
class FileStatus:
    module: str  # e.g. "rnn_layers"
    path: Optional[str]  # where it was found, or None
    error: Optional[str]  # student-facing reason it cannot be graded, or None


def _candidates(root):
    """The submission folder itself, then its immediate subfolders (files one level down)."""
    yield root
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return
    for name in names:
        path = os.path.join(root, name)
        if name.startswith(".") or name in SKIP_DIRS:
            continue
        if os.path.isdir(path) and not os.path.islink(path):
            yield path


def vet(module, path):
    """Why the file at `path` cannot be imported, or None when it parses."""
    label = module + ".py"
    try:
        st = os.lstat(path)
    except OSError as e:
        return "%s could not be read: %s" % (label, e.strerror)
    if not stat.S_ISREG(st.st_mode):
        return "%s is not a regular file (a link or a folder?)" % label
    if st.st_size == 0:
        return "%s is empty: upload the file with your code in it" % label
    if st.st_size > MAX_FILE_BYTES:
        return "%s is %d bytes, over the %d-byte limit" % (label, st.st_size, MAX_FILE_BYTES)
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return ("%s is not UTF-8 text (byte 0x%02x at offset %d): save it as UTF-8 Python source, "
                "not a notebook, zip or PDF" % (label, data[e.start], e.start))
    if "\x00" in text:
        return "%s contains NUL bytes: it is not Python source" % label
    try:
        ast.parse(text, filename=label)
    except SyntaxError as e:
        line = (e.text or "").rstrip("\n")
        return "%s has a syntax error at line %s: %s%s" % (
            label, e.lineno, e.msg, ("\n    " + line.strip()) if line.strip() else "")
    except (RecursionError, MemoryError, ValueError) as e:
        return "%s could not be parsed: %s" % (label, type(e).__name__)
    return None


def locate(root, modules):
    """FileStatus for every module, looking in `root` and one folder below it."""
    out = {}
    if not os.path.isdir(root):
        return {m: FileStatus(m, None, "the submission folder %s does not exist" % root) for m in modules}
    for m in modules:
        found = None
        for folder in _candidates(root):
            path = os.path.join(folder, m + ".py")
            if os.path.lexists(path):
                found = path
                break
        if found is None:
            out[m] = FileStatus(m, None, "%s.py was not found in the submission (looked in the top "
                                         "folder and one folder below it)" % m)
        else:
            out[m] = FileStatus(m, found, vet(m, found))
    return out


def make_scratch(statuses, owner=None):
    """A fresh folder with copies of the student's .py files, for the worker to run in.

    Copies every regular .py file beside each found module (helpers the student wrote too);
    links are never followed. owner=(uid, gid) chowns it for the sandbox user.
    """
    scratch = tempfile.mkdtemp(prefix="ag-scratch-")
    folders = {os.path.dirname(s.path) for s in statuses.values() if s.path}
    copied = 0
    for folder in sorted(folders):
        for name in sorted(os.listdir(folder)):
            src = os.path.join(folder, name)
            dst = os.path.join(scratch, name)
            if not name.endswith(".py") or os.path.exists(dst) or copied >= MAX_FILES:
                continue
            st = os.lstat(src)
            if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
                continue
            shutil.copyfile(src, dst)
            copied += 1
    if owner is not None:
        os.chown(scratch, *owner)
        for name in os.listdir(scratch):
            os.chown(os.path.join(scratch, name), *owner)
    os.chmod(scratch, 0o700)
    return scratch
