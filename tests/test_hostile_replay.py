"""A submission with no code of its own replays the student release's public checks (issue 18, item 7).

The student zip ships every public check's inputs and torch's answers (checker/public_checks.pt), so
that `python check.py` can say what the grader says. A submission that looks its inputs up in that
table and returns the stored answer (zeros for anything else) used to earn 32 of 82 points with
nothing implemented: the public checks, plus "inputs left unchanged" and "vectorised", which were
credited beside any passing check. Now the grader draws the public cases' inputs at grading time
(runner.build_plan's default, public_inputs="fresh"), never the shipped ones, and those two checks are
credited only beside a check passed on such fresh inputs (outcome.fresh_pass).

The table is built from the real release data: release.public_data, the function that makes the
data file of dist/student.zip, saved and read back with torch.load(weights_only=True) as the checker
reads it.
"""
import base64
import io

import pytest
import torch
from helpers import FIXED_SEED, write_submission

from autograder import registry
from autograder.engine import plans
from autograder.engine import checker, runner, speed

from autograder.verbs import release
from autograder.engine.results import NOT_CREDITED

UNCHANGED = "inputs left unchanged"
FUNCTIONS, CFG = release.course()  # the registry as this course grades it (course.toml applied), as `grade` does

REPLAY = '''"""No code of its own: every function looks its inputs up in the student release's public checks."""
import base64
import io

import torch

_TABLE = torch.load(io.BytesIO(base64.b64decode(%(blob)r)), weights_only=True)
_MISSING = object()


def _same(a, b):
    if torch.is_tensor(a) or torch.is_tensor(b):
        return (torch.is_tensor(a) and torch.is_tensor(b) and a.dtype == b.dtype and a.shape == b.shape
                and torch.equal(a.detach().cpu(), b))
    return a == b


def _answer(i, returns, given):
    """The stored answer of table entry i in the function's return order (its index as the cache)."""
    entry = _TABLE[i]
    expected = entry["expected"]
    floats = [v for v in entry["inputs"].values() if torch.is_tensor(v) and v.is_floating_point()]
    device = next((v.device for v in given.values() if torch.is_tensor(v)), torch.device("cpu"))

    def cast(t):
        if floats and t.is_floating_point():
            t = t.to(floats[0].dtype)  # the case's dtype: torch's answers are stored in float64
        return t.to(device).clone()

    out = []
    for name in returns:
        if name == "cache":
            out.append(("replay", i))
        elif name in expected:
            out.append(cast(expected[name]))
        else:
            part = {k[len(name) + 1:]: cast(v) for k, v in expected.items() if k.startswith(name + ".")}
            if not part:
                return _MISSING
            out.append(part)
    return out[0] if len(out) == 1 else tuple(out)


def _zeros(returns):
    out = [None if name == "cache" else torch.zeros(()) for name in returns]
    return out[0] if len(out) == 1 else tuple(out)


def _replay(spec, returns, args):
    given, cache = {}, None
    for a, value in zip(spec, args):
        if a == "cache":
            cache = value
        elif isinstance(a, dict):
            given.update({a["dict"] + k: v for k, v in value.items()})
        else:
            given[a] = value
    if "cache" in spec:  # a backward: the entry its forward found
        found = isinstance(cache, tuple) and len(cache) == 2 and cache[0] == "replay"
        candidates = [cache[1]] if found else []
    else:
        candidates = range(len(_TABLE))
    for i in candidates:
        inputs = _TABLE[i]["inputs"]
        if all(k in inputs and _same(v, inputs[k]) for k, v in given.items()):
            out = _answer(i, returns, given)
            if out is not _MISSING:
                return out
    return _zeros(returns)
'''

FUNCTION = '''

def %(name)s(%(params)s):
    return _replay(%(spec)r, %(returns)r, (%(params)s,))
'''


def release_data(tmp_path):
    """The release's data file, as `make student` writes it: (path, what torch.load(weights_only=True) reads)."""
    path = str(tmp_path / checker.DATA_FILE)
    with open(path, "wb") as f:
        f.write(release._saved(release.public_data(FUNCTIONS, CFG)))
    return path, torch.load(path, weights_only=True)


def replay_submission(folder, data):
    """Every student file: its graded functions replay the table of the release's public checks."""
    files = {}
    for file in dict.fromkeys(f["file"] for f in data["functions"]):
        names = {f["name"] for f in data["functions"] if f["file"] == file}
        table = [{"inputs": c["inputs"], "expected": c["expected"]} for c in data["checks"] if c["function"] in names]
        buf = io.BytesIO()
        torch.save(table, buf)
        source = REPLAY % {"blob": base64.b64encode(buf.getvalue()).decode()}
        for f in data["functions"]:
            if f["file"] != file:
                continue
            params = [a["dict"].rstrip(".") if isinstance(a, dict) else a for a in f["args"]]
            source += FUNCTION % {"name": f["name"], "params": ", ".join(params), "spec": f["args"],
                                  "returns": f["returns"]}
        files[file + ".py"] = source
    return write_submission(folder, files)


