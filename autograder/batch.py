"""Regrade a whole class: `python -m autograder grade-batch DIR -o OUTDIR`.

DIR is one of (detected, and said):
- a Gradescope "Export Submissions" folder: `submission_metadata.yml` beside one folder per
  submission (`submission_123456/`, the student's files in it or one folder below); students are
  named by sid, else email, else name (a group's submitters joined with "+"), else the folder;
- a folder of per-student folders (named by the folder);
- a folder of per-student zips (named by the zip, without `.zip`), or a mix of both. Zips are
  read whole before anything runs (at most MAX_ZIP_MEMBERS members and MAX_ZIP_BYTES once
  unpacked; links are skipped; a member whose path leaves its folder, an unreadable, encrypted or
  corrupt zip is a bad input) and unpacked into a private temporary folder while graded.

One plan (runner.build_plan: hidden inputs and oracle answers) is built once for the whole batch,
and every submission is graded against it by `pipeline.grade`, exactly as `grade` does, in a pool
of threads: each grade waits on its own sandboxed worker under its own sandbox uid lease.

Bad inputs are reported (summary.md) and the batch goes on:
- an empty submission (no file at all), a zip that cannot be read, a metadata entry without its
  folder, a link where a submission should be;
- a duplicate: the same student twice (the same sid or email in the metadata, or `alice/` and
  `alice.zip`). One is graded: in a Gradescope export the latest `:created_at:`, otherwise the
  folder rather than the zip; the other is listed with the reason (and whether its files are the
  same). Byte-identical submissions of different students are not bad input: each is graded,
  and the summary lists them under "identical submissions" for the instructor to look at.

Resume: OUTDIR/batch.json records the seed, device, functions, shard, instructor tests and a
fingerprint of the registry and the course's settings; each student's results are written
atomically (results/<student>/grading.json, then results.json). Running the same command again
grades only what has no results yet (and retries grader failures), with the same seed; changed
options or a changed fingerprint are refused unless --restart.

Shards: `--shard K/N` grades the students whose position in the sorted list of every student of
DIR is K-1 modulo N (round-robin), so the N slices are disjoint and cover everything; duplicates
are resolved over the whole of DIR first. Without --seed, shards derive the seed from the sorted
names of everything in DIR, so that every shard has the same hidden inputs without talking to
the others; `python -m autograder merge` joins their outputs (batchreport.py).
"""
import concurrent.futures
import ctypes
import hashlib
import json
import os
import random
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Tuple

from . import batchreport, pipeline, sandbox

try:  # the pre-imported interpreter that forks workers (autograder/forkserver.py), when the kit has it
    from . import forkserver
except ImportError:
    forkserver = None

MANIFEST = batchreport.MANIFEST
RESULTS = batchreport.RESULTS
GRADING = batchreport.GRADING  # beside each results.json: what the reports are built from
METADATA = "submission_metadata.yml"
FORMAT = 1
MAX_ZIP_MEMBERS = 2000
MAX_ZIP_BYTES = 64 << 20
MAX_WALK = 5000  # files looked at in one submission folder
SKIP_NAMES = {"__MACOSX", "__pycache__", ".DS_Store"}


class BatchError(Exception):
    """A problem with the batch as a whole (bad DIR, options that do not match OUTDIR): exit 2."""


class BadInput(Exception):
    """One submission cannot be graded; the message says why."""


# --------------------------------------------------------------------------- discovery
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


def safe_key(text):
    """A folder name made from a student's name, sid or email."""
    key = re.sub(r"[^A-Za-z0-9._@+-]+", "_", str(text)).strip("._")
    return key[:120]


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
            items.append(Item(safe_key(name) or name, name, "link", tokens=[safe_key(name)],
                              problem="a symbolic link, not a folder or a zip: not followed"))
        elif os.path.isdir(path):
            items.append(Item(safe_key(name) or "_", name, "folder", tokens=[safe_key(name)]))
        elif name.lower().endswith(".zip"):
            items.append(Item(safe_key(name[:-4]) or "_", name, "zip", tokens=[safe_key(name[:-4])]))
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
    seen, pys = 0, []
    for folder, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_NAMES)
        depth = 0 if folder == path else os.path.relpath(folder, path).count(os.sep) + 1
        for name in sorted(names):
            full = os.path.join(folder, name)
            try:
                st = os.lstat(full)
            except OSError:
                continue
            if name.startswith(".") or not stat.S_ISREG(st.st_mode):
                continue
            seen += 1
            if name.endswith(".py") and depth <= 1 and st.st_size <= (1 << 20):
                with open(full, "rb") as f:
                    pys.append((name, f.read()))
        if seen >= MAX_WALK:
            break
    if not seen:
        it.problem = "empty submission: the folder holds no file"
    it.digest = _digest(pys)


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
            files["/".join(parts)] = data
    if not files:
        raise BadInput("empty submission: the zip holds no file")
    return files


