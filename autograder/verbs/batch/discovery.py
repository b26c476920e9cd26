"""What a grade-batch DIR holds: the submissions, who they belong to, and the bad inputs.

DIR is one of (detected, and said):
- a Gradescope "Export Submissions" folder: `submission_metadata.yml` beside one folder per
  submission (`submission_123456/`, the student's files in it or one folder below); students are
  named by sid, else email, else name (a group's submitters joined with "+"), else the folder;
- a folder of per-student folders (named by the folder);
- a folder of per-student zips (named by the zip, without `.zip`), or a mix of both. Zips are
  read whole before anything runs (at most MAX_ZIP_MEMBERS members and MAX_ZIP_BYTES once
  unpacked; links are skipped; a member whose path leaves its folder, members that conflict (a
  file that another member's path uses as a folder, one path twice with different contents), a
  path too deep or too long to unpack, an unreadable, encrypted or corrupt zip is a bad input) and
  unpacked into a private temporary folder (0700) while graded.

Submission folders are walked iteratively through folder descriptors (no recursion, no path
longer than one name), at most MAX_WALK files and MAX_DEPTH levels deep: a folder nested a
thousand levels deep is looked at like any other.

Bad inputs are reported (summary.md) and the batch goes on:
- an empty submission (no file at all), a zip that cannot be read, a metadata entry without its
  folder, a link where a submission should be;
- a duplicate: the same student twice (the same sid or email in the metadata, or `alice/` and
  `alice.zip`). One is graded: in a Gradescope export the latest `:created_at:`, otherwise the
  folder rather than the zip; the other is listed with the reason (and whether its files are the
  same). Byte-identical submissions of different students are not bad input: each is graded,
  and the summary lists them under "identical submissions" for the instructor to look at.

Nothing here runs student code: `discover` only reads DIR (batch.py grades what it finds).
"""
import hashlib
import os
import re
import stat
import zipfile
from dataclasses import asdict, dataclass, field
from typing import List, Optional

from ...engine import submission

METADATA = "submission_metadata.yml"
MAX_ZIP_MEMBERS = 2000
MAX_ZIP_BYTES = 64 << 20
MAX_WALK = 5000  # files looked at in one submission folder
MAX_DEPTH = 64  # folders nested deeper than this in a submission are not looked into (grading reads two levels)
MAX_MEMBER_PATH = 1024  # characters of a zip member's path (it is unpacked under a temporary folder)
MAX_NAME_BYTES = 255  # one file or folder name, as the file system allows
SKIP_NAMES = submission.SKIP_DIRS | {".DS_Store"}


class BatchError(Exception):
    """A problem with the batch as a whole (bad DIR, options that do not match OUTDIR): exit 2."""


class BadInput(Exception):
    """One submission cannot be graded; the message says why."""


@dataclass
class Item:
    """One submission found in DIR."""

    key: str  # the student's name in OUTDIR/results/ and the CSV (unique among graded items)
    source: str  # its folder or zip, relative to DIR
    kind: str  # "folder" or "zip"
    sid: str = ""
    email: str = ""
    name: str = ""
    created_at: str = ""
    gradescope_score: Optional[float] = None
    tokens: List[str] = field(default_factory=list)  # who it belongs to (duplicates share one)
    problem: Optional[str] = None  # why it is a bad input
    duplicate_of: Optional[str] = None  # the key of the graded submission of the same student
    digest: Optional[str] = None  # of its .py files (identical submissions)

    def public(self):
        d = asdict(self)
        del d["tokens"], d["digest"]
        return d


@dataclass
class Discovery:
    root: str
    kind: str  # said to the user
    items: List[Item]  # every submission, bad ones included, sorted by key then source
    notes: List[str]
    identical: List[List[str]]  # keys of graded items with the same .py files

    @property
    def names(self):
        """Every submission's name in DIR, sorted (what the shards' seed derives from)."""
        return sorted(it.source for it in self.items)


KEY_CHARS = 100  # a key's length before its hash: results/<key>/ stays far under a file name's 255 bytes


def safe_key(text):
    """A folder name made from a student's name, sid or email: its letters, digits and ._@+- kept, and where
    anything else was changed or cut, a hash of the whole text added (`Zoë` -> `Zo-1c5e0d`), so that a
    student's key depends on their own name alone: another student whose name makes the same letters
    (`Zoé`) never takes it over, whoever arrives first."""
    text = str(text)
    key = re.sub(r"[^A-Za-z0-9._@+-]+", "_", text).strip("._")
    return key if key == text and len(key) <= KEY_CHARS else _hashed(key, text)


def _hashed(key, text):
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    return "%s-%s" % (key[:KEY_CHARS] or "_", digest)


