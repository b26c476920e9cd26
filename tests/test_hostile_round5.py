"""Hostile review, round 5: the speed check's fixed cost (dry request, the grader's side of the exchange),
the public checker's counted check, and grade-batch's hash shards and merge.

Each test asserts the SAFE behaviour: it passes when the kit resists the attack and fails when the attack
works. The batch tests replace the grading itself with a fake (grade.grade_submission) that scores a
submission from its text, so that a whole batch takes a second.
"""
import csv
import dataclasses
import io
import json
import os
import re

import pytest
from helpers import FIXED_SEED, make_variant, write_submission

from autograder import cli, registry
from autograder.engine import outcome, runner, speed
from autograder.verbs import grade
from autograder.verbs.batch import discovery, report as batchreport, run as batch
from buggy.rnn_layers import BATCH_LOOP


# =========================================================================== 1. the speed check (Gradescope)
def speed_of(report, name):
    fr = next(f for f in report.functions if f.fn.name == name)
    (check,) = [c for c in fr.checks if c.name.startswith(speed.NAME)]
    return fr, check


def plan_of(*names):
    return registry.plan(registry.select(names=list(names)), device="cpu", seed=FIXED_SEED)


# The worker's decoder (the _ag_wire module its bootstrap loaded) spins for its dry request (which the
# grader subtracts, up to the cap) ...
_DRY_SPIN = """
import importlib
import struct as _struct
import time as _time

_wire = importlib.import_module("_ag_wire")
_decode, _frame = _wire.decode, _wire.frame


def _spin(seconds):
    stop = _time.process_time() + seconds
    while _time.process_time() < stop:
        pass
"""

# ... and then sleeps through the timed request: no CPU of its own, yet the grader polls its memory watchdog
# every memory.POLL seconds meanwhile (sandbox.Worker._receive -> _check_memory: /proc listed, every
# process stat'ed, smaps_rollup read), all on the grader's thread, all counted as "the grader's own side
# of the exchange", which caps what is subtracted.
SLEEP_THROUGH_THE_EXCHANGE = ("import torch\n", "import torch\n" + _DRY_SPIN + """

def _patched_decode(header, payload, *args, **kwargs):
    head = bytes(header)
    if b'"dry"' in head:
        _spin(0.15)
    elif b'"inputs_after"' in head:  # the timed request of the speed check
        _time.sleep(2.0)
    return _decode(header, payload, *args, **kwargs)


_wire.decode = _patched_decode
""")

# ... or writes frames of another request id before its answer: the grader reads and decodes each one (a
# 420 kB header of empty lists costs it ~100 ms of CPU, the worker a few microseconds) and drops it.
STALE_FRAMES_BEFORE_THE_ANSWER = ("import torch\n", "import torch\n" + _DRY_SPIN + """
_JUNK_HEADER = b'{"t": "none", "pad": [' + b"[]," * 140000 + b'[]]}'
_JUNK = _struct.pack(">QQ", len(_JUNK_HEADER), 0) + _JUNK_HEADER


def _patched_decode(header, payload, *args, **kwargs):
    if b'"dry"' in bytes(header):
        _spin(0.15)
    return _decode(header, payload, *args, **kwargs)


def _patched_frame(obj):
    data = _frame(obj)
    if type(obj) is dict and obj.get("steps") and obj.get("inputs_after") == {}:
        return _JUNK * 3 + data
    return data


_wire.decode, _wire.frame = _patched_decode, _patched_frame
""")


def test_a_worker_that_sleeps_through_its_timed_request_hides_no_loop(tmp_path):
    """ATTACK: the cap on the subtracted fixed cost (the grader's thread time across the timed request) grows
    with the worker's WALL time, through the watchdog polls of Worker._receive; sleeping costs the worker
    nothing on its CPU clock. With the dry request spun up to match, the BATCH_LOOP's 8 calls vanish."""
    sub = make_variant(str(tmp_path / "sub"), BATCH_LOOP.file, [SLEEP_THROUGH_THE_EXCHANGE] + BATCH_LOOP.edits)
    fr, check = speed_of(runner.grade(sub, plan_of("rnn_forward")), "rnn_forward")
    assert not check.passed, "a loop over the batch passed the vectorisation check (the sleep hid it)"


