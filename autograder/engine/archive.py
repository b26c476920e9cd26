"""Files written whole or not at all, and zips that are the same bytes for the same contents.

Shared by results.json (results.py), `make autograder` (packaging.py), `make student` (release.py)
and `make handouts` (handouts/build.py): a reader never sees half a file, and a rebuilt zip only
changes when what it holds changes.
"""
import os
import stat
import tempfile
import zipfile

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: every member gets it


def write_atomic(path, fill, mode=0o644):
    """Write `path` through a temporary file in its folder; fill(f) writes the bytes to f."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".%s-" % os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_zip(path, members):
    """A deterministic zip at `path`: members is [(name in the zip, bytes, Unix mode)], in order."""

    def fill(f):
        with zipfile.ZipFile(f, "w") as zf:
            for name, data, mode in members:
                info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
                info.create_system = 3  # Unix, so that unzip applies the mode
                info.external_attr = (stat.S_IFREG | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data, compresslevel=9)

    write_atomic(path, fill)