def _yaml():
    try:
        import yaml
    except ImportError:
        raise BatchError("reading %s needs PyYAML, which is not installed: pip install pyyaml "
                         "(requirements/handouts.txt pins it)" % METADATA)
    return yaml


def _get(d, key):
    """Gradescope writes Ruby symbols (`:sid:`); other tools plain keys."""
    if not isinstance(d, dict):
        return None
    return d.get(":" + key, d.get(key))


def shard_of(key, n):
    """The shard (1..N) of the student `key` (grade-batch --shard K/N): from a hash of the key alone, so that a
    student's shard never depends on who else is in DIR (a late submission moves nobody)."""
    return int(hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16], 16) % n + 1


def discover(root, modules=()):
    """Every submission in `root`, checked (empty, unreadable, duplicate) but not graded.

    modules: the graded files' module names; a DIR that holds one of them itself is one submission,
    not a folder of them, and is refused.
    """
    if not os.path.isdir(root):
        raise BatchError("%s is not a folder" % root)
    notes = []
    if os.path.isfile(os.path.join(root, METADATA)):
        items = _gradescope_items(root, notes)
        kind = "a Gradescope export (%s)" % METADATA
    else:
        own = sorted(m + ".py" for m in modules if os.path.exists(os.path.join(root, m + ".py")))
        if own:
            raise BatchError("%s holds %s itself: it looks like one submission, not a folder of submissions "
                             "(grade it with `python -m autograder grade %s`)" % (root, ", ".join(own), root))
        items = _plain_items(root, notes)
        kinds = sorted({it.kind for it in items if it.kind in ("folder", "zip")})
        kind = {("folder",): "a folder of per-student folders", ("zip",): "a folder of per-student zips",
                ("folder", "zip"): "a folder of per-student folders and zips"}.get(tuple(kinds), "an empty folder")
    for it in items:
        if it.problem is None:
            _vet(root, it)
    _resolve_duplicates(items, gradescope="Gradescope" in kind)
    items.sort(key=lambda it: (it.key, it.source))
    groups = {}
    for it in items:
        if it.problem is None and it.digest is not None:
            groups.setdefault(it.digest, []).append(it.key)
    identical = sorted(sorted(g) for g in groups.values() if len(g) > 1)
    return Discovery(root, kind, items, notes, identical)


def _plain_items(root, notes):
    items, ignored = [], []
    for name in sorted(os.listdir(root)):
        if name.startswith(".") or name in SKIP_NAMES:
            continue
        path = os.path.join(root, name)
        if os.path.islink(path):
            items.append(Item(safe_key(name) or "_", name, "link", tokens=[name],
                              problem="a symbolic link, not a folder or a zip: not followed"))
        elif os.path.isdir(path):  # the student is the name itself (`a b/` and `a_b/` are two students)
            items.append(Item(safe_key(name) or "_", name, "folder", tokens=[name]))
        elif name.lower().endswith(".zip"):
            items.append(Item(safe_key(name[:-4]) or "_", name, "zip", tokens=[name[:-4]]))
        else:
            ignored.append(name)
    if ignored:
        notes.append("ignored (neither a folder nor a .zip): %s" % ", ".join(ignored[:20])
                     + (" and %d more" % (len(ignored) - 20) if len(ignored) > 20 else ""))
    return items


def _gradescope_items(root, notes):
    yaml = _yaml()
    path = os.path.join(root, METADATA)
    try:
        with open(path, "rb") as f:
            meta = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise BatchError("%s could not be read: %s" % (path, e))
    if not isinstance(meta, dict):
        raise BatchError("%s does not map submission folders to their submitters" % path)
    items, listed = [], set()
    for sub, info in meta.items():
        sub = str(sub)
        listed.add(sub)
        people = _get(info, "submitters") or []
        people = [p for p in people if isinstance(p, dict)] if isinstance(people, list) else []
        sids = [str(_get(p, "sid") or "").strip() for p in people]
        emails = [str(_get(p, "email") or "").strip() for p in people]
        names = [str(_get(p, "name") or "").strip() for p in people]
        tokens, labels = [], []
        for sid, email, name in zip(sids, emails, names):
            mine = (["sid:" + sid] if sid else []) + (["email:" + email.lower()] if email else [])
            tokens += mine or (["name:" + name] if name else [])
            labels.append(sid or email or name)
        key = "+".join(safe_key(x) for x in labels if safe_key(x)) or safe_key(sub) or "_"
        if len(key) > KEY_CHARS:  # a group of long names
            key = _hashed(key, key)
        created = _get(info, "created_at")
        score = _get(info, "score")
        item = Item(key, sub, "folder", sid="; ".join(s for s in sids if s), email="; ".join(e for e in emails if e),
                    name="; ".join(n for n in names if n), created_at=_timestamp(created),
                    gradescope_score=float(score) if isinstance(score, (int, float)) else None,
                    tokens=tokens or ["folder:" + sub])
        if sub in ("", ".", "..") or "/" in sub or "\\" in sub or sub != os.path.basename(sub):
            item.problem = "%s names %r, which is not a folder of the export" % (METADATA, sub)
        elif not os.path.isdir(os.path.join(root, sub)) or os.path.islink(os.path.join(root, sub)):
            item.problem = "listed in %s, but the export has no folder %s" % (METADATA, sub)
        items.append(item)
    extra = [n for n in sorted(os.listdir(root)) if n not in listed and not n.startswith(".") and n not in SKIP_NAMES
             and os.path.isdir(os.path.join(root, n)) and not os.path.islink(os.path.join(root, n))]
    for name in extra:
        items.append(Item(safe_key(name) or "_", name, "folder", tokens=["folder:" + name]))
    if extra:
        notes.append("not in %s, named by their folder: %s" % (METADATA, ", ".join(extra)))
    return items


