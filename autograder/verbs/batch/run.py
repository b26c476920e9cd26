"""Regrade a whole class: `python -m autograder grade-batch DIR -o OUTDIR`.

DIR is what discovery.py reads: a Gradescope export, per-student folders or zips; its bad inputs
(empty, unreadable, duplicate) are listed and the batch goes on.

One plan (registry.plan: hidden inputs and oracle answers) is built once for the whole batch,
and every submission is graded against it by `grade.grade_submission`, exactly as `grade` does, in a pool
of threads: each grade waits on its own sandboxed worker under its own sandbox uid lease.

Resume: OUTDIR/batch.json records the seed, device, functions, shard, instructor tests and a
fingerprint of the registry and the course's settings; each student's results are written
atomically (results/<student>/grading.json, then results.json). Running the same command again
grades only what has no results yet (and retries grader failures), with the same seed; changed
options or a changed fingerprint are refused unless --restart.

Privacy: no folder's mode is ever changed (two batches on one host, shards of one class, would undo
each other's). While the class is graded, DIR and OUTDIR are in sandbox.PRIVATE_PATHS, which every
worker's mount namespace covers with an empty read-only folder; OUTDIR and everything written
into it are owner-only (folders 0700, files 0600), and an existing OUTDIR that others may enter is
reported, not changed; a zip is unpacked into a private temporary folder (0700). Each grading's
isolation layers (outcome.Report.isolation) go into its record, and the summaries count them.

Shards: `--shard K/N` grades the students whose key hashes to K (shard_of), so the N slices are
disjoint, cover everything, and a student's shard depends on their key alone: a submission that
arrives late changes no other student's shard. Duplicates are resolved over the whole of DIR first.
Every shard records the keys of all of DIR as it saw them ("students"), so that `merge` can name a
student whom no shard graded. Without --seed, shards derive the seed from the sorted names of
everything in DIR, so that every shard has the same hidden inputs without talking to the others
(as long as DIR does not change: give --seed to be safe); `python -m autograder merge` joins their
outputs (batchreport.py).
"""
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Tuple

from . import report as batchreport

from ...engine import forkserver, sandbox
from ...paths import PACKAGE_DIR

from .. import grade
from .discovery import BadInput, BatchError, discover, read_zip, shard_of, unpack

MANIFEST = batchreport.MANIFEST
RESULTS = batchreport.RESULTS
GRADING = batchreport.GRADING  # beside each results.json: what the reports are built from
FORMAT = 2  # 2: keys from safe_key's hashes (a student's key depends on their name alone)


# --------------------------------------------------------------------------- shards and seeds
def parse_shard(text):
    """"K/N" -> (K, N), 1 <= K <= N."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise BatchError("--shard %s: expected K/N with 1 <= K <= N (e.g. 3/8)" % text)
    return int(m.group(1)), int(m.group(2))


def in_shard(keys, k, n):
    """The keys of shard K of N (shard_of)."""
    return {key for key in set(keys) if shard_of(key, n) == k}


def derived_seed(names):
    """The hidden cases' seed every shard derives alike from the sorted names of DIR's submissions."""
    digest = hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


# --------------------------------------------------------------------------- fingerprint
GRADING_CODE = tuple("engine/%s.py" % m for m in ("spec", "compare", "detectors", "forbidden", "feedback", "speed",
                                                  "static", "plans", "outcome", "steps", "runner", "worker",
                                                  "results")) + ("verbs/instructor.py",)  # what a score or a message depends on


def fingerprint(functions, cfg, budget, instructor_files):
    """What the results depend on besides the seed: the registry's entries, the grading code
    (autograder/parts/ and GRADING_CODE), course.toml's settings and limits, and the instructor
    test files that run. Not the sandbox's mechanics (sandbox.py, forkserver.py, memory.py)."""
    here = PACKAGE_DIR
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
    settings = asdict(cfg)
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
    track: Optional[str] = None  # overrides course.toml's track (--track)
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
    iso = getattr(outcome.report, "isolation", None) if outcome.report is not None else None
    rec["isolation"] = {str(k): str(v) for k, v in iso.items()} if isinstance(iso, dict) else {}
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
                    outcome = grade.failed(e)
                folder = tmp
            if outcome is None:
                with sandbox.cancellable(self.cancel):
                    outcome = grade.grade_submission(folder, self.plan, self.cfg, budget=self.opts.budget,
                                             instructor_tests=self.opts.instructor_tests,
                                             run_instructor=self.run_instructor)
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
                self.temp.discard(tmp)
        rec = make_record(item, outcome, self.max_score)
        folder = results_dir(self.outdir, item.key)
        batchreport.make_private_dir(folder)
        batchreport.write_json(rec, os.path.join(folder, GRADING))
        # last: its presence means done; owner-only, like everything in OUTDIR (grade.write's content)
        batchreport.write_json(outcome.data, os.path.join(folder, "results.json"))
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
            show = (lambda v: ",".join(v) if isinstance(v, list) else v)
            out.append("%s (then %s, now %s)" % (label, show(old.get(key)), show(new.get(key))))
    return out