def unpack(files, dest):
    """Write read_zip's files under `dest` (their paths were checked: no link, none leaves dest)."""
    for name, data in files.items():
        path = os.path.join(dest, *name.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.lexists(path):
            continue
        with open(path, "xb") as f:
            f.write(data)


def _resolve_duplicates(items, gradescope):
    """Mark every submission but one per student as a duplicate, with the reason."""
    good = sorted((it for it in items if it.problem is None), key=lambda it: it.source)
    if gradescope:  # the latest first (a stable sort keeps the names' order among equals)
        good.sort(key=lambda it: it.created_at or "", reverse=True)
    else:  # the folder before the zip
        good.sort(key=lambda it: it.kind != "folder")
    claimed = {}
    for it in good:
        other = next((claimed[t] for t in it.tokens if t in claimed), None)
        if other is None:
            for t in it.tokens:
                claimed[t] = it
            continue
        it.duplicate_of = other.key
        same = "same files" if it.digest is not None and it.digest == other.digest else "their files differ"
        if gradescope:
            it.problem = ("duplicate: another submission of %s; the latest (%s, created %s) is graded, not this "
                          "one (created %s); %s" % (other.key, other.source, other.created_at or "?",
                                                   it.created_at or "?", same))
        else:
            it.problem = ("duplicate: %s is also %s, which is graded (a folder rather than a zip); %s" % (
                other.key, other.source + ("/" if other.kind == "folder" else ""), same))


# --------------------------------------------------------------------------- shards and seeds
def parse_shard(text):
    """"K/N" -> (K, N), 1 <= K <= N."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise BatchError("--shard %s: expected K/N with 1 <= K <= N (e.g. 3/8)" % text)
    return int(m.group(1)), int(m.group(2))


def in_shard(keys, k, n):
    """The keys of shard K of N: every N-th of the sorted distinct keys, starting at the K-th."""
    return {key for i, key in enumerate(sorted(set(keys))) if i % n == k - 1}


def derived_seed(names):
    """The hidden cases' seed every shard derives alike from the sorted names of DIR's submissions."""
    digest = hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


# --------------------------------------------------------------------------- fingerprint
GRADING_CODE = ("spec.py", "compare.py", "detectors.py", "forbidden.py", "feedback.py", "speed.py", "static.py",
                "runner.py", "worker.py", "results.py", "instructor.py")  # what a score or a message depends on


def fingerprint(functions, cfg, budget, instructor_files):
    """What the results depend on besides the seed: the registry's entries, the grading code
    (autograder/parts/ and GRADING_CODE), course.toml's settings and limits, and the instructor
    test files that run. Not the sandbox's mechanics (sandbox.py, forkserver.py, memory.py)."""
    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for fn in functions:
        h.update(repr((fn.name, fn.file, float(fn.points), [
            (c.label, c.hidden, c.weight, c.seed, repr(c.opts), c.rtol) for c in fn.cases])).encode())
    sources = [os.path.join(here, "parts", n) for n in sorted(os.listdir(os.path.join(here, "parts")))
               if n.endswith(".py")]
    sources += [os.path.join(here, n) for n in GRADING_CODE]
    for path in sources + list(instructor_files):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                h.update(os.path.basename(path).encode() + b"\0" + hashlib.sha256(f.read()).digest())
    settings = {k: v for k, v in asdict(cfg).items()}
    settings["limits"] = asdict(cfg.limits())
    settings["budget"] = cfg.budget_seconds(budget)
    h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- progress
def _duration(seconds):
    seconds = int(round(seconds))
    if seconds >= 3600:
        return "%dh%02dm" % (seconds // 3600, seconds % 3600 // 60)
    return "%dm%02ds" % (seconds // 60, seconds % 60) if seconds >= 60 else "%ds" % seconds


class Progress:
    """done/total, rate and ETA on one line of stderr, redrawn in place on a terminal; silent otherwise."""

    def __init__(self, total, done=0, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total, self.done, self.start_done = total, done, done
        self.start = time.monotonic()
        self.last = ""
        self.width = 0

    def rate(self):
        """Submissions per minute graded by this run."""
        elapsed = time.monotonic() - self.start
        return (self.done - self.start_done) * 60.0 / elapsed if elapsed > 0 else 0.0

    def line(self):
        bar_w = 24
        frac = self.done / self.total if self.total else 1.0
        bar = "#" * int(bar_w * frac) + "-" * (bar_w - int(bar_w * frac))
        rate = self.rate()
        left = self.total - self.done
        eta = _duration(left * 60.0 / rate) if rate > 0 else "?"
        text = "[%s] %d/%d  %.1f/min  ETA %s  elapsed %s" % (
            bar, self.done, self.total, rate, eta if left else "0s", _duration(time.monotonic() - self.start))
        return text + ("  last: %s" % self.last if self.last else "")

    def draw(self):
        if not self.tty:
            return
        text = self.line()
        cols = shutil.get_terminal_size((120, 20)).columns - 1
        text = text[:cols]
        self.stream.write("\r" + text + " " * max(0, self.width - len(text)))
        self.stream.flush()
        self.width = len(text)

    def tick(self, last):
        self.done += 1
        self.last = last
        self.draw()

    def say(self, message):
        """A line of its own above the bar."""
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.width = 0
        self.stream.write(message + "\n")
        self.stream.flush()
        self.draw()

    def close(self):
        if self.tty and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


# --------------------------------------------------------------------------- the run
@dataclass
class Options:
    """grade-batch's options (cli.py fills them from the command line)."""

    input: str
    output: str
    jobs: Optional[int] = None  # default: the CPUs this process may use
    seed: Optional[int] = None
    shard: Optional[Tuple[int, int]] = None
    device: str = "auto"
    config: Optional[str] = None
    functions: List[str] = field(default_factory=list)
    files: List[str] = field(default_factory=list)
    budget: Optional[float] = None
    instructor_tests: Optional[str] = None  # folder (default instructor_tests/)
    no_instructor_tests: bool = False
    restart: bool = False
    use_forkserver: bool = True
    command: str = ""  # the command line, for the "resume with" message


def default_jobs():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def results_dir(outdir, key):
    return os.path.join(outdir, RESULTS, key)


def make_record(item, outcome, max_score):
    """What the reports need of one graded submission (written beside its results.json)."""
    rec = {"student": item.key, "sid": item.sid, "email": item.email, "name": item.name, "source": item.source,
           "gradescope_score": item.gradescope_score}
    if outcome.failed:
        lines = [ln for ln in outcome.failure.strip().split("\n") if ln.strip()]
        rec.update(status="grader failed", score=0.0, max_score=max_score, functions=[], instructor=None,
                   failure=lines[-1].strip()[:300] if lines else "unknown", seconds=None)
        return rec
    rep, extra = outcome.report, outcome.extra
    functions = []
    for fr in rep.functions:
        hints = sorted({ln.strip() for c in fr.checks if not c.passed for ln in c.message.split("\n")
                        if ln.strip().startswith("Hint: ")})
        functions.append({"name": fr.fn.name, "score": fr.score, "max_score": fr.max_score,
                          "checks": [[c.name, c.hidden, c.passed] for c in fr.checks],
                          "first_failure": fr.first_failure(True).split("\n")[0][:300], "hints": hints})
    instr = None
    if extra is not None and extra.files:
        instr = {"score": extra.score, "max_score": extra.max_score,
                 "failed": [t.get("name", "?") for t in extra.tests if t.get("status") != "passed"]}
    rec.update(status="graded", score=outcome.data["score"],
               max_score=rep.max_score + (instr["max_score"] if instr else 0.0), functions=functions,
               instructor=instr, failure=None,
               seconds=round(rep.seconds + (extra.seconds if extra is not None else 0.0), 2))
    return rec


class _Grader:
    """Grades items in a thread pool; an interrupt stops the threads that are grading."""

    def __init__(self, root, outdir, plan, cfg, opts, run_instructor, max_score):
        self.root, self.outdir, self.plan, self.cfg, self.opts = root, outdir, plan, cfg, opts
        self.run_instructor, self.max_score = run_instructor, max_score
        self.lock = threading.Lock()
        self.cancel = threading.Event()  # set on Ctrl-C: the gradings stop where they wait (sandbox.cancellable)
        self.temp = set()  # unpacked zips not yet removed

    def grade(self, item):
        if self.cancel.is_set():
            return None
        tmp = None
        try:
            folder = os.path.join(self.root, item.source)
            outcome = None
            if item.kind == "zip":
                tmp = tempfile.mkdtemp(prefix="ag-batch-")
                self.temp.add(tmp)
                try:
                    unpack(read_zip(folder), tmp)
                except (BadInput, OSError) as e:  # it was readable when the batch started
                    outcome = pipeline.failed(e)
                folder = tmp
            if outcome is None:
                with sandbox.cancellable(self.cancel):
                    outcome = pipeline.grade(folder, self.plan, self.cfg, budget=self.opts.budget,
                                             instructor_tests=self.opts.instructor_tests,
                                             run_instructor=self.run_instructor)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
                with self.lock:
                    self.temp.discard(tmp)
        rec = make_record(item, outcome, self.max_score)
        folder = results_dir(self.outdir, item.key)
        os.makedirs(folder, exist_ok=True)
        batchreport.write_json(os.path.join(folder, GRADING), rec)
        pipeline.write(outcome, os.path.join(folder, "results.json"))  # last: its presence means done
        return rec

    def stop(self, futures, timeout):
        """Nothing more starts; each grading under way stops at its next wait on its worker (one
        that finishes first is kept). Returns when `futures` are done or after `timeout` seconds."""
        self.cancel.set()
        concurrent.futures.wait(futures, timeout=timeout)

    def cleanup(self):
        for tmp in list(self.temp):
            shutil.rmtree(tmp, ignore_errors=True)


def _manifest_mismatch(old, new):
    """Differences between OUTDIR's manifest and this run that would mix two gradings."""
    labels = {"fingerprint": "the registry, grading code, course.toml or instructor tests (fingerprint)",
              "device": "device", "functions": "graded functions", "shard": "shard",
              "instructor_tests": "instructor tests"}
    out = []
    for key, label in labels.items():
        if old.get(key) != new.get(key):
            show = (lambda v: ",".join(v) if isinstance(v, list) and key == "functions" else v)
            out.append("%s (then %s, now %s)" % (label, show(old.get(key)), show(new.get(key))))
    return out


def _hide(paths):
    """As root: others (the sandbox uids) lose access to DIR and OUTDIR while student code runs, so
    that one submission cannot read another's files or results. Returns what to restore."""
    if os.geteuid() != 0:
        return []
    saved = []
    for path in paths:
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
            os.chmod(path, mode & ~0o007)
            saved.append((path, mode))
        except OSError:
            pass
    return saved


def _n(count, word):
    """"1 submission", "3 submissions"."""
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def run(opts, out=None, err=None):
    """Grade every submission of opts.input into opts.output. Returns the exit status:
    0 all graded, 1 the grader failed on some (listed), 2 bad usage, 128+signal when interrupted
    (the same command resumes)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        return _run(opts, out, err)
    except BatchError as e:
        print("error: %s" % e, file=err)
        return 2
    except KeyboardInterrupt:  # before or after the grading itself (which says more)
        print("\ninterrupted: nothing graded is lost; rerun the same command to go on%s" % (
            (":\n  " + opts.command) if opts.command else "."), file=err)
        return 128 + signal.SIGINT


@dataclass
class _Setup:
    cfg: object
    functions: list
    device: str
    jobs: int
    root: str
    outdir: str
    run_instructor: bool
    instructor_files: list


def _setup(opts):
    """The checked options: settings, functions, device, jobs, folders (BatchError when wrong)."""
    from . import config, instructor, registry, runner

    try:
        cfg = config.load(opts.config or config.DEFAULT_PATH)
        functions = config.apply(cfg, registry.select(opts.functions, opts.files))
    except (KeyError, config.ConfigError) as e:
        raise BatchError(e.args[0] if isinstance(e, KeyError) else str(e))
    if opts.device == "cuda" and not runner.cuda_available():
        raise BatchError("--device cuda: no CUDA device is available")
    jobs = opts.jobs or default_jobs()
    if jobs < 1:
        raise BatchError("--jobs must be at least 1")
    root, outdir = os.path.abspath(opts.input), os.path.abspath(opts.output)
    if outdir == root or outdir.startswith(root + os.sep):
        raise BatchError("the output folder must not be inside the submissions folder %s" % root)
    run_instructor = pipeline.runs_instructor_tests(opts.no_instructor_tests, opts.instructor_tests,
                                                    bool(opts.functions or opts.files))
    return _Setup(cfg, functions, "cuda" if opts.device in ("cuda", "auto") and runner.cuda_available() else "cpu",
                  jobs, root, outdir, run_instructor,
                  instructor.find_files(opts.instructor_tests) if run_instructor else [])


def _previous(outdir, opts, settings):
    """OUTDIR's manifest when this run resumes it (None for a fresh start); refuses what would mix
    two gradings: other settings, or a folder that is not grade-batch's."""
    path = os.path.join(outdir, MANIFEST)
    old = batchreport.read_json(path) if os.path.exists(path) else None
    if os.path.exists(path) and not isinstance(old, dict):
        raise BatchError("%s is unreadable: remove it (or use --restart)" % path)
    if old is not None and old.get("format") != FORMAT:
        raise BatchError("%s was written by another version of grade-batch: use --restart or another "
                         "output folder" % path)
    if opts.restart and os.path.isdir(outdir):
        for name in (RESULTS, MANIFEST) + batchreport.REPORTS:
            target = os.path.join(outdir, name)
            if os.path.isdir(target):
                shutil.rmtree(target)
            elif os.path.exists(target):
                os.unlink(target)
        return None
    if old is None:
        if os.path.isdir(outdir) and [n for n in os.listdir(outdir) if not n.startswith(".")]:
            raise BatchError("%s is not empty and holds no %s: give grade-batch a new or empty output folder"
                             % (outdir, MANIFEST))
        return None
    diffs = _manifest_mismatch(old, settings)
    if opts.seed is not None and opts.seed != old.get("seed"):
        diffs.append("seed (then %s, now %s)" % (old.get("seed"), opts.seed))
    if diffs:
        raise BatchError("%s was graded with other settings: %s.\nRerun with the same options to resume, "
                         "or add --restart to discard its results and start over." % (outdir, "; ".join(diffs)))
    return old


def _run(opts, out, err):
    from . import registry

    s = _setup(opts)
    found = discover(s.root, registry.FILES)
    keys = {it.key for it in found.items}
    mine = [it for it in found.items if it.key in (in_shard(keys, *opts.shard) if opts.shard else keys)]
    gradable = [it for it in mine if it.problem is None]
    bad = [it for it in mine if it.problem is not None]

    settings = {"format": FORMAT, "device": s.device, "functions": [fn.name for fn in s.functions],
                "shard": list(opts.shard) if opts.shard else None, "instructor_tests": s.run_instructor,
                "fingerprint": fingerprint(s.functions, s.cfg, opts.budget, s.instructor_files)}
    old = _previous(s.outdir, opts, settings)
    if old is not None:
        seed, seed_from = old["seed"], old.get("seed_from", "")
    elif opts.seed is not None:
        seed, seed_from = opts.seed, "--seed"
    elif opts.shard:
        seed, seed_from = derived_seed(found.names), "derived from the names of the %s" % _n(len(found.names),
                                                                                             "submission")
    else:
        seed, seed_from = random.SystemRandom().randrange(1 << 31), "fresh"
    done = {it.key for it in gradable if (batchreport.load_record(s.outdir, it.key) or {}).get("status") == "graded"}
    todo = [it for it in gradable if it.key not in done]

    print("grade-batch: %s is %s: %s, %s" % (opts.input, found.kind, _n(len(found.items), "submission"),
                                             _n(sum(1 for it in found.items if it.problem), "bad input")), file=out)
    for note in found.notes:
        print("  note: %s" % note, file=out)
    if opts.shard:
        print("  shard %d/%d: %d of them (round-robin over the sorted student names), %s" % (
            opts.shard[0], opts.shard[1], len(mine), _n(len(bad), "bad input")), file=out)
    print("  seed %d (%s); %s%s on %s; %s" % (
        seed, "kept from the first run" if old is not None else seed_from, _n(len(s.functions), "function"),
        " + instructor tests" if s.run_instructor and s.instructor_files else "", s.device, _n(s.jobs, "job")),
        file=out)
    if old is not None:
        print("  resuming %s: %d already graded, %d to grade" % (opts.output, len(done), len(todo)), file=out)

    os.makedirs(os.path.join(s.outdir, RESULTS), exist_ok=True)
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    batchreport.write_json(os.path.join(s.outdir, MANIFEST), dict(
        settings, seed=seed, seed_from=seed_from, input=s.root, input_kind=found.kind,
        created=(old or {}).get("created") or now, updated=now, command=opts.command,
        items=[it.public() for it in mine], all_submissions=len(found.items), identical=found.identical,
        notes=found.notes))

    progress = Progress(len(gradable), len(done), err)
    start = time.monotonic()
    try:
        failures = _grade_phase(s, opts, seed, todo, progress) if todo else []
    except KeyboardInterrupt as e:
        progress.close()
        signum = signal.SIGTERM if "SIGTERM" in str(e) else signal.SIGINT
        print("\ninterrupted (%s): %d graded in this run, %d of %d done in all; those being graded were "
              "stopped and are graded again on resume.\nResume with the same command%s" % (
                  signal.Signals(signum).name, progress.done - progress.start_done, progress.done, progress.total,
                  (":\n  " + opts.command) if opts.command else "."), file=err)
        return 128 + signum
    seconds = time.monotonic() - start

    written = batchreport.write_outdir(s.outdir)
    if todo:
        print("graded %s in %s (%.1f/min with %s)%s; %s" % (
            _n(len(todo), "submission"), _duration(seconds), len(todo) * 60.0 / max(seconds, 1e-9), _n(s.jobs, "job"),
            ", %d already done" % len(done) if done else "", _n(len(bad), "bad input")), file=out)
    else:
        print("nothing left to grade: %d already done, %s" % (len(done), _n(len(bad), "bad input")), file=out)
    if failures:
        print("the grader failed on %s (their results.json say so; retried on the next run): %s"
              % (_n(len(failures), "submission"), ", ".join(failures)), file=out)
    print("wrote %s" % ", ".join(p if os.path.isabs(opts.output) else os.path.relpath(p) for p in written), file=out)
    return 1 if failures else 0


def _grade_phase(s, opts, seed, todo, progress):
    """Build the plan and grade `todo`, with what the batch holds meanwhile (threads, fork server,
    SIGTERM handler, hidden folders) given back whatever happens. Returns the grader's failures."""
    import torch

    from . import runner

    threads = torch.get_num_threads()
    saved_modes = _hide([s.root, s.outdir])
    old_term = None
    if threading.current_thread() is threading.main_thread():
        def on_term(signum, frame):
            raise KeyboardInterrupt("SIGTERM")
        old_term = signal.signal(signal.SIGTERM, on_term)
    fs = grader = None
    try:
        if s.jobs > 1:
            torch.set_num_threads(1)  # the parallelism is across submissions
        plan = runner.build_plan(s.functions, device=s.device, seed=seed)
        if opts.use_forkserver and forkserver is not None:
            try:
                fs = forkserver.start()
            except Exception as e:  # the usual start still works, only slower
                progress.say("note: the fork server did not start (%s): workers start the usual way" % e)
        grader = _Grader(s.root, s.outdir, plan, s.cfg, opts, s.run_instructor,
                         sum(float(fn.points) for fn in s.functions))
        return _grade_all(grader, todo, s.jobs, progress)
    finally:
        progress.close()
        if grader is not None:
            grader.cleanup()
        if fs is not None:
            fs.stop()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        for path, mode in saved_modes:
            try:
                os.chmod(path, mode)
            except OSError:
                pass
        torch.set_num_threads(threads)


def _grade_all(grader, todo, jobs, progress):
    """Grade `todo` with `jobs` threads; returns the keys the grader failed on. Ctrl-C: see interrupt."""
    failures = []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade")
    futures = {pool.submit(grader.grade, it): it for it in todo}
    pending = set(futures)
    progress.draw()
    try:
        while pending:
            finished, pending = concurrent.futures.wait(pending, timeout=0.5,
                                                        return_when=concurrent.futures.FIRST_COMPLETED)
            for f in finished:
                rec = f.result()  # an error of the batch itself (disk full) stops the batch
                item = futures[f]
                if rec is None:
                    continue
                if rec["status"] != "graded":
                    failures.append(item.key)
                    progress.say("the grader failed on %s: %s" % (item.key, rec.get("failure")))
                progress.tick("%s %s/%s" % (item.key, batchreport.fmt(rec["score"]),
                                            batchreport.fmt(rec["max_score"])))
            progress.draw()
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        running = [f for f in futures if not f.done()]
        if running:
            progress.close()
            print("stopping the %s being graded..." % _n(len(running), "submission"), file=progress.stream)
        try:
            grader.stop(running, timeout=60)
        except KeyboardInterrupt:  # a second Ctrl-C: leave now
            pass
        for f in running:  # those that finished meanwhile are saved: count them
            if f.done() and not f.cancelled() and f.exception() is None and f.result() is not None:
                progress.done += 1
        raise
    pool.shutdown(wait=True)
    return failures