def _timestamp(value):
    """`:created_at:` as sortable text (UTC ISO when YAML gave a time with its zone)."""
    import datetime

    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.timezone.utc)
        return value.isoformat()
    return str(value) if value is not None else ""


def _digest(pairs):
    """A fingerprint of (file name, bytes) pairs: the .py files of a submission, wherever they sit."""
    h = hashlib.sha256()
    for name, data in sorted(pairs):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest() if pairs else None


def _vet(root, it):
    """Fill in it.digest, or it.problem when the submission is empty or unreadable."""
    path = os.path.join(root, it.source)
    if it.kind == "zip":
        try:
            files = read_zip(path)
        except BadInput as e:
            it.problem = str(e)
            return
        it.digest = _digest([(os.path.basename(n), d) for n, d in files.items()
                             if n.endswith(".py") and n.count("/") <= 1])
        return
    try:
        seen, pys, deeper = _walk(path)
    except OSError as e:
        it.problem = "the folder could not be read (%s)" % (e.strerror or e)
        return
    if not seen:
        it.problem = "empty submission: the folder holds no file" + (
            " in its first %d levels (its folders nest deeper than that)" % MAX_DEPTH if deeper else "")
    it.digest = _digest(pys)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _walk(path):
    """(files seen, [(name, bytes) of the .py files at most one folder down], whether folders nest deeper
    than MAX_DEPTH) of a submission folder.

    Iterative, through folder descriptors: a folder nested any depth (past Python's recursion limit,
    past PATH_MAX) cannot crash it. Links are never followed; hidden names and SKIP_NAMES are skipped;
    it stops after MAX_WALK files or MAX_WALK folders and does not look below MAX_DEPTH levels (one
    descriptor per level is open at a time). OSError only when `path` itself cannot be opened."""
    seen, pys, deeper, opened = 0, [], False, 0
    top = os.open(path, _DIR_FLAGS)
    stack = [(top, 0, None)]  # (folder descriptor, depth, its subfolders still to visit, or None: not listed yet)
    try:
        while stack and seen < MAX_WALK:
            fd, depth, pending = stack[-1]
            if pending is None:  # first visit: its files, then its subfolders in order
                try:
                    with os.scandir(fd) as entries:
                        entries = sorted(entries, key=lambda e: e.name)
                except OSError:
                    entries = []
                pending = []
                for entry in entries:
                    name = entry.name
                    if name.startswith("."):
                        continue
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if name in SKIP_NAMES:
                                pass
                            elif depth < MAX_DEPTH:
                                pending.append(name)
                            else:
                                deeper = True
                            continue
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if not stat.S_ISREG(st.st_mode) or seen >= MAX_WALK:
                        continue
                    seen += 1
                    if name.endswith(".py") and depth <= 1 and st.st_size <= submission.MAX_FILE_BYTES:
                        data = _read_at(fd, name, submission.MAX_FILE_BYTES)
                        if data is not None:
                            pys.append((name, data))
                pending.reverse()  # popped from the end: the sorted order
                stack[-1] = (fd, depth, pending)
            if not pending:
                stack.pop()
                os.close(fd)
                continue
            name = pending.pop()
            opened += 1
            if opened > MAX_WALK:
                break
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                continue
            stack.append((child, depth + 1, None))
    finally:
        for fd, _, _ in stack:
            os.close(fd)
    return seen, pys, deeper