_private_lock = threading.Lock()
_private_held = Counter()  # path -> batches of this process that hold it in sandbox.PRIVATE_PATHS
_private_before = set()  # paths that were in sandbox.PRIVATE_PATHS before a batch added them


def _private_paths(paths):
    """Each path as given (absolute) and as the kernel resolves it."""
    out = []
    for path in paths:
        for p in (os.path.abspath(path), os.path.realpath(path)):
            if p not in out:
                out.append(p)
    return out


@contextlib.contextmanager
def private(paths):
    """While inside: `paths` (DIR and OUTDIR) are in sandbox.PRIVATE_PATHS, so that no worker started
    meanwhile sees them. Counted per path: batches of one process that overlap (threads) keep them
    private until the last one ends, and a path someone else had put there stays. Nothing on disk
    changes (no chmod: two batches on one host would undo each other's)."""
    paths = _private_paths(paths)
    with _private_lock:
        for p in paths:
            if not _private_held[p] and p in sandbox.PRIVATE_PATHS:
                _private_before.add(p)
            _private_held[p] += 1
            sandbox.PRIVATE_PATHS.add(p)
    try:
        yield paths
    finally:
        with _private_lock:
            for p in paths:
                _private_held[p] -= 1
                if _private_held[p] <= 0:
                    del _private_held[p]
                    if p in _private_before:
                        _private_before.discard(p)
                    else:
                        sandbox.PRIVATE_PATHS.discard(p)


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
    from ... import config, registry
    from .. import instructor
    from ...engine import plans

    try:
        cfg = config.load(opts.config or config.DEFAULT_PATH)
        if getattr(opts, "track", None):
            cfg.track = opts.track
        functions = config.apply(cfg, registry.select(opts.functions, opts.files))
    except (KeyError, config.ConfigError) as e:
        raise BatchError(e.args[0] if isinstance(e, KeyError) else str(e))
    if opts.device == "cuda" and not plans.cuda_available():
        raise BatchError("--device cuda: no CUDA device is available")
    jobs = opts.jobs or default_jobs()
    if jobs < 1:
        raise BatchError("--jobs must be at least 1")
    root, outdir = os.path.abspath(opts.input), os.path.abspath(opts.output)
    if batchreport.inside(outdir, root):
        raise BatchError("the output folder must not be inside the submissions folder %s" % root)
    run_instructor = grade.runs_instructor_tests(opts.no_instructor_tests, opts.instructor_tests,
                                                    bool(opts.functions or opts.files))
    return _Setup(cfg, functions, "cuda" if opts.device in ("cuda", "auto") and plans.cuda_available() else "cpu",
                  jobs, root, outdir, run_instructor,
                  instructor.find_files(opts.instructor_tests) if run_instructor else [])


def _previous(outdir, opts, settings):
    """OUTDIR's manifest when this run resumes it (None for a fresh start); refuses what would mix
    two gradings: other settings, or a folder that is not grade-batch's."""
    path = os.path.join(outdir, MANIFEST)
    if opts.restart and os.path.isdir(outdir):  # whatever OUTDIR's manifest says, even when unreadable
        for name in (RESULTS, MANIFEST) + batchreport.REPORTS:
            target = os.path.join(outdir, name)
            if os.path.isdir(target):
                shutil.rmtree(target)
            elif os.path.exists(target):
                os.unlink(target)
        return None
    old = batchreport.read_json(path) if os.path.exists(path) else None
    if os.path.exists(path) and not isinstance(old, dict):
        raise BatchError("%s is unreadable: remove it (or use --restart)" % path)
    if old is not None and old.get("format") != FORMAT:
        raise BatchError("%s was written by another version of grade-batch: use --restart or another "
                         "output folder" % path)
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