def shipped_in(plan, data):
    """The labels of the plan's checks whose inputs are some shipped check's of the same function."""
    shipped = {}
    for c in data["checks"]:
        shipped.setdefault(c["function"], []).append(c["inputs"])
    return [p.case.label for p in plan.checks if any(plans.same_inputs(p.inputs, {k: v.cpu() if torch.is_tensor(v) else v for k, v in s.items()}) for s in shipped.get(p.fn.name, []))]


@pytest.fixture(scope="module")
def replay(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("replay")
    path, data = release_data(tmp)
    return path, data, replay_submission(str(tmp / "sub"), data)


def test_the_replay_gets_full_marks_from_the_public_checker(replay):
    """The attack is real: on the release's own inputs (the public checker's plan) every check passes but
    the vectorisation check, whose input ships without its answer (the table looks the input up, with
    tensor operations of its own)."""
    path, data, sub = replay
    fns = checker.load_functions(path)
    report = runner.grade(sub, checker.load_plan(fns, path), CFG.limits(), CFG.budget_seconds())
    failed = ["%s: %s %s" % (f.fn.name, c.name, c.message) for f in report.functions for c in f.checks
              if not c.passed and not c.name.startswith(speed.NAME)]
    assert not failed, "\n".join(failed)
    assert report.max_score == sum(fn.points for fn in FUNCTIONS)


def test_a_table_of_the_releases_answers_earns_nothing_from_the_grader(replay):
    """Graded as `grade` and `grade-batch` grade (runner.build_plan with its defaults, then runner.grade),
    the replay earns 0 of 82: the public cases are graded on inputs drawn at grading time, none of them
    shipped, and "inputs left unchanged" and "vectorised" are not credited beside no passing check.
    (The old grader gave 32: the public checks on the shipped inputs, and those two checks with them.)"""
    _, data, sub = replay
    plan = registry.plan(FUNCTIONS, device="cpu", seed=FIXED_SEED)  # what pipeline.plan_and_grade builds
    report = runner.grade(sub, plan, CFG.limits(), CFG.budget_seconds())
    earned = {f.fn.name: [c.name for c in f.checks if c.passed] for f in report.functions}
    assert report.score == 0, "%g of %g: %s" % (report.score, report.max_score, {k: v for k, v in earned.items() if v})
    assert not shipped_in(plan, data)  # no graded input is one the student has seen
    shipped_cases = {(f["name"], c["name"]) for f in data["functions"] for c in f["cases"] if c["device"] == "cpu"}
    assert {(p.fn.name, p.case.name) for p in plan.checks if not p.case.hidden} == shipped_cases  # same cases, names
    for f in report.functions:
        aux = [c for c in f.checks if c.name == UNCHANGED or c.name.startswith(speed.NAME)]
        assert aux and not any(c.passed for c in aux), f.fn.name
        assert [c.message for c in aux if c.name == UNCHANGED] == [NOT_CREDITED], f.fn.name


def test_no_plan_seed_gives_a_shipped_input(tmp_path):
    """local_attention_mask's small cases pick one of 7 window centres: about one plan seed in four
    would draw a shipped input. The grader draws again until it differs from every shipped one."""
    _, data = release_data(tmp_path)
    fns = [fn for fn in FUNCTIONS if fn.name == "local_attention_mask"]
    assert fns and any(not c.hidden for c in fns[0].cases)
    for seed in range(24):
        plan = registry.plan(fns, device="cpu", seed=seed)
        assert not shipped_in(plan, data), seed
        assert all(p.fresh for p in plan.checks), seed


def test_fixed_inputs_never_credit_the_checks_that_count_beside_others(replay):
    """If fixed public inputs came back into a graded plan (public_inputs="fixed", as tests that compare
    the checker with the grader build it), the replay would pass those public checks, but "inputs left
    unchanged" and "vectorised" still need a check passed on fresh inputs: they stay uncredited."""
    _, data, sub = replay
    fns = [fn for fn in FUNCTIONS if fn.name in ("rnn_forward", "word_embedding_forward", "temporal_softmax_loss")]
    assert all(fn.speed for fn in fns)
    plan = registry.plan(fns, device="cpu", seed=FIXED_SEED, public_inputs="fixed")
    assert all(p.fresh == p.case.hidden for p in plan.checks)
    report = runner.grade(sub, plan, CFG.limits(), CFG.budget_seconds())
    for f in report.functions:
        passed = [c for c in f.checks if c.passed]
        assert passed and all(not c.hidden and not c.fresh for c in passed), f.fn.name  # the replayed ones only
        aux = [c for c in f.checks if c.name == UNCHANGED or c.name.startswith(speed.NAME)]
        assert len(aux) == 2 and not any(c.passed for c in aux), (f.fn.name, [(c.name, c.message) for c in aux])
