"""docs/regrading.md's Slurm script, run against a real Slurm (tools/local_slurm.py: slurmctld, slurmd and
munge from Debian's packages, one node, this machine).

The script is taken from the page itself (the code block after its marker comment) with only its settings
changed: paths, three shards, one job per shard, two graded functions. A small mixed class (right,
stub, buggy, an empty folder) is regraded as a job array and merged, and then:
- the merge equals one unsharded grade-batch with the same seed (scores.csv byte for byte);
- a student added late is graded by resubmitting their shard only, and nobody is lost;
- a shard cancelled before it ran makes the merge fail (exit 1) naming it and its students; resubmitted,
  the merge is whole again;
- a merge of two of the three shards' folders fails the same way.
Skips, saying why, where Slurm is not installed or cannot start (not root, no packages).
"""
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
from helpers import ASSIGNMENT, ROOT, copy_solutions, make_variant

sys.path.insert(0, os.path.join(ROOT, "tools"))
import local_slurm  # noqa: E402

from autograder.verbs.batch import run as batch  # noqa: E402

DOC = os.path.join(ROOT, "docs", "regrading.md")
SEED = 4242
FUNCTIONS = "--functions rnn_step_forward,rnn_step_backward --no-instructor-tests"
WRONG_DERIVATIVE = ("da = dnext_h * (1 - next_h * next_h)", "da = dnext_h * (1 - next_h)")


def script_from_the_page():
    text = open(DOC).read()
    m = re.search(r"<!-- tests/test_slurm.py runs this script, taken from here -->\n```bash\n(.*?)```\n", text, re.S)
    assert m, "docs/regrading.md has lost its marked Slurm script"
    return m.group(1)


def with_settings(script, **values):
    """The script with the values of its settings lines (NAME=value  # comment) replaced, nothing else."""
    for name, value in values.items():
        script, count = re.subn(r"(?m)^%s=\S*" % name, lambda _: "%s=%s" % (name, value), script)
        assert count == 1, name
    return script


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("a local Slurm needs root (slurmd starts every job as its user)")
    missing = local_slurm.missing_tools()
    if missing:
        pytest.skip("Slurm is not installed here (%s missing; Debian: apt-get install slurm-wlm munge)"
                    % ", ".join(missing))
    folder = str(tmp_path_factory.mktemp("slurm"))
    try:
        local_slurm.up(folder)
    except (local_slurm.SlurmError, OSError, subprocess.SubprocessError) as e:
        pytest.skip("a local Slurm could not start: %s" % e)
    yield local_slurm.env(folder)
    local_slurm.down(folder)


def klass(folder):
    os.makedirs(folder)
    copy_solutions(os.path.join(folder, "alice"))
    copy_solutions(os.path.join(folder, "dave"))
    shutil.copytree(ASSIGNMENT, os.path.join(folder, "bob"))
    buggy = make_variant(os.path.join(folder, "..", "carol-src"), "rnn_layers.py", [WRONG_DERIVATIVE])
    shutil.copytree(buggy, os.path.join(folder, "carol"))
    os.makedirs(os.path.join(folder, "erin"))  # an empty submission: a bad input with a row of its own
    return folder


