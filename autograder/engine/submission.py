"""Find the student's files in a submission, vet them on the trusted side, copy them to scratch.

Nothing here imports or runs student code: files are read as bytes, decoded and parsed with
`ast` only, so a missing, empty, non-UTF-8 or syntactically broken file becomes a clear message
for that file's functions before any worker starts.

The scratch copy is put first on the worker's sys.path, so a student file named like a module the
worker's own code imports (`json.py`, `numpy.py`, `gradescope_utils.py`, `autograder.py`) would
replace that module there. Such files are refused (`shadowing`): never copied, and the student is
told which file and why.
"""
import ast
import functools
import os
import pkgutil
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from typing import Optional

from . import IMPORT_ROOT

MAX_FILE_BYTES = 1 << 20
MAX_FILES = 64
# relocate reads the submission's other files for a missing file's functions: it parses at most this many bytes
# of them (dense code parses at about 1 s per MiB, on the grader's own time), only files that name a function it
# looks for after "def".
RELOCATE_BYTES = 4 * MAX_FILE_BYTES
SKIP_DIRS = {"__MACOSX", "__pycache__"}
# The kit's own top-level names in the worker: its package, the reference solutions, and the
# modules the worker's bootstrap registers (sandbox.BOOTSTRAP).
# Both of the engine's package names (the kit's, the student release's), so that the public checker and
# Gradescope refuse the same files.
KIT_MODULES = tuple(dict.fromkeys((__package__.split(".")[0], "autograder", "checker", "solutions", "_ag_wire",
                                   "_ag_worker")))


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
        text = data.decode("utf-8-sig")  # a byte-order mark (editors' "UTF-8 with BOM") is fine for Python too
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


