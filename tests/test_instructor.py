"""Instructor tests (gradescope-utils' unittest files) run in the sandbox and merge into results.json.

One folder of small test files, each showing one behaviour, is run once against the reference
solutions (a module fixture: the worker starts a few times, one file hangs for the short time
limit); the shipped example runs against the solutions and against the stubs.
"""
import inspect
import json
import os
import subprocess
import sys
import textwrap

import pytest
from helpers import ASSIGNMENT, ROOT, SOLUTIONS, copy_solutions

from autograder.verbs import instructor

from autograder.engine import sandbox

pytest.importorskip("gradescope_utils", reason="pinned in requirements/grader.txt: make setup installs it")

TIMEOUT = 4.0  # seconds for one file: the hanging file costs this much
HEAD = ("import os, sys, unittest\n"
        "from gradescope_utils.autograder_utils.decorators import (hide_errors, leaderboard, number,\n"
        "    partial_credit, tags, visibility, weight)\n")

FILES = {
    "test_a_meta.py": '''
class Meta(unittest.TestCase):
    @weight(2)
    @visibility("after_published")
    @number("7.1")
    @tags("tbptt", "training")
    def test_named(self):
        """A named test (this line is its name)
        and not this one"""
        print("printed by the test")

    @weight(1)
    def test_unnamed(self):
        pass

    @weight(2)
    def test_subtest_fails(self):
        """Subtests: one fails"""
        for i in range(3):
            with self.subTest(i=i):
                self.assertNotEqual(i, 1, "case one is wrong")

    @partial_credit(4)
    def test_partial(self, set_score=None):
        """Partial: 1.5 of 4"""
        set_score(1.5)

    @partial_credit(4)
    def test_partial_too_much(self, set_score=None):
        """Partial: more than the weight"""
        set_score(10)

    @partial_credit(4)
    def test_partial_subtest_fails(self, set_score=None):
        """Partial: full marks set, then a subTest fails"""
        set_score(4)
        with self.subTest("second case"):
            self.fail("second case is wrong")

    @partial_credit(4)
    def test_partial_subtests_counted(self, set_score=None):
        """Partial: 2 of 3 subTests pass"""
        good = 0
        for i in range(3):
            with self.subTest(i=i):
                self.assertLess(i, 2, "case %d is wrong" % i)
                good += 1
        set_score(4 * good / 3)

    @partial_credit(4)
    def test_partial_then_error(self, set_score=None):
        """Partial: full marks set, then an error"""
        set_score(4)
        raise ValueError("broke after setting the score")

    @weight(3)
    @hide_errors("Something is wrong with training.")
    def test_hidden_errors(self):
        """Hidden errors"""
        self.assertEqual(1, 2, "secret detail")

    @weight(1)
    def test_sys_exit(self):
        """sys.exit in a test"""
        sys.exit(3)

    @weight(1)
    def test_student_code(self):
        """Student code is importable"""
        import tbptt
        print("tbptt from %s" % os.path.basename(os.path.dirname(tbptt.__file__)).startswith("ag-scratch-"))

    @weight(0)
    def test_whoami(self):
        for label, parts in (("grader", ("autograder", "runner.py")),
                             ("example", ("instructor_tests", "test_language_model.py"))):
            try:
                open(os.path.join(KIT, *parts)).read()
                print("%s=readable" % label)
            except OSError:
                print("%s=hidden" % label)
        print("uid=%d" % os.getuid())

    @leaderboard("loss")
    def test_board(self, set_leaderboard_value=None):
        set_leaderboard_value(1.25)

    @unittest.skip("not today")
    @weight(5)
    def test_skipped(self):
        pass
''',
    "test_b_hang.py": '''
class Hang(unittest.TestCase):
    @weight(1)
    def test_1_before(self):
        """Before the hang"""

    @weight(2)
    def test_2_hangs(self):
        """Hangs"""
        while True:
            pass

    @weight(3)
    def test_3_after(self):
        """After the hang"""
''',
    "test_c_exit.py": '''
class Exit(unittest.TestCase):
    @weight(1)
    def test_1_before(self):
        """Before os._exit"""

    @weight(2)
    def test_2_exits(self):
        """os._exit(0)"""
        os._exit(0)

    @weight(3)
    def test_3_after(self):
        """After os._exit"""
''',
    "test_d_interrupt.py": '''
class Interrupt(unittest.TestCase):
    @weight(2)
    def test_interrupted(self):
        """KeyboardInterrupt"""
        raise KeyboardInterrupt
''',
    "test_e_import.py": '''
import no_such_student_module


class Import(unittest.TestCase):
    @weight(2)
    @number("9.1")
    def test_needs_it(self):
        """Needs the missing module"""
''',
    "test_f_setupclass.py": '''
class Fixture(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        raise RuntimeError("fixture broke")

    @weight(2)
    def test_never_runs(self):
        """Behind a broken setUpClass"""
''',
    "test_h_teardown.py": '''
class Teardown(unittest.TestCase):
    @classmethod
    def tearDownClass(cls):
        raise RuntimeError("teardown broke")

    @weight(1)
    def test_passes(self):
        """Before a broken tearDownClass"""
''',
    "test_g_last.py": '''
class Last(unittest.TestCase):
    @weight(1)
    def test_runs(self):
        """The last file still runs"""
''',
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    """The report of FILES run against the reference solutions, and its entries by test id."""
    base = tmp_path_factory.mktemp("instructor")
    folder = base / "instructor_tests"
    folder.mkdir()
    kit = os.path.dirname(os.path.dirname(os.path.abspath(instructor.__file__)))
    for name, body in FILES.items():
        (folder / name).write_text(HEAD + "KIT = %r\n" % kit + textwrap.dedent(body))
    sub = copy_solutions(str(base / "sub"))
    rep = instructor.run(sub, folder=str(folder), timeout=TIMEOUT)
    by_id = {t["extra_data"]["id"].split(".", 1)[1]: t for t in rep.tests if "id" in t["extra_data"]}
    return rep, by_id


def test_entries_carry_gradescope_utils_metadata(suite):
    rep, t = suite
    named = t["Meta.test_named"]
    assert named["name"] == "A named test (this line is its name)"
    assert (named["score"], named["max_score"], named["status"]) == (2.0, 2.0, "passed")
    assert named["visibility"] == "after_published" and named["number"] == "7.1"
    assert named["tags"] == ["tbptt", "training"]
    assert "printed by the test" in named["output"]
    unnamed = t["Meta.test_unnamed"]
    assert unnamed["name"].startswith("test_unnamed (test_a_meta.Meta") and unnamed["visibility"] == "visible"
    assert "number" not in unnamed and "tags" not in unnamed
    assert "Meta.test_skipped" not in t  # skipped: no entry, as JSONTestRunner
    assert rep.leaderboard == [{"name": "loss", "value": 1.25, "order": "desc"}]
    assert "Meta.test_board" not in t
    assert "True" in t["Meta.test_student_code"]["output"]  # tbptt came from the scratch copy


def test_a_failing_subtest_fails_its_test_with_its_message(suite):
    _, t = suite
    e = t["Meta.test_subtest_fails"]
    assert (e["score"], e["status"]) == (0.0, "failed")
    assert "subTest (i=1)" in e["output"] and "case one is wrong" in e["output"]
    assert "i=0" not in e["output"] and "i=2" not in e["output"]


def test_partial_credit(suite):
    _, t = suite
    assert (t["Meta.test_partial"]["score"], t["Meta.test_partial"]["status"]) == (1.5, "failed")
    assert (t["Meta.test_partial_too_much"]["score"], t["Meta.test_partial_too_much"]["status"]) == (4.0, "passed")
    counted = t["Meta.test_partial_subtests_counted"]
    assert counted["score"] == round(4 * 2 / 3, 4) and "case 2 is wrong" in counted["output"]
    full_then_fail = t["Meta.test_partial_subtest_fails"]
    assert (full_then_fail["score"], full_then_fail["status"]) == (0.0, "failed")
    assert "[second case]" in full_then_fail["output"] and "second case is wrong" in full_then_fail["output"]


def test_an_errored_test_is_never_shown_as_passed(suite):
    _, t = suite
    e = t["Meta.test_partial_then_error"]
    assert (e["score"], e["status"]) == (0.0, "failed")  # JSONTestRunner would give it 4/4
    assert "ValueError: broke after setting the score" in e["output"]
    e = t["Meta.test_sys_exit"]
    assert (e["score"], e["status"]) == (0.0, "failed") and "SystemExit: 3" in e["output"]
    e = t["Meta.test_hidden_errors"]
    assert e["score"] == 0.0 and "Something is wrong with training." in e["output"]
    assert "secret detail" not in e["output"]


def test_a_hanging_test_is_stopped_and_the_rest_goes_on(suite):
    rep, t = suite
    assert t["Hang.test_1_before"]["status"] == "passed"
    hung = t["Hang.test_2_hangs"]
    assert (hung["score"], hung["max_score"]) == (0.0, 2.0) and "timed out after 4 s" in hung["output"]
    after = t["Hang.test_3_after"]
    assert (after["score"], after["max_score"]) == (0.0, 3.0) and "not run" in after["output"]
    assert t["Last.test_runs"]["status"] == "passed"


def test_os_exit_and_keyboard_interrupt_are_contained(suite):
    _, t = suite
    assert t["Exit.test_1_before"]["status"] == "passed"
    assert "exited with status 0" in t["Exit.test_2_exits"]["output"]
    assert t["Exit.test_2_exits"]["score"] == 0.0
    assert t["Exit.test_3_after"]["score"] == 0.0 and "not run" in t["Exit.test_3_after"]["output"]
    e = t["Interrupt.test_interrupted"]
    assert (e["score"], e["max_score"]) == (0.0, 2.0) and "KeyboardInterrupt" in e["output"]
    assert t["Last.test_runs"]["score"] == 1.0


def test_a_file_that_cannot_load_or_set_up_still_gets_its_entries(suite):
    rep, t = suite
    e = t["Import.test_needs_it"]  # listed from the file's text: name, weight, number
    assert (e["name"], e["score"], e["max_score"], e["number"]) == ("Needs the missing module", 0.0, 2.0, "9.1")
    assert "No module named 'no_such_student_module'" in e["output"]
    e = t["Fixture.test_never_runs"]
    assert (e["score"], e["max_score"]) == (0.0, 2.0) and "fixture broke" in e["output"]
    assert t["Teardown.test_passes"]["status"] == "passed"
    after = [e for e in rep.tests if e["name"] == "test_h_teardown.py: errors outside the tests"]
    assert after and after[0]["visibility"] == "hidden" and "teardown broke" in after[0]["output"]


def test_totals_and_merge_into_results(suite):
    rep, t = suite
    assert rep.score == sum(e.get("score", 0) for e in rep.tests)
    data = {"score": 10.0, "execution_time": 1.0, "output": "Score 10 / 10.", "tests": [{"name": "x"}]}
    merged = instructor.merge(data, rep)
    assert merged["score"] == round(10.0 + rep.score, 4)
    assert merged["tests"][1:] == rep.tests and merged["leaderboard"] == rep.leaderboard
    assert "Instructor tests: %s /" % instructor.results.fmt_points(rep.score) in merged["output"]
    assert "Meta.test_named" in [e["extra_data"].get("id", "").split(".", 1)[-1] for e in merged["tests"][1:]]
    assert "instructor tests total" in instructor.table(rep)


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (sandbox user)")
def test_instructor_tests_run_as_the_sandbox_user(suite):
    _, t = suite
    out = t["Meta.test_whoami"]["output"]
    uid = int(out.split("uid=")[1].split()[0])
    assert uid >= 64000 and "grader=hidden" in out
    if "instructor_tests" in inspect.signature(sandbox.hide_from_sandbox).parameters["secret_names"].default:
        assert "example=hidden" in out  # the test files reach the worker only as text


def test_nothing_runs_past_the_budget(tmp_path):
    folder = tmp_path / "it"
    folder.mkdir()
    (folder / "test_x.py").write_text(HEAD + textwrap.dedent(FILES["test_g_last.py"]))
    rep = instructor.run(str(tmp_path), folder=str(folder), budget=10.0, spent=10.0)
    assert [(e["name"], e["score"], e["max_score"]) for e in rep.tests] == [("The last file still runs", 0.0, 1.0)]
    assert "time budget" in rep.tests[0]["output"]


def test_no_folder_no_entries():
    rep = instructor.run(ASSIGNMENT, folder="/nonexistent-instructor-tests")
    data = {"score": 1.0, "output": "", "tests": []}
    assert rep.tests == [] and instructor.merge(data, rep) == {"score": 1.0, "output": "", "tests": []}


# --------------------------------------------------------------------------- the shipped example
def test_example_passes_on_the_solutions(tmp_path):
    rep = instructor.run(copy_solutions(str(tmp_path / "sub")))
    assert rep.files == ["test_language_model.py"]
    assert rep.tests and all(e["status"] == "passed" for e in rep.tests), rep.tests
    assert rep.score == rep.max_score == 5.0


def test_example_fails_on_the_stubs_with_the_stubs_message():
    rep = instructor.run(ASSIGNMENT)
    assert rep.tests and rep.score == 0.0
    for e in rep.tests:
        assert e["status"] == "failed" and "NotImplementedError: tbptt_train: not implemented yet" in e["output"]


def test_the_cli_merges_instructor_entries_into_results_json(tmp_path):
    folder = tmp_path / "it"
    folder.mkdir()
    (folder / "test_x.py").write_text(HEAD + textwrap.dedent(FILES["test_g_last.py"]))
    out = str(tmp_path / "results.json")
    r = subprocess.run([sys.executable, "-m", "autograder", "grade", SOLUTIONS, "-o", out, "--device", "cpu",
                        "--files", "tbptt", "--instructor-tests", str(folder)], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    data = json.load(open(out))
    mine = [t for t in data["tests"] if "instructor_test" in t.get("extra_data", {})]
    assert [(t["name"], t["score"], t["max_score"]) for t in mine] == [("The last file still runs", 1.0, 1.0)]
    assert data["score"] == sum(t.get("score", 0) for t in data["tests"])
    assert "Instructor tests: 1 / 1." in data["output"] and "The last file still runs" in r.stdout


# --------------------------------------------------------------------------- the file's text
STATIC = '''
import unittest
from gradescope_utils.autograder_utils.decorators import number, partial_credit, tags, weight as points

POINTS = 5
LABEL: str = "lm"


class Base(unittest.TestCase):
    @points(1)
    def test_inherited(self):
        """Inherited from Base"""


class Derived(Base):
    SCALE = 2

    @partial_credit(SCALE)
    @number(POINTS)
    @tags(LABEL, "x")
    def test_own(self, set_score=None):
        pass

    @unittest.skip("not today")
    @points(7)
    def test_skipped(self):
        pass


@unittest.skip("the whole class")
class Skipped(unittest.TestCase):
    @points(POINTS)
    def test_never(self):
        pass
'''


def test_static_tests_read_constants_aliases_and_inherited_tests():
    tests = {m["id"]: m for m in instructor.static_tests(STATIC, "test_static")}
    assert sorted(tests) == ["test_static.Base.test_inherited", "test_static.Derived.test_inherited",
                             "test_static.Derived.test_own"]
    assert tests["test_static.Derived.test_inherited"]["weight"] == 1.0
    assert tests["test_static.Derived.test_inherited"]["name"] == "Inherited from Base"
    own = tests["test_static.Derived.test_own"]
    assert (own["weight"], own["partial"], own["number"], own["tags"]) == (2.0, True, "5", ["lm", "x"])


@pytest.mark.parametrize("decorator, why", [
    ("@weight(compute())", "`compute()` is not a literal"),
    ("@weight(MAYBE)", "MAYBE is not a constant: it is bound more than once"),
    ("@weight(IMPORTED)", "IMPORTED is not a constant: it is bound to something other than a literal"),
    ("@weight(NOWHERE)", "NOWHERE is not assigned in this file"),
    ("@weight('three')", "@weight needs a number of points, 0 or more"),
    ("@tags(*NAMES)", "unpacked"),
])
def test_a_decorator_the_text_cannot_show_fails_loudly_with_file_and_line(tmp_path, decorator, why):
    source = HEAD + ("from os import sep as IMPORTED\nMAYBE = 1\nif sep:\n    MAYBE = 2\n\n"
                     "class T(unittest.TestCase):\n    %s\n    def test_x(self):\n        pass\n" % decorator)
    folder = tmp_path / "it"
    folder.mkdir()
    (folder / "test_bad.py").write_text(source)
    line = source.split("\n").index("    " + decorator) + 1
    with pytest.raises(instructor.InstructorFileError) as err:
        instructor.run(ASSIGNMENT, folder=str(folder))  # before any worker starts
    assert str(err.value).startswith("%s:%d: " % (folder / "test_bad.py", line)) and why in str(err.value)