LOCK = ".grade-batch.lock"


@contextlib.contextmanager
def _exclusive(outdir):
    """OUTDIR for this run alone (flock on OUTDIR/.grade-batch.lock, held to the end): a second grade-batch
    on the same OUTDIR, such as a Slurm task resubmitted while the first still runs, is refused, never
    mixed with it. A file system without locks (some network ones) grades unlocked."""
    fd = os.open(os.path.join(outdir, LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchError("another grade-batch is writing %s now: let it end (or stop it), then run this "
                             "command again" % outdir)
        except OSError:
            pass
        yield
    finally:
        os.close(fd)


def _run(opts, out, err):
    s = _setup(opts)
    batchreport.make_private_dir(s.outdir)
    with _exclusive(s.outdir):
        return _run_alone(s, opts, out, err)


def _run_alone(s, opts, out, err):
    from ... import registry

    found = discover(s.root, registry.FILES)
    keys = {it.key for it in found.items}
    chosen = in_shard(keys, *opts.shard) if opts.shard else keys
    mine = [it for it in found.items if it.key in chosen]
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
    done = {it.key for it in gradable
            if (batchreport.record_of(s.outdir, it.key, it.source) or {}).get("status") == "graded"}
    todo = [it for it in gradable if it.key not in done]

    print("grade-batch: %s is %s: %s, %s" % (opts.input, found.kind, _n(len(found.items), "submission"),
                                             _n(sum(1 for it in found.items if it.problem), "bad input")), file=out)
    for note in found.notes:
        print("  note: %s" % batchreport.printable(note), file=out)
    if opts.shard:
        print("  shard %d/%d: %d of them (by a hash of each student's name), %s" % (
            opts.shard[0], opts.shard[1], len(mine), _n(len(bad), "bad input")), file=out)
    if old is not None and isinstance(old.get("students"), list):
        for line in _late_lines(sorted(keys - set(old["students"])), opts.shard):
            print(line, file=out)
    print("  seed %d (%s); %s%s on %s; %s" % (
        seed, "kept from the first run" if old is not None else seed_from, _n(len(s.functions), "function"),
        " + instructor tests" if s.run_instructor and s.instructor_files else "", s.device, _n(s.jobs, "job")),
        file=out)
    if old is not None:
        print("  resuming %s: %d already graded, %d to grade" % (opts.output, len(done), len(todo)), file=out)

    if not batchreport.make_private_dir(s.outdir):
        mode = batchreport.open_to_others(s.outdir)
        if mode is not None:
            print("  warning: %s" % batchreport.folder_warning(opts.output, mode), file=out)
    batchreport.make_private_dir(os.path.join(s.outdir, RESULTS))
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    batchreport.write_json(dict(
        settings, seed=seed, seed_from=seed_from, input=s.root, input_kind=found.kind,
        created=(old or {}).get("created") or now, updated=now, command=opts.command,
        items=[it.public() for it in mine], all_submissions=len(found.items), identical=found.identical,
        students=sorted(keys), notes=found.notes), os.path.join(s.outdir, MANIFEST))

    progress = Progress(len(gradable), len(done), err)
    start = time.monotonic()
    try:
        failures = _grade_phase(s, opts, seed, todo, progress) if todo else []
    except KeyboardInterrupt as e:
        progress.close()
        signum = signal.SIGTERM if "SIGTERM" in str(e) else signal.SIGINT
        if os.environ.get("SLURM_ARRAY_TASK_ID"):  # a shard of docs/regrading.md's script
            how = ("Resume by submitting this task again (docs/regrading.md's script: bash regrade.sh %s), which "
                   "submits the merge after it too" % os.environ["SLURM_ARRAY_TASK_ID"])
        else:
            how = "Resume with the same command" + ((":\n  " + opts.command) if opts.command else ".")
        print("\ninterrupted (%s): %d graded in this run, %d of %d done in all; those being graded were "
              "stopped and are graded again on resume.\n%s" % (
                  signal.Signals(signum).name, progress.done - progress.start_done, progress.done, progress.total,
                  how), file=err)
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
    for line in _isolation_lines(s, batchreport.read_json(os.path.join(s.outdir, "summary.json"))):
        print(line, file=out)
    print("wrote %s" % ", ".join(p if os.path.isabs(opts.output) else os.path.relpath(p) for p in written), file=out)
    return 1 if failures else 0


def _late_lines(late, shard):
    """What a resumed run says of the students who appeared in DIR after its first run."""
    if not late:
        return []
    if not shard:
        return ["  since the first run, %s appeared: graded now (%s)" % (_n(len(late), "student"), ", ".join(late))]
    k, n = shard
    here = [key for key in late if shard_of(key, n) == k]
    other = [key for key in late if shard_of(key, n) != k]
    lines = ["  since the first run, %s appeared in %s" % (_n(len(late), "student"), "the input")]
    if here:
        lines.append("    in this shard, graded now: %s" % ", ".join(here))
    if other:
        lines.append("    in other shards, graded when their shard runs again (merge names them until then): %s"
                     % ", ".join("%s (shard %d/%d)" % (key, shard_of(key, n), n) for key in other))
    return lines


MOUNT_LAYER = "mount namespace"  # what covers DIR and OUTDIR for the workers (sandbox.PRIVATE_PATHS)


def _isolation_lines(s, summary):
    """What is said after a batch of the isolation layers that were missing in some of its gradings
    (summary.md has them all); and when the mount namespace was, that DIR is only as private as its mode."""
    iso = (summary or {}).get("isolation") if isinstance(summary, dict) else None
    if not iso or not iso.get("layers"):
        return []
    lines = []
    missing = [e for e in iso["layers"] if e.get("not_available")]
    if missing:
        lines.append("isolation: not available in some gradings (see summary.md): %s" % "; ".join(
            "%s in %d of %d (%s)" % (e["layer"], e["not_available"], iso["gradings"],
                                     e["reasons"][0]["reason"] if e.get("reasons") else "?") for e in missing))
    mount = [e for e in iso["layers"] if e["layer"] == MOUNT_LAYER]
    if mount and mount[0].get("not_available"):
        mode = batchreport.open_to_others(s.root)
        if mode is not None and mode & 0o005:
            lines.append("warning: without a mount namespace the workers could read %s (mode %04o): make it "
                         "unreadable by others (chmod o-rwx) before grading untrusted code here" % (s.root, mode))
    return lines


def _grade_phase(s, opts, seed, todo, progress):
    """Build the plan and grade `todo`, with what the batch holds meanwhile (threads, fork server,
    SIGTERM handler, DIR and OUTDIR in sandbox.PRIVATE_PATHS) given back whatever happens. Returns
    the grader's failures."""
    import torch

    from ... import registry

    threads = torch.get_num_threads()
    with private([s.root, s.outdir]):  # before the fork server starts: its workers see them covered too
        old_term = None
        if threading.current_thread() is threading.main_thread():
            def on_term(signum, frame):
                raise KeyboardInterrupt("SIGTERM")
            old_term = signal.signal(signal.SIGTERM, on_term)
        fs = grader = None
        try:
            if s.jobs > 1:
                torch.set_num_threads(1)  # the parallelism is across submissions
            plan = registry.plan(s.functions, device=s.device, seed=seed, track=s.cfg.track)
            if opts.use_forkserver:
                try:
                    fs = forkserver.start()
                except Exception as e:  # the usual start still works, only slower
                    progress.say("note: the fork server did not start (%s): workers start the usual way" % e)
            if os.geteuid() != 0:  # without root, a host without the kernel's layers fails everyone alike:
                try:                # say so once, before anyone is graded
                    sandbox.probe(s.cfg.limits(), s.device == "cuda")
                except sandbox.EnvironmentFailure as e:
                    raise BatchError(str(e).split("\nWhat it printed:")[0])
            grader = _Grader(s.root, s.outdir, plan, s.cfg, opts, s.run_instructor,
                             sum(float(fn.points) for fn in s.functions))
            return _grade_all(grader, todo, s.jobs, progress)
        finally:
            progress.close()
            try:
                if grader is not None:
                    grader.cleanup()
                if fs is not None:
                    fs.stop()
            finally:
                if old_term is not None:
                    signal.signal(signal.SIGTERM, old_term)
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