def top_level_functions(path):
    """The names of the functions defined at the top of the file at `path` (parsed, never run); empty when it
    cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            tree = ast.parse(f.read(), filename=os.path.basename(path))
    except (OSError, SyntaxError, UnicodeDecodeError, RecursionError, MemoryError, ValueError):
        return set()
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def relocate(root, statuses, functions):
    """Where each graded function is: ({function name: module}, {function name: note for the student}).

    A function's module is its registry file, unless that file is missing from the submission: then the
    first other .py file (the found registry files first, then the rest in name order, in the top folder and
    one folder below it) that defines the function at its top level holds it, as a CS231n-style
    rnn_layers.py holds the LSTM's functions. Such a file gets its FileStatus in `statuses` (vetted as any
    other), and the function a note saying where it was found. A function found nowhere stays with its
    missing file, whose error says so.
    """
    where = {fn.name: fn.file for fn in functions}
    notes = {}
    missing = {m for m, st in statuses.items() if st.path is None}
    lost = [fn for fn in functions if fn.file in missing]
    if not lost or not os.path.isdir(root):
        return where, notes
    found = [(m, st.path) for m, st in statuses.items() if st.path and not st.error]
    others = []
    known = importable_modules()
    for folder in _candidates(root):
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            path = os.path.join(folder, name)
            module = name[:-3]
            if (name.endswith(".py") and module.isidentifier() and module not in statuses
                    and not any(module == m for m, _ in others) and len(others) < MAX_FILES):
                others.append((module, path))
    defined, shadowed = {}, {}
    wanted = re.compile(rb"def\s+(%s)\b" % b"|".join(re.escape(fn.name.encode()) for fn in lost))
    spent = 0
    for module, path in found + others:
        if module not in statuses:
            try:
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_FILE_BYTES:
                    continue  # vet's refusals, before any read (a link, a FIFO)
                with open(path, "rb") as f:
                    data = f.read(MAX_FILE_BYTES + 1)
            except OSError:
                continue
            if not wanted.search(data):
                continue  # names none of the functions looked for: nothing to parse
            spent += len(data)
            if spent > RELOCATE_BYTES:
                break
        # (a file of the student's own that does not parse holds nothing graded: top_level_functions is empty)
        # a file named like an importable module is never copied to scratch (shadowing): only named in a note
        table = shadowed if module in known and module not in statuses else defined
        for name in top_level_functions(path):
            table.setdefault(name, (module, path) if table is defined else module)
    for fn in lost:
        if fn.name not in defined:
            if fn.name in shadowed:
                module = shadowed[fn.name]
                notes[fn.name] = ("%s is in %s.py, which has the name of the module %s (%s): rename the file (the "
                                  "submission has no %s.py). It was not used for grading."
                                  % (fn.name, module, module, known[module], fn.file))
            continue
        module, path = defined[fn.name]
        if module not in statuses:
            statuses[module] = FileStatus(module, path, vet(module, path))
        where[fn.name] = module
        notes[fn.name] = "%s was found in %s.py (the submission has no %s.py)" % (fn.name, module, fn.file)
    return where, notes


# --------------------------------------------------------------------------- shadowed modules
def _worker_sys_path():
    """The sys.path of the worker's interpreter: `sys.executable -I` (sandbox.py, forkserver.py).

    Asked of that interpreter itself, so that what this process added (the current folder, the
    kit's folder, PYTHONPATH, pytest's folders) does not count and .pth files do. Should that
    fail, this process's sys.path without those entries.
    """
    try:
        out = subprocess.run([sys.executable, "-I", "-c", "import sys; print('\\n'.join(sys.path))"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        return [p for p in out.split("\n") if p]
    except (OSError, subprocess.SubprocessError):
        ours = {"", os.getcwd(), IMPORT_ROOT} | set(os.environ.get("PYTHONPATH", "").split(os.pathsep))
        return [p for p in sys.path if p not in ours and os.path.abspath(p) not in ours]


def _top_level_names(folder):
    """Every name `import NAME` finds in `folder`: modules, packages, namespace packages."""
    names = {m.name for m in pkgutil.iter_modules([folder])}
    try:
        entries = os.listdir(folder)
    except OSError:
        return names
    return names | {n for n in entries if n.isidentifier() and os.path.isdir(os.path.join(folder, n))}


def _kind(folder):
    """What a folder of sys.path holds, for the student: "standard library" or "installed package"."""
    real = os.path.realpath(folder)
    parts = real.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return "installed package"
    stdlib = os.path.realpath(sysconfig.get_path("stdlib"))
    if real.endswith(".zip") or real == stdlib or real.startswith(stdlib + os.sep):
        return "standard library"
    return "installed package"


@functools.lru_cache(maxsize=None)
def importable_modules():
    """{top-level module name: what it is} for every module the worker's interpreter can import.

    The standard library, every module and package on the worker's sys.path (site-packages), and
    the kit's own names. Computed once per process.
    """
    out = {}
    for folder in _worker_sys_path():
        for name in _top_level_names(folder):
            out[name] = _kind(folder)
    for name in set(sys.stdlib_module_names) | set(sys.builtin_module_names):
        out[name] = "standard library"
    for name in KIT_MODULES:
        out[name] = "the grader's own code"
    return out


def shadowing(statuses, graded=()):
    """{file name: student-facing reason} for the submission's .py files that make_scratch refuses.

    A .py file beside a found module is refused when its module name is one the worker's own code
    may import (importable_modules): in the scratch folder, first on sys.path, it would replace
    that module. The graded files (statuses, and graded: the plan's files) are never refused.
    """
    graded = set(statuses) | set(graded)
    known = importable_modules()
    out = {}
    for folder in _scratch_sources(statuses):
        for name in sorted(os.listdir(folder)):
            module = name[:-3]
            if name.endswith(".py") and module in known and module not in graded and name not in out:
                out[name] = ("%s has the name of the module %s (%s), which the grader's own code may import: "
                             "rename it (and your imports of it). It was not used for grading."
                             % (name, module, known[module]))
    return out


def _scratch_sources(statuses):
    """The folders whose .py files go to scratch: those of the found modules, sorted."""
    return sorted({os.path.dirname(s.path) for s in statuses.values() if s.path})


def make_scratch(statuses, owner=None, graded=()):
    """A fresh folder with copies of the student's .py files, for the worker to run in.

    Copies every regular .py file beside each found module (helpers the student wrote too),
    except those `shadowing` refuses; links are never followed. owner=(uid, gid) chowns it for
    the sandbox user. graded: as shadowing's.
    """
    scratch = tempfile.mkdtemp(prefix="ag-scratch-")
    refused = shadowing(statuses, graded)
    copied = 0
    for folder in _scratch_sources(statuses):
        for name in sorted(os.listdir(folder)):
            src = os.path.join(folder, name)
            dst = os.path.join(scratch, name)
            if not name.endswith(".py") or name in refused or os.path.exists(dst) or copied >= MAX_FILES:
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
