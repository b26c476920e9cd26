"""grade-batch and merge (autograder/verbs/batch/: run.py, report.py): a class graded against one plan,
bad inputs reported, resume, shards, merge, Ctrl-C.

Kept fast by grading two functions only (rnn_step_forward, rnn_step_backward) without the
instructor tests; the class is built once per module.
"""
import csv
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile

import pytest
from gradescope_schema import check
from helpers import ASSIGNMENT, ROOT, SOLUTIONS, copy_solutions, make_variant, write_submission

from autograder.verbs.batch import run as batch, report as batchreport, discovery

from autograder import cli, registry

from autograder.engine import runner

FUNCTIONS = ["rnn_step_forward", "rnn_step_backward"]
TANH_DERIVATIVE_BUG = [("da = dnext_h * (1 - next_h * next_h)", "da = dnext_h * (1 - next_h)")]
GRADED = {"good", "zipped", "buggy", "broken", "hostile", "stub"}  # what the mixed class grades
BAD = {"corrupt.zip", "empty", "evil.zip", "good.zip"}  # what it reports as bad input
PNG = b"\x89PNG\r\n\x1a\n"


def zip_folder(folder, path, prefix=""):
    with zipfile.ZipFile(path, "w") as zf:
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                zf.write(os.path.join(folder, name), prefix + name)
    return path


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    """A folder of per-student folders and zips: good, buggy, broken, hostile, stubs, and bad inputs."""
    d = tmp_path_factory.mktemp("class") / "submissions"
    d.mkdir()
    copy_solutions(str(d / "good"))
    zip_folder(SOLUTIONS, str(d / "zipped.zip"), prefix="hw3/")  # files one folder down in the zip
    make_variant(str(d / "buggy"), "rnn_layers.py", TANH_DERIVATIVE_BUG)
    write_submission(str(d / "broken"), {"rnn_layers.py": "def rnn_step_forward(x, prev_h, Wx, Wh, b)\n    pass\n"})
    write_submission(str(d / "hostile"), {"rnn_layers.py": "import os\nos._exit(3)\n"})
    shutil.copytree(ASSIGNMENT, str(d / "stub"))
    (d / "empty").mkdir()
    (d / "corrupt.zip").write_bytes(b"PK\x03\x04 this is not a zip at all")
    with zipfile.ZipFile(str(d / "evil.zip"), "w") as zf:
        zf.writestr("../rnn_layers.py", "print('escaped')\n")
    zip_folder(SOLUTIONS, str(d / "good.zip"))  # the same student as good/: a duplicate
    (d / "roster.txt").write_text("not a submission\n")
    return str(d)


def options(src, out, **kw):
    kw.setdefault("functions", FUNCTIONS)
    kw.setdefault("jobs", 2)
    kw.setdefault("device", "cpu")
    return batch.Options(input=src, output=str(out), **kw)


def run(opts):
    out, err = io.StringIO(), io.StringIO()
    code = batch.run(opts, out, err)
    return code, out.getvalue(), err.getvalue()


def read_csv(outdir):
    with open(os.path.join(outdir, "scores.csv")) as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def by_student(outdir):
    header, rows = read_csv(outdir)
    return {r[0]: dict(zip(header, r)) for r in rows}