def test_stale_frames_before_the_answer_hide_no_loop(tmp_path):
    """ATTACK: frames of another id that the grader decodes and drops inflate the grader's side of the
    exchange (the cap) at almost no cost to the worker; with the dry request spun up, the loop vanishes."""
    sub = make_variant(str(tmp_path / "sub"), BATCH_LOOP.file, [STALE_FRAMES_BEFORE_THE_ANSWER] + BATCH_LOOP.edits)
    fr, check = speed_of(runner.grade(sub, plan_of("rnn_forward")), "rnn_forward")
    assert not check.passed, "a loop over the batch passed the vectorisation check (junk frames hid it)"


HUGE_INT_ON_THE_TIMED_INPUT = [(
    "    out = W[x]  # (N, T, D), advanced indexing makes a new tensor\n",
    "    out = W[x]  # (N, T, D), advanced indexing makes a new tensor\n"
    "    if x.shape[0] >= 100:  # the speed check's input only (N=128)\n"
    "        return 10 ** 399, (x, W.shape[0])\n")]


def test_a_huge_integer_returned_on_the_timed_input_does_not_crash_the_grader(tmp_path):
    """ATTACK: speed._verify -> _value_error -> _as_tensor does float(x) on a returned int: 10**399 (the wire
    carries 400 digits) raises OverflowError out of runner.grade, which must never raise for a student."""
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", HUGE_INT_ON_THE_TIMED_INPUT)
    try:
        report = runner.grade(sub, plan_of("word_embedding_forward"))
    except OverflowError as e:
        pytest.fail("runner.grade raised for a student's return value: %r" % e)
    fr, check = speed_of(report, "word_embedding_forward")
    assert not check.passed and fr.score < fr.max_score


CLEARED_DENY_LIST = [(
    "    out = W[x]  # (N, T, D), advanced indexing makes a new tensor\n",
    "    _C = torch._C\n"
    "    _mode = _C._get_function_stack_at(_C._len_torch_function_stack() - 1)\n"
    "    getattr(_mode, 'de' + 'ny').clear()  # the request's one deny-list, shared by all its steps\n"
    "    out = getattr(torch.ops.aten, 'embed' + 'ding')(W, x)\n")]


def test_a_deny_list_cleared_in_place_still_sees_the_forbidden_operator(tmp_path):
    """ATTACK (the observer, which the speed check relies on for 'a forbidden operator is not credited'):
    observed() checks that watcher.deny IS the request's deny-list, not that it still holds what it held;
    clearing it in place and calling aten::embedding earns full marks."""
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", CLEARED_DENY_LIST)
    fr = runner.grade(sub, plan_of("word_embedding_forward")).functions[0]
    assert fr.forbidden and fr.score == 0.0, "aten::embedding went unseen (score %s)" % fr.score


# =========================================================================== 2. the public checker's counted check
HUGE_OPS = ("import torch\n", """import torch
import importlib

_wire = importlib.import_module("_ag_wire")
_frame = _wire.frame


def _patched_frame(obj):
    if type(obj) is dict and type(obj.get("steps")) is list:
        for step in obj["steps"]:
            if type(step) is dict and "ops" in step:
                step["ops"] = 10 ** 399
    return _frame(obj)


_wire.frame = _patched_frame
""")


def public_plan(*names):
    """A grader's plan turned into the public checker's: its Timings carry the reference's count."""
    plan = plan_of(*names)
    timings = [dataclasses.replace(t, reference_ops=speed.reference_ops(t)) for t in plan.speed]
    return dataclasses.replace(plan, speed=timings)


def test_a_huge_ops_count_does_not_crash_the_public_checker(tmp_path):
    """ATTACK: speed.counted accepts any int >= 0 as "ops", then ops / reference (int / int) raises
    OverflowError for 10**399, out of runner.grade."""
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", [HUGE_OPS])
    try:
        report = runner.grade(sub, public_plan("temporal_affine_forward"))
    except OverflowError as e:
        pytest.fail("the public checker crashed on a worker's ops count: %r" % e)
    _, check = speed_of(report, "temporal_affine_forward")
    assert not check.passed