def submit(env, script_path, *tasks):
    r = subprocess.run(["bash", script_path] + list(tasks), capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def wait_for_jobs(env, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = subprocess.run(["squeue", "-h", "-o", "%i %T"], capture_output=True, text=True, env=env, timeout=60)
        if r.returncode == 0 and not r.stdout.strip():
            return
        time.sleep(1)
    raise AssertionError("the jobs did not end within %d s: %s" % (timeout, r.stdout))


def merge_log(out):
    logs = sorted((os.path.getmtime(os.path.join(out, n)), n) for n in os.listdir(out) if n.startswith("slurm-merge-"))
    return open(os.path.join(out, logs[-1][1])).read()


def merge(folders, out):
    return subprocess.run([sys.executable, "-m", "autograder", "merge"] + folders + ["-o", out], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def unsharded(export, out):
    r = subprocess.run([sys.executable, "-m", "autograder", "grade-batch", export, "-o", out, "--seed", str(SEED),
                        "--jobs", "2"] + FUNCTIONS.split(), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return open(os.path.join(out, "scores.csv"), "rb").read()


def setup(tmp_path):
    """(the class, OUT, the script's path): the page's script with this test's settings, written out."""
    export, out = klass(str(tmp_path / "class")), str(tmp_path / "out")
    script = with_settings(script_from_the_page(), KIT=ROOT, EXPORT=export, OUT=out, SHARDS=3, SEED=SEED, JOBS=1,
                           MEM="1G", TIME="00:10:00", EXTRA='"%s"' % FUNCTIONS)
    path = str(tmp_path / "regrade.sh")
    with open(path, "w") as f:
        f.write(script)
    return export, out, path


def test_the_pages_script_on_a_real_slurm(slurm, tmp_path):
    export, out, path = setup(tmp_path)

    submit(slurm, path)
    wait_for_jobs(slurm)
    merged = os.path.join(out, "all", "scores.csv")
    assert "incomplete" not in merge_log(out), merge_log(out)
    assert open(merged, "rb").read() == unsharded(export, str(tmp_path / "single"))
    assert sorted(os.listdir(out)).count("shard-1") == 1 and os.path.isdir(os.path.join(out, "shard-3"))

    # a late student: named by the merge until their shard only is resubmitted; nobody is lost
    copy_solutions(os.path.join(export, "frank"))
    k = batch.shard_of("frank", 3)
    shards = [os.path.join(out, "shard-%d" % j) for j in (1, 2, 3)]
    r = merge(shards, str(tmp_path / "before"))
    assert r.returncode == 1 and "frank (added to the input after shard %d/3 was graded" % k in r.stderr, r.stderr
    submit(slurm, path, str(k))
    wait_for_jobs(slurm)
    assert "1 student appeared" in open(
        [os.path.join(out, n) for n in sorted(os.listdir(out)) if n.endswith("_%d.out" % k)][-1]).read()
    assert open(merged, "rb").read() == unsharded(export, str(tmp_path / "single-late"))

    # two of the three folders: the merge fails, naming the missing shard and its students
    r = merge([s for j, s in enumerate(shards, 1) if j != k], str(tmp_path / "part"))
    assert r.returncode == 1 and "shard %d of 3 is not among the merged folders" % k in r.stderr, r.stderr
    assert "frank (in shard %d/3" % k in r.stderr, r.stderr


def test_a_cancelled_shard_fails_the_merge_until_it_is_resubmitted(slurm, tmp_path):
    export, out, path = setup(tmp_path)
    students = sorted(os.listdir(export))
    cancelled = next(k for k in (1, 2, 3) if batch.in_shard(students, k, 3))
    down = ["scontrol", "update", "PartitionName=local", "State=DOWN"]
    subprocess.run(down, check=True, env=slurm, timeout=60)  # the jobs wait, so that one can be cancelled first
    try:
        jobid = re.search(r"job (\d+)", submit(slurm, path)).group(1)
        subprocess.run(["scancel", "%s_%d" % (jobid, cancelled)], check=True, env=slurm, timeout=60)
    finally:
        subprocess.run(down[:-1] + ["State=UP"], check=True, env=slurm, timeout=60)
    wait_for_jobs(slurm)
    log = merge_log(out)
    assert not os.path.isdir(os.path.join(out, "shard-%d" % cancelled))
    assert "incomplete: shard %d of 3 is not among the merged folders" % cancelled in log, log
    for key in batch.in_shard(students, cancelled, 3):
        assert "%s (in shard %d/3" % (key, cancelled) in log, log

    submit(slurm, path, str(cancelled))
    wait_for_jobs(slurm)
    assert "incomplete" not in merge_log(out)
    assert open(os.path.join(out, "all", "scores.csv"), "rb").read() == unsharded(export, str(tmp_path / "single"))