def stamps(outdir):
    """(inode, mtime) of every results.json: a rewrite changes both."""
    out = {}
    root = os.path.join(outdir, "results")
    for key in os.listdir(root):
        path = os.path.join(root, key, "results.json")
        if os.path.exists(path):
            st = os.stat(path)
            out[key] = (st.st_ino, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def seed(klass):
    """The seed the shards derive: the full run uses it too, so that their scores can be compared."""
    return batch.derived_seed(discovery.discover(klass).names)


@pytest.fixture(scope="module")
def full(klass, seed, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "out"
    code, stdout, stderr = run(options(klass, out, seed=seed))
    return str(out), code, stdout, stderr


# --------------------------------------------------------------------------- one run
def test_a_mixed_class_is_graded_with_each_status_and_score(full):
    out, code, stdout, stderr = full
    assert code == 0, stdout + stderr
    assert "a folder of per-student folders and zips" in stdout and "10 submissions, 4 bad inputs" in stdout
    assert "roster.txt" in stdout  # ignored, and said so
    rows = by_student(out)
    assert set(rows) == GRADED | {"corrupt", "empty", "evil"}  # good.zip is good's duplicate: no row of its own
    header, _ = read_csv(out)
    assert header == ["student", "total", "max"] + FUNCTIONS + ["status", "note"]
    assert [r[0] for r in read_csv(out)[1]] == sorted(rows)
    for name in ("good", "zipped"):
        assert (rows[name]["total"], rows[name]["max"], rows[name]["status"]) == ("6", "6", "graded")
    buggy = rows["buggy"]
    assert (buggy["rnn_step_forward"], buggy["rnn_step_backward"], buggy["total"]) == ("2", "0", "2")
    for name in ("broken", "hostile", "stub"):
        assert (rows[name]["total"], rows[name]["status"]) == ("0", "graded"), rows[name]
    for name in ("corrupt", "empty", "evil"):
        assert rows[name]["status"] == "bad input" and rows[name]["total"] == "", rows[name]
    assert "not a readable zip" in rows["corrupt"]["note"] and "empty submission" in rows["empty"]["note"]
    assert "outside its folder" in rows["evil"]["note"]
    hostile = json.load(open(os.path.join(out, "results", "hostile", "results.json")))
    assert "exited with status 3" in json.dumps(hostile)


def test_each_results_json_is_what_grade_writes(full, klass, seed, tmp_path):
    out = full[0]
    mine = str(tmp_path / "results.json")
    assert cli.main(["grade", os.path.join(klass, "buggy"), "-o", mine, "--device", "cpu", "--seed", str(seed),
                     "--functions", ",".join(FUNCTIONS)]) == 0
    alone = json.load(open(mine))
    batched = json.load(open(os.path.join(out, "results", "buggy", "results.json")))
    check(batched)
    for data in (alone, batched):
        del data["execution_time"]
    assert batched == alone
    assert any(t["score"] < t["max_score"] for t in batched["tests"])


def test_summary_has_pass_rates_hints_and_bad_inputs(full):
    out = full[0]
    s = json.load(open(os.path.join(out, "summary.json")))
    assert s["graded"] == 6 and s["total"]["max"] == 6 and s["total"]["min"] == 0 and s["total"]["median"] == 1.0
    fwd, bwd = s["functions"]["rnn_step_forward"], s["functions"]["rnn_step_backward"]
    assert (fwd["full_marks"], fwd["students"]) == (3, 6) and (bwd["full_marks"], bwd["students"]) == (2, 6)
    small = [c for c in bwd["checks"] if c["check"].startswith("float64, small")]
    assert small and (small[0]["passed"], small[0]["of"]) == (2, 6)
    assert [h["students"] for h in bwd["hints"] if "tanh derivative" in h["text"]] == [1]
    firsts = {f["text"]: f["students"] for f in bwd["first_failures"]}
    assert any("dx is wrong: largest relative error # (tolerance #)" in t for t in firsts), firsts
    reasons = {b["source"]: b["reason"] for b in s["bad_inputs"]}
    assert set(reasons) == BAD
    assert "duplicate" in reasons["good.zip"] and "good/" in reasons["good.zip"] and "same files" in reasons["good.zip"]
    assert s["identical"] == [["good", "zipped"]]
    md = open(os.path.join(out, "summary.md")).read()
    for text in ("## Bad inputs", "corrupt.zip", "not a readable zip", "empty submission", "3 of 6 (50%)",
                 "1 × the tanh derivative is 1 - tanh(a)**2", "![histogram of total scores](histogram.png)"):
        assert text in md, text
    with open(os.path.join(out, "histogram.png"), "rb") as f:
        assert f.read(8) == PNG


# --------------------------------------------------------------------------- resume
def test_rerun_grades_nothing_then_only_what_is_missing(klass, full, tmp_path):
    out = str(tmp_path / "out")
    shutil.copytree(full[0], out)  # the full run's output, as if this folder had graded it
    before = stamps(out)
    assert set(before) == GRADED
    code, stdout, _ = run(options(klass, out))
    assert code == 0 and "nothing left to grade: 6 already done" in stdout, stdout
    assert stamps(out) == before
    for name in ("buggy", "zipped"):  # lost in a crash
        os.unlink(os.path.join(out, "results", name, "results.json"))
    code, stdout, _ = run(options(klass, out))
    assert code == 0 and "4 already graded, 2 to grade" in stdout, stdout
    after = stamps(out)
    assert set(after) == GRADED
    assert {k for k in after if after[k] != before.get(k)} == {"buggy", "zipped"}
    assert by_student(out) == by_student(full[0])  # the same seed: the same scores


def test_changed_options_are_refused_unless_restart(klass, full, tmp_path):
    out = str(tmp_path / "out")
    shutil.copytree(full[0], out)
    code, _, err = run(options(klass, out, functions=["rnn_step_forward"]))
    assert code == 2 and "graded functions" in err and "--restart" in err
    code, _, err = run(options(klass, out, seed=12345))
    assert code == 2 and "seed" in err
    assert set(stamps(out)) == GRADED  # nothing was touched
    code, stdout, err = run(options(klass, out, functions=["rnn_step_forward"], restart=True))
    assert code == 0, err
    assert by_student(out)["good"]["total"] == "2" and "rnn_step_backward" not in read_csv(out)[0]


def test_restart_clears_an_unreadable_manifest(tmp_path):
    out = tmp_path / "out"
    (out / "results" / "x").mkdir(parents=True)
    (out / batch.MANIFEST).write_text("{ not json")
    with pytest.raises(batch.BatchError, match="unreadable"):
        batch._previous(str(out), options("src", out), {})
    assert batch._previous(str(out), options("src", out, restart=True), {}) is None
    assert os.listdir(str(out)) == []


def test_an_output_folder_of_something_else_is_refused(klass, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = run(options(klass, tmp_path))
    assert code == 2 and "not empty" in err
    code, _, err = run(options(os.path.join(klass, "good"), tmp_path / "x"))
    assert code == 2 and "looks like one submission" in err


# --------------------------------------------------------------------------- shards and merge
def test_shards_are_disjoint_cover_everything_and_merge_into_the_full_run(klass, full, tmp_path):
    keys = ["s%02d" % i for i in range(23)]
    for n in (1, 2, 3, 5):
        parts = [batch.in_shard(keys, k, n) for k in range(1, n + 1)]
        assert set().union(*parts) == set(keys) and sum(len(p) for p in parts) == len(keys)
        # a late student moves nobody (the old round-robin over the sorted names moved everyone after them)
        later = [batch.in_shard(keys + ["a-late-one", "s05b"], k, n) for k in range(1, n + 1)]
        assert [p - {"a-late-one", "s05b"} for p in later] == parts
    with pytest.raises(batch.BatchError):
        batch.parse_shard("3/2")

    outs = [str(tmp_path / ("shard-%d" % k)) for k in (1, 2)]
    for k, out in enumerate(outs, 1):
        code, stdout, err = run(options(klass, out, shard=(k, 2), jobs=1 + k % 2))
        assert code == 0, stdout + err
        assert "derived from the names" in stdout
    mans = [json.load(open(os.path.join(o, "batch.json"))) for o in outs]
    assert mans[0]["seed"] == mans[1]["seed"]
    sources = [{it["source"] for it in m["items"]} for m in mans]
    assert not sources[0] & sources[1] and sources[0] | sources[1] == GRADED_SOURCES | BAD
    assert all(sources)

    merged = str(tmp_path / "merged")
    assert cli.main(["merge"] + outs + ["-o", merged]) == 0
    assert read_csv(merged) == read_csv(full[0])
    s = json.load(open(os.path.join(merged, "summary.json")))
    assert s["graded"] == 6 and {b["source"] for b in s["bad_inputs"]} == BAD
    with open(os.path.join(merged, "histogram.png"), "rb") as f:
        assert f.read(8) == PNG

    paths, notes, incomplete = batchreport.merge(outs[:1], str(tmp_path / "half"))
    assert incomplete[0] == "shard 2 of 2 is not among the merged folders", incomplete
    absent = sorted(batch.in_shard(mans[1]["students"], 2, 2))  # every one of its students is named
    assert absent and all("%s (in shard 2/2, which is not among" % k in incomplete[1] for k in absent), incomplete
    half = read_csv(str(tmp_path / "half"))
    assert {row[0] for row in half[1] if "not graded yet" in row} == set(absent)
    r = subprocess.run([sys.executable, "-m", "autograder", "merge", outs[0], "-o", str(tmp_path / "half2")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.startswith("incomplete: shard 2 of 2"), r.stderr
    assert open(os.path.join(str(tmp_path / "half2"), "summary.md")).read().split("\n")[2].startswith("**Incomplete")

    other = str(tmp_path / "other-seed")
    shutil.copytree(outs[1], other)
    man = json.load(open(os.path.join(other, "batch.json")))
    man["seed"] += 1
    json.dump(man, open(os.path.join(other, "batch.json"), "w"))
    with pytest.raises(batchreport.MergeError, match="seed"):
        batchreport.merge([outs[0], other], str(tmp_path / "bad"))
    r = subprocess.run([sys.executable, "-m", "autograder", "merge", outs[0], other, "-o", str(tmp_path / "bad")],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "seed differ" in r.stderr
    assert not os.path.exists(str(tmp_path / "bad" / "scores.csv"))


GRADED_SOURCES = {"good", "zipped.zip", "buggy", "broken", "hostile", "stub"}


# --------------------------------------------------------------------------- inputs
def test_gradescope_export_names_students_and_keeps_the_latest_of_a_duplicate(tmp_path):
    export = tmp_path / "export"
    copy_solutions(str(export / "submission_101" / "hw3"))  # nested one level
    make_variant(str(export / "submission_102"), "rnn_layers.py", TANH_DERIVATIVE_BUG)  # alice, earlier
    shutil.copytree(ASSIGNMENT, str(export / "submission_103"))
    (export / "submission_metadata.yml").write_text("""\
submission_101:
  :submitters:
  - :name: Alice Liddell
    :sid: '1001'
    :email: alice@example.edu
  :created_at: 2026-11-20 23:58:00.000000000 -08:00
  :score: 80.0
submission_102:
  :submitters:
  - :name: Alice Liddell
    :sid: '1001'
    :email: alice@example.edu
  :created_at: 2026-11-19 10:00:00.000000000 -08:00
  :score: 40.0
submission_103:
  :submitters:
  - :name: Bob Stone
    :email: bob@example.edu
  :created_at: 2026-11-20 12:00:00.000000000 -08:00
submission_104:
  :submitters:
  - :name: Carol Ng
    :sid: '1003'
  :created_at: 2026-11-20 12:00:00.000000000 -08:00
""")
    out = str(tmp_path / "out")
    r = subprocess.run([sys.executable, "-m", "autograder", "grade-batch", str(export), "-o", out, "--jobs", "2",
                        "--device", "cpu", "--functions", ",".join(FUNCTIONS)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "a Gradescope export" in r.stdout and r.stderr == ""  # no terminal: no progress bar
    header, rows = read_csv(out)
    assert header == ["student", "sid", "email", "name", "total", "max"] + FUNCTIONS + ["gradescope_score",
                                                                                        "status", "note"]
    rows = {r[0]: dict(zip(header, r)) for r in rows}
    assert set(rows) == {"1001", "bob@example.edu", "1003"}
    alice = rows["1001"]
    assert (alice["total"], alice["name"], alice["email"], alice["gradescope_score"]) == (
        "6", "Alice Liddell", "alice@example.edu", "80")
    bob = rows["bob@example.edu"]
    assert (bob["total"], bob["sid"], bob["status"]) == ("0", "", "graded")
    assert rows["1003"]["status"] == "bad input" and "no folder submission_104" in rows["1003"]["note"]
    s = json.load(open(os.path.join(out, "summary.json")))
    dup = [b for b in s["bad_inputs"] if b["source"] == "submission_102"]
    assert dup and "latest (submission_101" in dup[0]["reason"] and "their files differ" in dup[0]["reason"]
    assert os.path.isfile(os.path.join(out, "results", "1001", "results.json"))


def test_students_whose_names_make_the_same_key_are_different_students(tmp_path):
    """`a b/` and `a_b/` both make the letters a_b: two students, two keys (the name that was changed gets a
    hash of itself), each graded; `alice.zip` beside `alice/` is the same student, a duplicate under alice's
    key."""
    d = tmp_path / "class"
    for name in ("a b", "a_b", "alice"):
        write_submission(str(d / name), {"rnn_layers.py": "x = %r\n" % name})
    zip_folder(str(d / "alice"), str(d / "alice.zip"))
    found = discovery.discover(str(d), registry.FILES)
    graded = {it.source: it.key for it in found.items if it.problem is None}
    assert graded == {"a b": discovery.safe_key("a b"), "a_b": "a_b", "alice": "alice"}
    assert graded["a b"].startswith("a_b-") and len(set(graded.values())) == 3
    (dup,) = [it for it in found.items if it.problem is not None]
    assert (dup.source, dup.key, dup.duplicate_of) == ("alice.zip", "alice", "alice") and "same files" in dup.problem


def test_zips_are_read_safely(tmp_path):
    link = zipfile.ZipInfo("hw/link.py")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = str(tmp_path / "a.zip")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("hw/rnn_layers.py", "x = 1\n")
        zf.writestr(link, "/etc/passwd")
        zf.writestr("__MACOSX/._rnn_layers.py", "junk")
    assert discovery.read_zip(path) == {"hw/rnn_layers.py": b"x = 1\n"}  # no link, no resource fork
    discovery.unpack(discovery.read_zip(path), str(tmp_path / "u"))
    assert os.listdir(str(tmp_path / "u" / "hw")) == ["rnn_layers.py"]
    big = str(tmp_path / "big.zip")
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("rnn_layers.py", b"0" * (discovery.MAX_ZIP_BYTES + 1))
    with pytest.raises(discovery.BadInput, match="over"):
        discovery.read_zip(big)
    with zipfile.ZipFile(str(tmp_path / "abs.zip"), "w") as zf:
        zf.writestr("/tmp/x.py", "")
    with pytest.raises(discovery.BadInput, match="outside"):
        discovery.read_zip(str(tmp_path / "abs.zip"))


def test_first_failures_group_across_students():
    a = ("[float64, small] dx is wrong: largest relative error 2.25e+00 (tolerance 1e-07) at [2, 2]: "
         "expected -0.2, got 0.25")
    b = "[float64, small] dx is wrong: largest relative error 6.91e-01 (tolerance 1e-07) at [0, 1]: expected 1, got -3"
    assert batchreport.normalize(a) == batchreport.normalize(b)
    assert batchreport.normalize("[float32, small] x") != batchreport.normalize("[float64, small] x")


# --------------------------------------------------------------------------- failures and Ctrl-C
class FakeForkServer:
    calls = []

    @classmethod
    def start(cls):
        cls.calls.append("start")
        return cls()

    def stop(self):
        self.calls.append("stop")


def test_a_grader_failure_is_listed_and_the_batch_goes_on(tmp_path, monkeypatch):
    src = tmp_path / "src"
    copy_solutions(str(src / "ok"))
    copy_solutions(str(src / "unlucky"))
    real = runner.grade

    def grade(submission, plan, *a, **k):
        if os.path.basename(submission) == "unlucky":
            raise RuntimeError("oracle exploded")
        return real(submission, plan, *a, **k)

    monkeypatch.setattr(runner, "grade", grade)
    monkeypatch.setattr(batch, "forkserver", FakeForkServer)
    out = str(tmp_path / "out")
    code, stdout, _ = run(options(str(src), out, functions=["rnn_step_forward"]))
    assert FakeForkServer.calls == ["start", "stop"]  # one zygote for the batch
    assert code == 1 and "the grader failed on 1 submission" in stdout and "unlucky" in stdout
    data = json.load(open(os.path.join(out, "results", "unlucky", "results.json")))
    assert [t["name"] for t in data["tests"] if t["visibility"] == "visible"] == ["autograder failed"]
    rows = by_student(out)
    assert rows["ok"]["total"] == "2" and rows["unlucky"]["status"] == "grader failed"
    assert "oracle exploded" in rows["unlucky"]["note"]
    assert "## Grader failures" in open(os.path.join(out, "summary.md")).read()
    monkeypatch.setattr(runner, "grade", real)
    code, stdout, _ = run(options(str(src), out, functions=["rnn_step_forward"], use_forkserver=False))
    assert FakeForkServer.calls == ["start", "stop"]
    assert code == 0 and "1 already graded, 1 to grade" in stdout  # a grader failure is retried
    assert by_student(out)["unlucky"]["total"] == "2"


def _processes_in(folder):
    """Processes whose command line names `folder` or whose working directory is inside it (a worker
    started fresh names its scratch folder; one forked from the zygote works in it)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                named = folder.encode() in f.read()
            cwd = os.readlink("/proc/%s/cwd" % pid)
        except OSError:
            continue
        if named or cwd == folder or cwd.startswith(folder + os.sep):
            found.append(int(pid))
    return found


SLEEPY = [("next_h = torch.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)",
           "__import__('time').sleep(30)\n    next_h = torch.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)")]


def test_ctrl_c_stops_promptly_and_the_same_command_resumes(tmp_path):
    """a0 is graded; slow1 and slow2 sleep in every call (10 s each before the call times out):
    Ctrl-C must stop them where they wait, within seconds, and leave no worker behind."""
    src = tmp_path / "src"
    copy_solutions(str(src / "a0"))
    for name in ("slow1", "slow2"):
        make_variant(str(src / name), "rnn_layers.py", SLEEPY)
    # The workers' scratch folders land here, so their command lines name it; outside tmp_path,
    # whose parents the sandbox uid (as root) cannot enter.
    scratch = tempfile.mkdtemp(prefix="ag-test-batch-")
    os.chmod(scratch, 0o711)
    try:
        _interrupt_and_resume(tmp_path, src, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _interrupt_and_resume(tmp_path, src, scratch):
    out = str(tmp_path / "out")
    cmd = [sys.executable, "-m", "autograder", "grade-batch", str(src), "-o", out, "--jobs", "2", "--device", "cpu",
           "--functions", ",".join(FUNCTIONS)]
    env = dict(os.environ, TMPDIR=scratch)
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = os.path.join(out, "results", "a0", "results.json")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and p.poll() is None and not os.path.exists(first):
        time.sleep(0.05)
    assert p.poll() is None, p.communicate()
    time.sleep(1.0)  # slow1 and slow2 are asleep in a call now
    p.send_signal(signal.SIGINT)
    sent = time.monotonic()
    stdout, stderr = p.communicate(timeout=120)
    took = time.monotonic() - sent
    assert p.returncode == 130, stdout + stderr
    assert took < 9, took  # grading them to the end would take over 20 s
    assert "stopping the 2 submissions being graded" in stderr
    assert "interrupted (SIGINT)" in stderr and "Resume with the same command" in stderr and "grade-batch" in stderr
    # the command to type again names this interpreter (the kit's), never a bare `python` that may be another
    rel = os.path.relpath(sys.executable, ROOT)
    assert "%s -m autograder grade-batch" % (sys.executable if rel.startswith("..") else rel) in stderr, stderr
    assert os.listdir(os.path.join(out, "results")) == ["a0"]
    assert batchreport.load_record(out, "a0")["status"] == "graded"
    time.sleep(0.5)
    assert _processes_in(scratch) == []  # no worker outlived the batch
    assert os.listdir(scratch) == []
    before = stamps(out)
    for name in ("slow1", "slow2"):  # fixed meanwhile, so that the rest is quick to grade
        shutil.rmtree(str(src / name))
        copy_solutions(str(src / name))
    code, stdout, err = run(options(str(src), out))
    assert code == 0, stdout + err
    assert "1 already graded, 2 to grade" in stdout, stdout
    after = stamps(out)
    assert set(after) == {"a0", "slow1", "slow2"} and after["a0"] == before["a0"]
    assert all(r["total"] == "6" for r in by_student(out).values())


@pytest.mark.parametrize("when", [0.0, 1.5], ids=["while-the-worker-starts", "while-a-call-sleeps"])
def test_a_called_off_grading_stops_at_its_next_wait_and_leaves_nothing(tmp_path, monkeypatch, when):
    """sandbox.cancellable, what a batch's Ctrl-C sets: runner.grade raises Cancelled within a poll of
    the event being set, whether its worker is starting or a call is asleep, and leaves no process
    and no scratch folder behind."""
    import threading

    from autograder.engine import sandbox

    sub = str(tmp_path / "slow")
    make_variant(sub, "rnn_layers.py", SLEEPY)
    scratch = tempfile.mkdtemp(prefix="ag-test-cancel-")
    os.chmod(scratch, 0o711)
    monkeypatch.setattr(tempfile, "tempdir", scratch)
    plan = registry.plan(registry.select(names=FUNCTIONS[:1]), device="cpu", seed=0)
    event = threading.Event()
    timer = threading.Timer(when, event.set)
    try:
        started = time.monotonic()
        timer.start()
        with pytest.raises(sandbox.Cancelled):
            with sandbox.cancellable(event):
                runner.grade(sub, plan)
        took = time.monotonic() - started
        assert took < when + 5, took  # the call alone sleeps 10 s before it times out
        time.sleep(0.3)
        assert _processes_in(scratch) == []
        assert os.listdir(scratch) == []
    finally:
        timer.cancel()
        shutil.rmtree(scratch, ignore_errors=True)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_drawn_on_a_terminal_only(monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")  # the line is cut to the terminal's width (80 under pytest-xdist)
    quiet = io.StringIO()
    p = batch.Progress(10, 2, quiet)
    p.tick("alice 6/6")
    p.close()
    assert quiet.getvalue() == ""
    tty = Terminal()
    p = batch.Progress(10, 2, tty)
    p.start -= 60  # one graded in a minute
    p.tick("alice 6/6")
    p.say("the grader failed on bob")
    p.close()
    text = tty.getvalue()
    assert text.startswith("\r[") and "3/10" in text and "1.0/min" in text and "ETA 7m00s" in text
    assert "last: alice 6/6" in text and "the grader failed on bob\n" in text and text.endswith("\n")


# --------------------------------------------------------------------------- privacy (issue 18, item 6)
def _modes(paths):
    return {p: stat.S_IMODE(os.stat(p).st_mode) for p in paths}


def _assert_owner_only(folder, top=True):
    """Every folder under `folder` is 0700 and every file 0600 (`folder` itself too when top)."""
    wrong = []
    for here, dirs, files in os.walk(folder):
        if here != folder or top:
            mode = stat.S_IMODE(os.stat(here).st_mode)
            if mode != 0o700:
                wrong.append("%s %04o" % (here, mode))
        for name in files:
            mode = stat.S_IMODE(os.stat(os.path.join(here, name)).st_mode)
            if mode != 0o600:
                wrong.append("%s %04o" % (os.path.join(here, name), mode))
    assert not wrong, wrong


def test_outputs_are_owner_only(full, tmp_path):
    out = full[0]
    _assert_owner_only(out)  # made by grade-batch: hidden details and other students' results are the owner's
    assert {"scores.csv", "summary.md", "summary.json", "batch.json", "results"} <= set(os.listdir(out))
    merged = str(tmp_path / "merged")
    assert cli.main(["merge", out, "-o", merged]) == 0
    _assert_owner_only(merged)


def test_overlapping_batches_change_no_folder_mode(tmp_path):
    """Two shards of one class graded at once on one host (as a Slurm array does when its tasks share
    a node): no folder's mode changes at any moment (the old save-hide-restore of DIR's and OUT's
    modes let the first to finish open them while the other still graded), the output folders that
    existed keep their modes and get a warning, and what is written into them is owner-only."""
    src = tmp_path / "class"
    for name in ("ann", "bob", "cyd", "dee"):
        copy_solutions(str(src / name))
    outs = [str(tmp_path / "out-1"), str(tmp_path / "out-2")]
    os.mkdir(outs[0], 0o755)
    os.mkdir(outs[1], 0o750)
    watched = [str(src)] + [str(src / n) for n in os.listdir(str(src))] + outs
    for path, mode in zip(watched, [0o755, 0o755, 0o711, 0o750, 0o755, 0o755, 0o750]):
        os.chmod(path, mode)
    before = _modes(watched)
    procs = [subprocess.Popen([sys.executable, "-m", "autograder", "grade-batch", str(src), "-o", out,
                               "--shard", "%d/2" % k, "--jobs", "2", "--device", "cpu", "--functions", FUNCTIONS[0]],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k, out in enumerate(outs, 1)]
    changed, samples = [], 0
    deadline = time.monotonic() + 300
    try:
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            now = _modes(watched)
            samples += 1
            if now != before:
                changed.append({p: "%04o" % m for p, m in now.items() if m != before[p]})
            time.sleep(0.002)
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert not changed, changed[:3]
    assert _modes(watched) == before
    for p, (stdout, stderr) in zip(procs, results):
        assert p.returncode == 0, stdout + stderr
    assert samples > 10
    for out, (stdout, _) in zip(outs, results):
        assert "is open to other users" in stdout and "chmod go-rwx" in stdout, stdout
        _assert_owner_only(out, top=False)
        assert len(os.listdir(os.path.join(out, "results"))) == 2
    merged = str(tmp_path / "merged")
    assert cli.main(["merge"] + outs + ["-o", merged]) == 0
    _assert_owner_only(merged)
    assert {r["status"] for r in by_student(merged).values()} == {"graded"}


def test_workers_never_see_the_class_or_the_outputs_and_isolation_is_summarized(tmp_path, monkeypatch):
    """While a batch grades, the class folder and its output folder are in sandbox.PRIVATE_PATHS (every
    worker's mount namespace covers them), a zip is unpacked into a private folder outside both, and
    the paths are taken out afterwards (one another batch of this process still holds stays; one that
    was there before stays). Each grading's isolation layers reach grading.json, summary.json,
    summary.md and the merge."""
    from autograder.engine import sandbox

    src = tmp_path / "class"
    copy_solutions(str(src / "ann"))
    zip_folder(SOLUTIONS, str(src / "bob.zip"))
    out = str(tmp_path / "out")
    layers = {"ann": {"mount namespace": "active", "seccomp": "not available: no libseccomp here"},
              "bob": {"mount namespace": "active", "seccomp": "active"}}
    seen = {}
    real = runner.grade

    def grade(submission, plan, *a, **k):
        key = "ann" if os.path.basename(submission) == "ann" else "bob"
        seen[key] = (submission, stat.S_IMODE(os.stat(submission).st_mode), set(sandbox.PRIVATE_PATHS))
        report = real(submission, plan, *a, **k)
        report.isolation = dict(layers[key])
        return report

    monkeypatch.setattr(runner, "grade", grade)
    already = str(tmp_path / "already-private")  # put there by someone else: it stays
    os.mkdir(already)
    monkeypatch.setattr(sandbox, "PRIVATE_PATHS", {already})
    code, stdout, err = run(options(str(src), out, functions=FUNCTIONS[:1]))
    assert code == 0, stdout + err
    assert set(seen) == {"ann", "bob"}
    for key, (folder, mode, private) in seen.items():
        assert {str(src), out, already} <= private, private
    folder, mode, _ = seen["bob"]
    assert mode == 0o700 and not folder.startswith(str(src)) and not folder.startswith(out)
    assert not os.path.exists(folder)  # the unpacked zip is gone
    assert sandbox.PRIVATE_PATHS == {already}

    with batch.private(["/x"]):  # two batches of one process that overlap
        with batch.private(["/x", already]):
            assert {"/x", already} <= sandbox.PRIVATE_PATHS
        assert "/x" in sandbox.PRIVATE_PATHS  # the first still grades
    assert sandbox.PRIVATE_PATHS == {already}

    rec = json.load(open(os.path.join(out, "results", "ann", "grading.json")))
    assert rec["isolation"] == layers["ann"]
    merged = str(tmp_path / "merged")
    assert cli.main(["merge", out, "-o", merged]) == 0
    for folder in (out, merged):
        iso = json.load(open(os.path.join(folder, "summary.json")))["isolation"]
        assert (iso["gradings"], iso["reported"]) == (2, 2)
        assert {e["layer"]: (e["active"], e["not_available"]) for e in iso["layers"]} == {
            "mount namespace": (2, 0), "seccomp": (1, 1)}
        assert [e["reasons"] for e in iso["layers"] if e["layer"] == "seccomp"] == [
            [{"reason": "no libseccomp here", "gradings": 1}]]
        md = open(os.path.join(folder, "summary.md")).read()
        assert "## Isolation" in md and "| mount namespace | 2 of 2 | 0 |" in md
        assert "| seccomp | 1 of 2 | 1 (1 × no libseccomp here) |" in md


SPY = """\
import os as _os
import time as _time

_BASE, _FILES, _FOLDERS = %r, %r, %r
_state = {}


def _look():
    \"\"\"What this student can read of the others once the other shard has ended (the test says when).\"\"\"
    if "seen" in _state:
        return _state["seen"]
    deadline = _time.monotonic() + 8
    while not _os.path.exists(_os.path.join(_BASE, "go")):
        if _time.monotonic() > deadline:
            return []  # not yet: look in the next call
        _time.sleep(0.05)
    seen = []
    for path in _FILES:
        try:
            with open(path, "rb") as f:
                f.read(1)
            seen.append(path)
        except OSError:
            pass
    for path in _FOLDERS:
        try:
            if _os.listdir(path):
                seen.append(path + "/")
        except OSError:
            pass
    _state["seen"] = seen
    return seen


"""
SPY_CALL = [("next_h = torch.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)",
             "_seen = _look()\n    if _seen:\n        raise RuntimeError('SAW %r' % (_seen,))\n"
             "    next_h = torch.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)")]
SLOW_CALL = [("next_h = torch.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)",
              "__import__('time').sleep(1.5)\n    next_h = torch.tanh(x @ Wx + prev_h @ Wh + b)  # (N, H)")]


def test_a_student_cannot_read_the_class_or_another_shard_when_that_shard_ends(tmp_path):
    """The issue's case: shard 2 (a slow victim) is grading when shard 1 (a spy) starts; shard 2 ends
    while the spy is still being graded, and the spy then tries the victim's source, the class folder
    and shard 2's results. (The old save-hide-restore gave the class folder back its mode when shard 2
    ended, and shard 2's results were readable by all.) The class sits outside /tmp, which workers
    get a private copy of, in a folder the sandbox uid can pass through, as a real class would."""
    base = tempfile.mkdtemp(prefix=".ag-test-spy-", dir=ROOT)
    os.chmod(base, 0o711)
    try:
        _spy_and_victim(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _spy_and_victim(base):
    src, outs = os.path.join(base, "class"), [os.path.join(base, "out-1"), os.path.join(base, "out-2")]
    assert (batch.shard_of("victim", 2), batch.shard_of("spy1", 2)) == (2, 1)
    make_variant(os.path.join(src, "victim"), "rnn_layers.py", SLOW_CALL)  # shard 2 of 2
    spy = os.path.join(src, "spy1")  # shard 1 of 2
    make_variant(spy, "rnn_layers.py", SPY_CALL)
    victim_result = os.path.join(outs[1], "results", "victim", "results.json")
    with open(os.path.join(spy, "rnn_layers.py")) as f:
        text = f.read()
    with open(os.path.join(spy, "rnn_layers.py"), "w") as f:
        f.write(SPY % (base, [os.path.join(src, "victim", "rnn_layers.py"), victim_result], [src, outs[1], outs[0]]))
        f.write(text)
    for here, dirs, files in os.walk(src):
        os.chmod(here, 0o755)
        for name in files:
            os.chmod(os.path.join(here, name), 0o644)

    def start(k):
        return subprocess.Popen([sys.executable, "-m", "autograder", "grade-batch", src, "-o", outs[k - 1],
                                 "--shard", "%d/2" % k, "--jobs", "1", "--device", "cpu", "--functions", FUNCTIONS[0]],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    victim = start(2)
    spying = None
    try:
        deadline = time.monotonic() + 120
        while victim.poll() is None and not os.path.exists(os.path.join(outs[1], "batch.json")):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1.0)  # shard 2 grades its slow victim now
        spying = start(1)
        v_out, v_err = victim.communicate(timeout=240)
        assert victim.returncode == 0, v_out + v_err
        assert spying.poll() is None  # still grading the spy: it looks now
        open(os.path.join(base, "go"), "w").close()
        s_out, s_err = spying.communicate(timeout=240)
        assert spying.returncode == 0, s_out + s_err
    finally:
        for p in (victim, spying):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    with open(os.path.join(outs[0], "results", "spy1", "results.json")) as f:
        spied = f.read()
    layers = batchreport.load_record(outs[0], "spy1").get("isolation") or {}
    if layers and layers.get("mount namespace") != "active":
        pytest.skip("no mount namespace here (%s): the class folder is only as private as its own mode"
                    % layers.get("mount namespace"))
    assert "SAW" not in spied, [ln for ln in spied.split("\\n") if "SAW" in ln][:2]
    assert by_student(outs[1])["victim"]["total"] == "2"


# --------------------------------------------------------------------------- hostile inputs (items 9, 10)
def _chain(top, name, levels, leaf=None):
    """`levels` folders named `name`, each inside the last, under `top`; `leaf` a file at the bottom.
    Made through folder descriptors: the whole path is far longer than PATH_MAX."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        if leaf:
            f = os.open(leaf, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
            os.write(f, b"x = 1\n")
            os.close(f)
    finally:
        os.close(fd)


def _remove_chain(top, name):
    """Remove what _chain made, a level at a time from the top (no recursion, no long path)."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        while os.path.lexists(os.path.join(top, name)):
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            try:
                children = os.listdir(sub)
                for child in children:
                    if child != name:
                        os.unlink(child, dir_fd=sub)
            finally:
                os.close(sub)
            if name in children:
                os.rename(name + "/" + name, ".up", src_dir_fd=fd, dst_dir_fd=fd)
                os.rmdir(name, dir_fd=fd)
                os.rename(".up", name, src_dir_fd=fd, dst_dir_fd=fd)
            else:
                os.rmdir(name, dir_fd=fd)
    finally:
        os.close(fd)


def test_a_folder_nested_thousands_deep_is_looked_at_and_the_class_graded(tmp_path):
    """A student folder 1200 levels deep (past Python's recursion limit) and one whose path runs
    past PATH_MAX: discovery walks both, the class is graded; the one with files at its top is graded,
    the one whose only file is at the bottom is a bad input that says why."""
    src = tmp_path / "class"
    copy_solutions(str(src / "good"))
    copy_solutions(str(src / "deep"))
    os.makedirs(str(src / "long"))
    chains = [(str(src / "deep"), "d", 1200), (str(src / "long"), "L" * 100, 1100)]
    try:
        for top, name, levels in chains:
            _chain(top, name, levels, leaf="bottom.py")
        found = discovery.discover(str(src), registry.FILES)
        problems = {it.key: it.problem for it in found.items}
        assert problems["good"] is None and problems["deep"] is None
        assert "empty submission" in problems["long"] and "nest deeper" in problems["long"], problems["long"]
        code, stdout, err = run(options(str(src), str(tmp_path / "out"), functions=FUNCTIONS[:1]))
        assert code == 0, stdout + err
        rows = by_student(str(tmp_path / "out"))
        assert (rows["good"]["total"], rows["deep"]["total"], rows["deep"]["status"]) == ("2", "2", "graded")
        assert rows["long"]["status"] == "bad input" and "nest deeper" in rows["long"]["note"]
    finally:
        for top, name, _ in chains:
            if os.path.isdir(top):
                _remove_chain(top, name)


def test_zips_whose_members_cannot_all_be_unpacked_are_bad_inputs_and_stay_so(tmp_path):
    """helper.py beside helper.py/inner.py (either order), one path twice with different contents, a
    path too long to unpack: bad inputs with their reason, not "grader failed" on every resume."""
    src = tmp_path / "class"
    copy_solutions(str(src / "good"))
    with open(os.path.join(SOLUTIONS, "rnn_layers.py"), "rb") as f:
        code_bytes = f.read()
    cases = {
        "clash": [("rnn_layers.py", code_bytes), ("helper.py", b"x = 1\n"), ("helper.py/inner.py", b"y = 2\n")],
        "clash2": [("hw/helper.py/inner.py", b"y = 2\n"), ("hw/rnn_layers.py", code_bytes), ("hw/helper.py", b"x\n")],
        "twice": [("rnn_layers.py", code_bytes), ("rnn_layers.py", b"x = 1\n")],
        "long": [("rnn_layers.py", code_bytes), ("/".join(["L" * 200] * 30) + "/x.py", b"x = 1\n")],
    }
    for name, members in cases.items():
        with zipfile.ZipFile(str(src / (name + ".zip")), "w") as zf, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Duplicate name": that is the point
            for member, data in members:
                zf.writestr(member, data)
    reasons = {"clash": "helper.py is a file, and a folder in helper.py/inner.py",
               "clash2": "hw/helper.py is a file, and a folder in hw/helper.py/inner.py",
               "twice": "holds rnn_layers.py twice", "long": "nested too deep"}
    for name, reason in reasons.items():
        with pytest.raises(discovery.BadInput, match="conflict|twice|too deep") as e:
            discovery.read_zip(str(src / (name + ".zip")))
        assert reason in str(e.value)
    out = str(tmp_path / "out")
    for attempt in range(2):  # the second run is a resume: nothing fails again, nothing is retried
        code, stdout, err = run(options(str(src), out, functions=FUNCTIONS[:1]))
        assert code == 0 and "grader failed" not in stdout, stdout + err
        rows = by_student(out)
        assert rows["good"]["total"] == "2"
        for name, reason in reasons.items():
            assert rows[name]["status"] == "bad input" and reason in rows[name]["note"], rows[name]
    assert "nothing left to grade: 1 already done, 4 bad inputs" in stdout


def test_csv_cells_that_could_be_formulas_are_escaped(tmp_path):
    """Names from a Gradescope export that begin with =, +, -, @, a tab or a carriage return reach
    scores.csv (and a merge's) behind a single quote; numbers stay numbers."""
    export = tmp_path / "export"
    export.mkdir()
    (export / "submission_metadata.yml").write_text("""\
submission_1:
  :submitters:
  - :name: =HYPERLINK("http://evil.example","x")
    :sid: '-2+3'
    :email: '@evil.example'
submission_2:
  :submitters:
  - :name: '@SUM(A1:A2)'
submission_3:
  :submitters:
  - :name: '+cmd|'' /C calc''!A0'
  :score: -1.5
submission_4:
  :submitters:
  - :name: "\\t-Tab\\r"
    :sid: '+77'
submission_5:
  :submitters:
  - :name: Ann-Marie O'Neil
    :sid: '1005'
  :score: 3.0
""")  # no folders: five bad inputs, nothing to grade
    out = str(tmp_path / "out")
    code, stdout, err = run(options(str(export), out))
    assert code == 0, stdout + err
    merged = str(tmp_path / "merged")
    assert cli.main(["merge", out, "-o", merged]) == 0
    for folder in (out, merged):
        header, rows = read_csv(folder)
        cells = [c for row in rows for c in row]
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r") and c != "-1.5"], cells
        rows = {r[header.index("name")]: dict(zip(header, r)) for r in rows}
        assert set(rows) == {"'=HYPERLINK(\"http://evil.example\",\"x\")", "'@SUM(A1:A2)", "'+cmd|' /C calc'!A0",
                             "'-Tab", "Ann-Marie O'Neil"}
        first = rows["'=HYPERLINK(\"http://evil.example\",\"x\")"]
        assert (first["student"], first["sid"], first["email"]) == ("'-2+3", "'-2+3", "'@evil.example")
        assert rows["'@SUM(A1:A2)"]["student"].startswith("'@SUM")
        assert rows["'+cmd|' /C calc'!A0"]["gradescope_score"] == "-1.5"  # a score the kit wrote: a number
        assert (rows["'-Tab"]["sid"], rows["'-Tab"]["student"]) == ("'+77", "'+77")
        assert (rows["Ann-Marie O'Neil"]["student"], rows["Ann-Marie O'Neil"]["gradescope_score"]) == ("1005", "3")
    assert batchreport.csv_cell("=1+1") == "'=1+1" and batchreport.csv_cell("-7") == "'-7"
    assert batchreport.csv_cell("a=b") == "a=b" and batchreport.csv_cell(None) == ""
    assert batchreport.csv_cell("\tx") == "'\tx" and batchreport.csv_cell("\r=1") == "'\r=1"


def test_a_numpy_class_is_graded_on_the_numpy_track(tmp_path):
    """grade-batch --track numpy: NumPy submissions (the reference, one CS231n-style file with the LSTM in
    rnn_layers.py, a stub) get the scores `grade --track numpy` gives, and the track is part of the settings
    a resumed run must keep. Would catch: a batch that grades every class on the torch track."""
    from helpers import NP_ASSIGNMENT, NP_SOLUTIONS

    src = tmp_path / "class"
    src.mkdir()
    copy_solutions(str(src / "ann"), NP_SOLUTIONS)
    (src / "ben").mkdir()
    with open(os.path.join(NP_SOLUTIONS, "rnn_layers.py")) as f:
        rnn = f.read()
    with open(os.path.join(NP_SOLUTIONS, "lstm_layers.py")) as f:
        lstm = f.read()
    (src / "ben" / "rnn_layers.py").write_text(rnn + "\n\n" + lstm[lstm.index("def sigmoid"):])
    copy_solutions(str(src / "cat"), NP_ASSIGNMENT)
    out = tmp_path / "out"
    fns = ["rnn_step_forward", "lstm_step_forward"]
    code, stdout, stderr = run(options(str(src), out, functions=fns, track="numpy", seed=5))
    assert code == 0, stdout + stderr
    rows = by_student(str(out))
    assert [rows[s]["total"] for s in ("ann", "ben", "cat")] == ["4", "4", "0"], rows
    with open(os.path.join(str(out), "results", next(k for k in os.listdir(os.path.join(str(out), "results"))
                                                     if k.startswith("ben")), "results.json")) as f:
        ben = json.load(f)
    assert any("found in rnn" in t.get("output", "") for t in ben["tests"])
    code, stdout, stderr = run(options(str(src), out, functions=fns, seed=5))  # the torch track: other settings
    assert code != 0 and "other settings" in stdout + stderr, stdout + stderr