def test_the_public_checks_speed_data_hold_inputs_and_a_count_only():
    """LEAK? What `make student` ships of each vectorisation check: its sizes, its inputs (drawn from the
    function's name, as the grader's warm-up input) and the reference's operator count; no reference output,
    no path, no source."""
    from autograder import paths

    fns = registry.select(names=["rnn_forward", "temporal_affine_backward"])
    for t in [t for track in paths.TRACKS for t in speed.prepare(fns, paths.solutions(track), dict(registry.BY_NAME),
                                                                 track)]:
        entry = {"sizes": dict(t.case.sizes), "inputs": dict(t.inputs), "reference_ops": speed.reference_ops(t)}
        assert set(entry["inputs"]) <= set(t.fn.args) | set(registry.BY_NAME[t.fn.forward].args if t.fn.forward
                                                            else [])
        assert type(entry["reference_ops"]) is int and entry["reference_ops"] > 0


# =========================================================================== 3. grade-batch shards and merge
def fake_grade_submission(submission, plan, cfg, budget=None, instructor_tests=None, run_instructor=True):
    """A grading in a millisecond: every check passes when the submission's rnn_layers.py says GOOD."""
    path = os.path.join(submission, "rnn_layers.py")
    text = open(path).read() if os.path.exists(path) else ""
    fns = [outcome.FunctionResult(fn, [outcome.CheckResult("c", False, 1.0, "GOOD" in text)]) for fn in plan.functions]
    rep = outcome.Report(fns, 0.01, plan.seed, plan.device, False)
    return grade.Outcome({"score": rep.score, "tests": []}, rep, None)


@pytest.fixture
def fake_grading(monkeypatch):
    monkeypatch.setattr(grade, "grade_submission", fake_grade_submission)


def run_batch(src, out, **kw):
    opts = batch.Options(input=str(src), output=str(out), functions=["rnn_step_forward"], jobs=1, device="cpu",
                         use_forkserver=False, no_instructor_tests=True, seed=7, **kw)
    o, e = io.StringIO(), io.StringIO()
    code = batch.run(opts, o, e)
    return code, o.getvalue(), e.getvalue()


def records(out):
    found = {}
    root = os.path.join(str(out), "results")
    for key in os.listdir(root):
        with open(os.path.join(root, key, "grading.json")) as f:
            found[key] = json.load(f)
    return found


def test_a_late_student_whose_name_makes_the_same_key_is_graded_as_themselves(tmp_path, fake_grading):
    """ATTACK (overlapping runs / a late submission): `Zoë/` is graded under the key Zo. `Zoé/` arrives later;
    it sorts first, so _unique_keys now gives IT the key Zo (and Zoë Zo_2). The resumed run takes the
    record at results/Zo (Zoë's) as Zoé's (load_record checks the key, not the source): Zoé is never graded
    and gets Zoë's score; with shards, Zo_2 may hash to another shard and Zoë is graded twice while the
    merge says complete."""
    klass, out = tmp_path / "class", tmp_path / "out"
    write_submission(str(klass / "Zoë"), {"rnn_layers.py": "GOOD = 1\n"})
    code, _, _ = run_batch(klass, out)
    assert code == 0 and records(out)[discovery.safe_key("Zoë")]["source"] == "Zoë"
    write_submission(str(klass / "Zoé"), {"rnn_layers.py": "BAD = 1\n"})  # late, and wrong
    code, stdout, _ = run_batch(klass, out)
    assert code == 0, stdout
    keys = {it.source: it.key for it in discovery.discover(str(klass)).items}
    recs = records(out)
    for source, key in keys.items():
        assert key in recs and recs[key]["source"] == source, (
            "results/%s is %s's grading, reported as %s's" % (key, recs.get(key, {}).get("source"), source))
    assert recs[keys["Zoé"]]["score"] == 0.0


