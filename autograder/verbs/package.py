"""Gradescope's autograder zip (`make autograder`, `python -m autograder package`).

Gradescope unzips the zip into /autograder/source, runs `setup.sh` once when it builds the
autograder's image and `run_autograder` once per submission; both must sit at the zip's root.
The zip holds those two scripts (kept in gradescope/), the grading package, the reference
solutions, the pins setup.sh installs (requirements/grader.txt, the file `make setup` uses) and
the helper that lets the sandbox user start the venv's Python; course.toml (checked first: a
bad key stops the build, named) and instructor_tests/ when the kit has them. Never the kit's
tests or bug corpora, the student stubs, git's or a venv's files, caches or bytecode.

The build is deterministic: entries sorted by name, every timestamp 1980-01-01 00:00, modes
fixed (0644; 0755 for the two scripts) whatever the working tree's modes are (grading as root
makes the kit's folders unreadable to others), so the same sources give the same bytes.
"""
import os
import re
import stat
from dataclasses import dataclass

from ..engine import archive
from ..paths import DIST, KIT_ROOT

DEFAULT_OUTPUT = os.path.join(DIST, "autograder.zip")
SCRIPTS = {"setup.sh": "gradescope/setup.sh", "run_autograder": "gradescope/run_autograder"}  # zip root <- kit
PINS = "requirements/grader.txt"
REQUIRED = ("autograder", "solutions", PINS, "tools/worker_python_access.py")
OPTIONAL = ("pyproject.toml", "course.toml", "instructor_tests")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ipynb_checkpoints"}
SKIP_SUFFIXES = (".pyc", ".pyo", "~", ".swp", ".orig", ".rej")
FILE_MODE, SCRIPT_MODE = 0o644, 0o755
_INCLUDE = re.compile(r"^\s*(?:-r|--requirement|-c|--constraint)[\s=]+(\S+)")


class PackagingError(Exception):
    """The zip cannot be built (a required file is missing, a file is not regular, a bad course.toml)."""


@dataclass(frozen=True)
class Member:
    """One file of the zip: its name in the zip, where it comes from, its size in bytes."""

    arcname: str
    source: str
    size: int

    @property
    def executable(self):
        return self.arcname in SCRIPTS


def _skipped(name):
    return name.startswith(".") or name.endswith(SKIP_SUFFIXES)


def _files_under(root, rel):
    """Relative paths of the files in folder `rel`, caches and dotfiles left out."""
    out = []
    for dirpath, dirnames, filenames in os.walk(os.path.join(root, rel)):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
        for name in filenames:
            if not _skipped(name):
                out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return out


def _included_pins(root, rel, seen=None):
    """`rel` and the files it pulls in with -r/-c (paths relative to `root`)."""
    seen = seen if seen is not None else set()
    if rel in seen:
        return seen
    seen.add(rel)
    path = os.path.join(root, rel)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = _INCLUDE.match(line)
                if m:
                    target = os.path.normpath(os.path.join(os.path.dirname(rel), m.group(1)))
                    _included_pins(root, target, seen)
    return seen


def members(root=KIT_ROOT):
    """Every file of the zip, sorted by its name in the zip.

    Raises PackagingError when a required file or folder is missing or a file to pack is not
    a regular file (a link could point anywhere on the builder's machine).
    """
    pairs = {arc: rel for arc, rel in SCRIPTS.items()}
    for rel in REQUIRED + OPTIONAL:
        path = os.path.join(root, rel)
        if not os.path.lexists(path):
            if rel in REQUIRED:
                raise PackagingError("%s is missing: the autograder zip needs it" % rel)
            continue
        if rel == PINS:
            names = sorted(_included_pins(root, rel))
        elif os.path.isdir(path) and not os.path.islink(path):
            names = _files_under(root, rel)
        else:
            names = [rel]
        for name in names:
            pairs[name.replace(os.sep, "/")] = name
    out = []
    for arc in sorted(pairs):
        path = os.path.join(root, pairs[arc])
        try:
            st = os.lstat(path)
        except OSError:
            raise PackagingError("%s is missing: the autograder zip needs it" % pairs[arc])
        if not stat.S_ISREG(st.st_mode):
            raise PackagingError("%s is not a regular file (a link?): copy the file itself into the kit" % pairs[arc])
        out.append(Member(arc, path, st.st_size))
    return out


def check_course(root=KIT_ROOT, path=None):
    """Raise PackagingError when the kit's course.toml (or the one at `path`) would stop `grade` on Gradescope."""
    path = path or os.path.join(root, "course.toml")
    if not os.path.exists(path):
        return
    from .. import config

    try:
        config.load(path)
    except config.ConfigError as e:
        raise PackagingError(str(e))


def build(output=DEFAULT_OUTPUT, root=KIT_ROOT, config_path=None):
    """Write the autograder zip to `output` (atomically) and return its members. config_path: a course.toml to
    pack in place of the kit's (its track, points and limits are then the zip's)."""
    packed = members(root)
    check_course(root, config_path)
    if config_path:
        packed = [m for m in packed if m.arcname != "course.toml"] + [
            Member("course.toml", config_path, os.path.getsize(config_path))]
        packed.sort(key=lambda m: m.arcname)
    contents = []
    for m in packed:
        with open(m.source, "rb") as src:
            contents.append((m.arcname, src.read(), SCRIPT_MODE if m.executable else FILE_MODE))
    archive.write_zip(output, contents)
    return packed


def listing(packed, output):
    """What `build` packed, one member a line, for the terminal."""
    lines = ["%8d  %s%s" % (m.size, m.arcname, "  (executable)" if m.executable else "") for m in packed]
    lines.append("wrote %s: %d files, %d bytes before compression" % (
        output, len(packed), sum(m.size for m in packed)))
    return "\n".join(lines)