def _read_at(dir_fd, name, limit):
    """The bytes of the regular file `name` in the folder `dir_fd` (None when unreadable or too big)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)  # O_NONBLOCK: a fifo put there meanwhile does not block
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            data = f.read(limit + 1)
    except OSError:
        return None
    return data if len(data) <= limit else None


def read_zip(path):
    """{relative path: bytes} of a student's zip, or BadInput. Nothing is written."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
        raise BadInput("not a readable zip (%s)" % (e.strerror if isinstance(e, OSError) and e.strerror else e))
    files, total = {}, 0
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise BadInput("the zip holds %d members, over the limit of %d" % (len(infos), MAX_ZIP_MEMBERS))
        for info in infos:
            name = info.filename.replace("\\", "/")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
                raise BadInput("the zip member %r would be written outside its folder" % info.filename)
            if info.is_dir() or not parts or any(p in SKIP_NAMES or p.startswith("._") for p in parts):
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                continue  # links are never unpacked
            total += info.file_size
            if total > MAX_ZIP_BYTES:
                raise BadInput("the zip unpacks to over %d MB" % (MAX_ZIP_BYTES >> 20))
            try:
                with zf.open(info) as f:
                    data = f.read(info.file_size + 1)
            except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError, ValueError) as e:
                raise BadInput("the zip is corrupt or encrypted (%s: %s)" % (info.filename, e))
            except Exception as e:  # zlib.error and other decompressor failures
                raise BadInput("the zip is corrupt (%s: %s)" % (info.filename, e))
            if len(data) > info.file_size:
                raise BadInput("the zip member %s is larger than its header says" % info.filename)
            path = "/".join(parts)
            if path in files and files[path] != data:
                raise BadInput("the zip holds %s twice, with different contents" % path)
            files[path] = data
    if not files:
        raise BadInput("empty submission: the zip holds no file")
    _check_paths(files)
    return files


def _check_paths(files):
    """BadInput when read_zip's files cannot all be unpacked: a member that is a file in one path and a
    folder in another (`helper.py` and `helper.py/inner.py`), a name too long or a path too deep to write."""
    folders = {}
    for path in sorted(files):
        parts = path.split("/")
        shown = path if len(path) <= 80 else path[:80] + "..."
        if len(path) > MAX_MEMBER_PATH or len(parts) > MAX_DEPTH + 1:
            raise BadInput("the zip member %s is nested too deep to unpack (over %d folders or %d characters)"
                           % (shown, MAX_DEPTH, MAX_MEMBER_PATH))
        if any(len(p.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for p in parts):
            raise BadInput("the zip member %s has a name over %d bytes" % (shown, MAX_NAME_BYTES))
        for i in range(1, len(parts)):
            folders.setdefault("/".join(parts[:i]), path)
    for path in sorted(files):
        if path in folders:
            raise BadInput("the zip members conflict: %s is a file, and a folder in %s" % (path, folders[path]))


def unpack(files, dest):
    """Write read_zip's files under `dest` (their paths were checked: no link, none leaves dest, no
    file is also a folder). Folders are made 0700, files 0600: dest stays private."""
    _check_paths(files)
    for name, data in files.items():
        path = os.path.join(dest, *name.split("/"))
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        if os.path.lexists(path):
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def _resolve_duplicates(items, gradescope):
    """Mark every submission but one per student as a duplicate, with the reason; then give each
    student a key of their own (see _unique_keys), which their duplicates share."""
    good = sorted((it for it in items if it.problem is None), key=lambda it: it.source)
    if gradescope:  # the latest first (a stable sort keeps the names' order among equals)
        good.sort(key=lambda it: it.created_at or "", reverse=True)
    else:  # the folder before the zip
        good.sort(key=lambda it: it.kind != "folder")
    claimed, duplicates = {}, []
    for it in good:
        other = next((claimed[t] for t in it.tokens if t in claimed), None)
        if other is None:
            for t in it.tokens:
                claimed[t] = it
        else:
            duplicates.append((it, other))
    _unique_keys([it for it in items if all(it is not d for d, _ in duplicates)])
    for it, other in duplicates:
        it.key = it.duplicate_of = other.key
        same = "same files" if it.digest is not None and it.digest == other.digest else "their files differ"
        if gradescope:
            it.problem = ("duplicate: another submission of %s; the latest (%s, created %s) is graded, not this "
                          "one (created %s); %s" % (other.key, other.source, other.created_at or "?",
                                                   it.created_at or "?", same))
        else:
            it.problem = ("duplicate: %s is also %s, which is graded (a folder rather than a zip); %s" % (
                other.key, other.source + ("/" if other.kind == "folder" else ""), same))


def _unique_keys(items):
    """Different students whose keys are still the same (safe_key hashes every name it changes, so this is
    rare) get a suffix from a hash of their own source, never from their order among the others: a student's
    key does not change when another arrives (resume and shards rely on it), and no one's results.json
    overwrites another's."""
    taken = set()
    for it in sorted(items, key=lambda it: it.source):
        key, n = it.key, 0
        while key in taken:
            n += 1
            key = "%s_%s" % (it.key, hashlib.sha256(("%d:%s" % (n, it.source)).encode(
                "utf-8", "surrogatepass")).hexdigest()[:6])
        taken.add(key)
        it.key = key