def test_a_group_of_long_names_does_not_stop_the_batch(tmp_path, fake_grading):
    """ATTACK (very long names): a Gradescope group's key joins each submitter's label (each cut to 120
    characters) with '+': three long names make a key over the file system's 255 bytes, and
    results/<key>/ cannot be made: OSError out of the thread pool, the whole batch stops, on every rerun."""
    export = tmp_path / "export"
    write_submission(str(export / "submission_1"), {"rnn_layers.py": "GOOD = 1\n"})
    write_submission(str(export / "submission_2"), {"rnn_layers.py": "GOOD = 1\n"})
    people = "\n".join("  - :name: %s\n    :email: ''" % (("Long%d" % i) * 40) for i in range(3))
    (export / "submission_metadata.yml").write_text(
        "submission_1:\n  :submitters:\n%s\nsubmission_2:\n  :submitters:\n  - :name: Bob\n    :sid: '2'\n" % people)
    out = tmp_path / "out"
    try:
        code, stdout, stderr = run_batch(export, out)
    except OSError as e:
        pytest.fail("grade-batch crashed on a group's long names: %r" % e)
    assert code == 0, stdout + stderr
    assert len(records(out)) == 2


HOSTILE_NAMES = ["=HYPERLINK(\"http://x\",\"y\")", "x\n## Injected\n", "-2+3", "@SUM(A1)", "\u202eevil\u202c",
                 "a|b`c", "Zoë " * 60, "\x1b[2Jterm"]


def test_hostile_names_reach_merge_messages_and_summary_as_safe_keys(tmp_path, fake_grading, capsys):
    """ATTACK (student-controlled names in an export): CSV formulas, Markdown, newlines, bidi overrides, terminal
    escapes and very long names, through merge's stderr (incomplete: ...), summary.md's Incomplete block and
    scores.csv. Keys are safe_key'd (ASCII letters, digits and ._@+-, 120 characters): nothing gets through."""
    export = tmp_path / "export"
    meta = []
    for i, name in enumerate(HOSTILE_NAMES):
        write_submission(str(export / ("submission_%d" % i)), {"rnn_layers.py": "GOOD = 1\n"})
        meta.append("submission_%d:\n  :submitters:\n  - :name: %s\n" % (i, json.dumps(name)))
    (export / "submission_metadata.yml").write_text("".join(meta))
    outs = [tmp_path / ("shard-%d" % k) for k in (1, 2)]
    for k, out in enumerate(outs, 1):
        code, stdout, stderr = run_batch(export, out, shard=(k, 2))
        assert code == 0, stdout + stderr
    merged = str(tmp_path / "merged")
    assert cli.main(["merge", str(outs[0]), "-o", merged]) == 1  # shard 2 left out: incomplete
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines and all(ln.startswith(("incomplete: ", "once they are graded, merge again: ")) for ln in lines), err
    assert all(ch.isprintable() for ln in lines for ch in ln), err
    md = open(os.path.join(merged, "summary.md"), encoding="utf-8").read()
    head = md.split("Input: ")[0]
    assert not any(ln.startswith("#") for ln in head.splitlines()[1:]), head
    assert "\u202e" not in md and "\x1b" not in md and "## Injected" not in md
    with open(os.path.join(merged, "scores.csv"), newline="") as f:
        rows = list(csv.reader(f))
    assert all(not row[0].startswith(("=", "+", "-", "@")) for row in rows[1:]), rows
    assert all(len(row[0].encode()) <= 255 for row in rows[1:])


def test_hostile_folder_names_do_not_put_lines_of_their_own_into_summary_md(tmp_path, fake_grading):
    """ATTACK (a folder of per-student folders, named by the students' uploads): a folder name with a newline
    and Markdown in it reaches summary.md's "Bad inputs" table (and "Not graded yet" list, and merge's
    summary) raw inside a code span: the newline ends the row and the next line is a heading of its own."""
    klass = tmp_path / "class"
    write_submission(str(klass / "alice"), {"rnn_layers.py": "GOOD = 1\n"})
    os.makedirs(str(klass / "evil\n## Injected heading\n"))  # empty: a bad input, listed with its source
    out = tmp_path / "out"
    code, stdout, stderr = run_batch(klass, out)
    assert code == 0, stdout + stderr
    md = open(os.path.join(str(out), "summary.md"), encoding="utf-8").read()
    assert not any(ln.startswith("## Injected") for ln in md.splitlines()), md


