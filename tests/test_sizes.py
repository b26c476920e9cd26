"""Every size of every graded function is 1 in some case, the others not all 1 (issue 20, item 5).

Student code that squeezes a slice, x[:, t, :].squeeze(), is right until D=1 turns the (N, D) slice
into (N,); before the sequence layers had a D=1 case it earned full marks. Here: over the whole
registry, every size name a function's cases use (N, T, D, H, V, L, heads, ...) is 1 in one of its
CPU cases in which some other size is above 1 (autograder/parts/cases.py, size_one_cases), and a
submission with that squeeze loses points on the D=1 case while the solutions keep full marks.
"""
import pytest
from helpers import copy_solutions, full, make_variant, scores

from autograder import registry
from autograder.engine import runner

# (function, size) -> why no case of that function has that size at 1. None today: the two sizes where
# a 1 is special have it as it fits them. local_attention_mask's window W is a number, not a tensor's
# size, and is 1 in its "L=1" case (N=3); multi-head attention's heads divide E, so E=1 comes with
# heads=1 ("E=1, heads=1", N=3, L=4), and heads=1 alone is its "1 head" case.
EXEMPT = {}


def size_names(fn):
    """The size names of fn's cases, in order of first use."""
    names = []
    for case in fn.cases:
        names += [k for k in case.sizes if k not in names]
    return names


def size_one_case(fn, size):
    """A CPU case of fn with `size` at 1 and some other size above 1, or None."""
    for case in fn.cases:
        if case.device == "cpu" and case.sizes.get(size) == 1 and any(
                v > 1 for k, v in case.sizes.items() if k != size):
            return case
    return None


@pytest.mark.parametrize("fn", registry.FUNCTIONS, ids=[fn.name for fn in registry.FUNCTIONS])
def test_every_size_is_one_in_some_case(fn):
    names = size_names(fn)
    assert names, fn.name
    missing = [s for s in names if (fn.name, s) not in EXEMPT and size_one_case(fn, s) is None]
    assert not missing, "%s: no CPU case has %s (with another size above 1); add one with " \
                        "cases.size_one_cases, or exempt it in EXEMPT with the reason" % (
                            fn.name, ", ".join("%s=1" % s for s in missing))


def test_exemptions_are_explained_and_needed():
    for (name, size), reason in EXEMPT.items():
        fn = registry.BY_NAME[name]
        assert size in size_names(fn), (name, size)
        assert isinstance(reason, str) and len(reason) > 20, (name, size, reason)
        assert size_one_case(fn, size) is None, "%s has a case with %s=1 now: drop its exemption" % (name, size)


def test_size_one_cases_are_hidden_and_named_apart():
    """The cases size_one_cases appends are hidden (the release ships public cases only) and come
    after every other case (a public case's index in fn.cases is what the release ships); case names
    are unique within a function (a hidden case's seed derives from its name)."""
    from autograder.parts.cases import SIZE_ONE_WEIGHT

    for fn in registry.FUNCTIONS:
        assert len({c.name for c in fn.cases}) == len(fn.cases), fn.name
        added = [i for i, c in enumerate(fn.cases) if c.weight == SIZE_ONE_WEIGHT and c.hidden]
        assert all(fn.cases[i].device == "cpu" for i in added), fn.name
        if added:
            rest = [c for c in fn.cases[added[0]:] if c.weight != SIZE_ONE_WEIGHT]
            assert not rest, (fn.name, [c.name for c in rest])


SQUEEZE = ("rnn_step_forward(x[:, t], prev_h", "rnn_step_forward(x[:, t, :].squeeze(), prev_h")


def test_a_squeezed_slice_loses_points_on_d_of_one(plans, tmp_path):
    plan = plans(["rnn_layers"])
    solutions = runner.grade(copy_solutions(str(tmp_path / "solutions")), plan)
    assert scores(solutions) == full(solutions)

    variant = runner.grade(make_variant(str(tmp_path / "squeeze"), "rnn_layers.py", [SQUEEZE]), plan)
    got, best = scores(variant), full(variant)
    for name in ("rnn_forward", "birnn_forward"):  # birnn_forward calls rnn_forward
        assert got[name] < best[name], name
        fr = next(f for f in variant.functions if f.fn.name == name)
        labels = {c.label: c for c in fr.fn.cases}
        failed = [labels[c.name].name for c in fr.checks if not c.passed and c.name in labels]
        # D=1 alone catches it: with N=1, (1, D) squeezes to (D,) and broadcasting hides it
        assert failed == ["D=1"], (name, failed, [c.message for c in fr.checks if not c.passed])
        d1 = next(c for c in fr.checks if c.name in labels and labels[c.name].name == "D=1")
        assert d1.hidden and "raised RuntimeError" in d1.message, d1