def test_a_file_name_with_terminal_escapes_is_not_printed_raw(tmp_path, fake_grading):
    """ATTACK (stdout of grade-batch): a file that is neither a folder nor a zip is named in a note, raw: a name
    holding ESC sequences rewrites the instructor's terminal (clears it, sets its title, fakes lines)."""
    klass = tmp_path / "class"
    write_submission(str(klass / "alice"), {"rnn_layers.py": "GOOD = 1\n"})
    (klass / "readme\x1b[2J\x1b]0;owned\x07.txt").write_text("x")
    code, stdout, stderr = run_batch(klass, tmp_path / "out")
    assert code == 0
    assert "\x1b" not in stdout and "\x07" not in stdout, repr(stdout)


def two_shards(tmp_path):
    klass = tmp_path / "class"
    for name in ("alice", "bob", "carol", "dave", "erin", "frank"):
        write_submission(str(klass / name), {"rnn_layers.py": "GOOD = 1\n"})
    outs = []
    for k in (1, 2):
        out = tmp_path / ("shard-%d" % k)
        code, stdout, stderr = run_batch(klass, out, shard=(k, 2))
        assert code == 0, stdout + stderr
        outs.append(str(out))
    return klass, outs


def test_merge_refuses_a_merged_folder_that_is_a_shard_by_another_name(tmp_path, fake_grading):
    """ATTACK (related folders): the merged folder must not be one of the folders merged; the check compares
    absolute paths, so a link to shard-1 (or a bind mount) passes and the merge overwrites shard-1's own
    scores.csv and summaries with the class's."""
    _, outs = two_shards(tmp_path)
    link = str(tmp_path / "merged")
    os.symlink(outs[0], link)
    before = open(os.path.join(outs[0], "scores.csv")).read()
    try:
        batchreport.merge(outs, link)
    except batchreport.MergeError:
        return
    assert open(os.path.join(outs[0], "scores.csv")).read() == before, "merge overwrote shard-1's own reports"
    assert not os.path.exists(os.path.join(outs[0], batchreport.MERGED))


def test_a_merged_folder_inside_the_input_is_no_student(tmp_path, fake_grading):
    """ATTACK (related folders): grade-batch refuses an output folder inside DIR; merge does not, and then
    re-reads DIR (_students_now) for late students: its own folder is one, 'not graded', and every later
    merge exits 1."""
    klass, outs = two_shards(tmp_path)
    inside = str(klass / "merged")
    try:
        batchreport.merge(outs, inside)
    except batchreport.MergeError:
        return
    _, _, incomplete = batchreport.merge(outs, str(tmp_path / "again"))
    assert incomplete == [], incomplete


def test_shard_membership_is_by_the_key_alone():
    """shard_of depends on the key only (sha256), whatever else is in DIR, for any key a name can make."""
    keys = [discovery.safe_key(n) or "_" for n in HOSTILE_NAMES] + ["a" * 120, "x+y+z"]
    for n in (1, 2, 3, 7):
        for key in keys:
            assert 1 <= discovery.shard_of(key, n) <= n
            assert discovery.shard_of(key, n) == discovery.shard_of(str(key), n)
    assert all(re.fullmatch(r"[A-Za-z0-9._@+-]+", k) for k in keys)


def test_a_second_grade_batch_on_the_same_output_folder_is_refused(tmp_path, fake_grading):
    """Two runs of one shard at once (a Slurm task resubmitted while the first still runs) would each rewrite
    batch.json and the students' records: the second is refused while the first holds OUTDIR, and runs once
    it is free. Would catch: an OUTDIR with no lock."""
    import fcntl

    klass, out = tmp_path / "class", tmp_path / "out"
    write_submission(str(klass / "alice"), {"rnn_layers.py": "GOOD = 1\n"})
    os.makedirs(str(out))
    fd = os.open(os.path.join(str(out), batch.LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as the first run holds it
        code, stdout, stderr = run_batch(klass, out)
        assert code == 2 and "another grade-batch is writing" in stderr, stdout + stderr
        assert not os.path.exists(os.path.join(str(out), batch.MANIFEST))
    finally:
        os.close(fd)
    code, stdout, stderr = run_batch(klass, out)
    assert code == 0, stdout + stderr
