"""Workers forked from the pre-imported zygote (forkserver.py) are as isolated as fresh ones.

The hostile submissions of test_hostile.py that test the sandbox itself (crashes, hangs, memory,
files, processes, network, leaks) are graded again here with every worker forked from one zygote,
and must cost exactly the same. Then what only forking could break: a worker must hold nothing of
the grader (no plan, no expected answer) and nothing of the student graded before it.
"""
import pytest
import test_hostile as hostile
from helpers import copy_solutions, make_variant, scores

from autograder.engine import forkserver, runner, sandbox


zygote_server = []


@pytest.fixture(autouse=True, scope="module")
def zygote():
    server = forkserver.start()
    zygote_server[:] = [server]
    yield server
    assert server.alive, "the zygote died during the tests: workers were started fresh instead"
    server.stop()
    assert sandbox.SPAWNER is None


@pytest.fixture(autouse=True)
def forked_workers(monkeypatch, zygote):
    """Fail a test whose workers were not forked (a silent fallback would test nothing here)."""
    fresh = []
    real = sandbox.subprocess.Popen

    def popen(args, *a, **kw):
        if "-c" in args and sandbox.BOOTSTRAP in args:
            fresh.append(args)
        return real(args, *a, **kw)

    monkeypatch.setattr(sandbox.subprocess, "Popen", popen)
    yield fresh
    assert not fresh, "a worker was started fresh, not forked"


test_crashes_and_hangs_in_a_function = hostile.test_crashes_and_hangs_in_a_function
test_memory_hog_fails_with_the_limit_named = hostile.test_memory_hog_fails_with_the_limit_named
test_python_memory_hog_fails_with_the_limit_named = hostile.test_python_memory_hog_fails_with_the_limit_named
test_gigabytes_of_reserved_address_space_still_get_full_marks = \
    hostile.test_gigabytes_of_reserved_address_space_still_get_full_marks
test_shared_memory_is_stopped_by_the_watchdog = \
    hostile.test_shared_memory_that_the_data_limit_does_not_count_is_stopped_by_the_watchdog
test_student_code_cannot_kill_the_grader = hostile.test_student_code_cannot_kill_the_grader
test_fork_loop_fails_inside_the_worker = hostile.test_fork_loop_fails_inside_the_worker
test_grader_files_and_solutions_are_not_readable = hostile.test_grader_files_and_solutions_are_not_readable
test_network_is_blocked = hostile.test_network_is_blocked
test_hidden_inputs_are_not_in_the_workers_reach_before_the_call = \
    hostile.test_hidden_inputs_are_not_in_the_workers_reach_before_the_call
test_files_left_in_shared_folders_are_removed = hostile.test_files_left_in_shared_folders_are_removed
# issue 18: the kernel's layers hold for forked workers too
test_a_worker_that_stops_reading_its_requests_cannot_hold_the_grader = \
    hostile.test_a_worker_that_stops_reading_its_requests_cannot_hold_the_grader
test_no_student_call_can_create_a_process = hostile.test_no_student_call_can_create_a_process
test_no_student_call_can_start_a_thread_on_cpu = hostile.test_no_student_call_can_start_a_thread_on_cpu
test_closing_the_record_is_itself_a_violation = hostile.test_closing_the_record_is_itself_a_violation
test_system_v_shared_memory_is_refused_and_nothing_outlives_grading = \
    hostile.test_system_v_shared_memory_is_refused_and_nothing_outlives_grading
test_files_anywhere_writable_do_not_outlive_grading = hostile.test_files_anywhere_writable_do_not_outlive_grading
test_unix_sockets_reached_by_path_are_blocked = hostile.test_unix_sockets_reached_by_path_are_blocked


def test_solutions_and_stubs_score_as_with_fresh_workers(plans, tmp_path):
    plan = plans(["rnn_layers"])
    good = runner.grade(copy_solutions(str(tmp_path / "good")), plan)
    assert all(fr.score == fr.max_score for fr in good.functions), [fr.first_failure() for fr in good.functions]
    stubs = runner.grade(hostile.ROOT + "/assignment", plan)
    assert all(fr.score == 0 for fr in stubs.functions)


GRADER_MODULES = ("autograder.engine.runner", "autograder.engine.spec", "autograder.registry", "autograder.parts",
                  "autograder.engine.compare", "solutions")


def test_a_forked_worker_holds_nothing_of_the_grader(plans, tmp_path):
    """No module that makes or holds the plan is loaded, and no tensor exists before the first call."""
    snoop = ("import sys, gc\n"
             "LOADED = sorted(m for m in sys.modules if m.startswith(%r))\n"
             "TENSORS = [o for o in gc.get_objects() if isinstance(o, torch.Tensor)]\n") % (GRADER_MODULES,)
    body = ("if LOADED or TENSORS:\n"
            "    raise RuntimeError('grader modules %s, %d tensors' % (LOADED, len(TENSORS)))\n")
    hostile.expect_exact(hostile.grade(hostile.attack(tmp_path, body, at_import=snoop), plans), zero=set())


def test_a_forked_worker_holds_nothing_of_the_previous_student(plans, tmp_path):
    """Student A marks torch, a file and the environment; student B, forked next, finds none of it."""
    mark = ("torch.LEFT_BY_A = 'A'\nimport os\nos.environ['LEFT_BY_A'] = '1'\n"
            "open(os.path.join(os.path.expanduser('~'), 'left_by_a'), 'w').write('A')\n")
    a = hostile.attack(tmp_path / "a", "", at_import=mark)
    look = ("import os\n"
            "seen = [hasattr(torch, 'LEFT_BY_A'), 'LEFT_BY_A' in os.environ,\n"
            "        os.path.exists(os.path.join(os.path.expanduser('~'), 'left_by_a'))]\n"
            "if any(seen):\n    raise RuntimeError('left by A: %s' % seen)\n")
    b = hostile.attack(tmp_path / "b", look)
    hostile.expect_exact(hostile.grade(a, plans), zero=set())
    hostile.expect_exact(hostile.grade(b, plans), zero=set())


def test_a_buggy_submission_loses_the_same_points_as_with_fresh_workers(plans, tmp_path, monkeypatch,
                                                                       forked_workers):
    sub = make_variant(str(tmp_path / "sub"), "rnn_layers.py", [("next_h = torch.tanh(", "next_h = (")])
    plan = plans(["rnn_layers"])
    forked = scores(runner.grade(sub, plan))
    monkeypatch.setattr(sandbox, "SPAWNER", None)
    fresh = scores(runner.grade(sub, plan))
    assert forked_workers, "the comparison did not start a fresh worker"
    forked_workers.clear()
    assert forked == fresh and forked["rnn_step_forward"] == 0, (forked, fresh)


def test_a_zygote_that_cannot_start_leaves_fresh_workers_to_grade(plans, tmp_path, monkeypatch, forked_workers):
    monkeypatch.setattr(forkserver, "BOOT", "import sys; sys.exit(3)")
    broken = forkserver.start(wait=False)
    try:
        report = runner.grade(copy_solutions(str(tmp_path / "good")), plans(["rnn_layers"]))
        assert not broken.alive and forked_workers, "the broken zygote was not replaced by fresh workers"
    finally:
        broken.stop()
        sandbox.SPAWNER = zygote_server[0]  # the module's zygote again, for the tests after this one
    forked_workers.clear()
    assert all(fr.score == fr.max_score for fr in report.functions), [fr.first_failure() for fr in report.functions]


def test_a_fork_that_fails_late_leaves_its_pipes_to_no_one(plans, tmp_path, monkeypatch, forked_workers):
    """The zygote got the pipes but did not answer in time: a child it forks late may hold them. The
    fresh worker that takes over gets new pipes, and the late child reads EOF, not the new worker's
    requests."""
    import os

    kept = []

    class Late:
        alive = True

        def spawn(self, fds, params, timeout=30.0):
            kept.append(os.dup(fds[0]))  # what a late child would hold: the request pipe's read end
            raise sandbox.WorkerLost("the fork server did not answer")

    fresh_pipes = []
    popen = sandbox.subprocess.Popen

    def fresh(args, *a, **kw):  # the fresh worker's request pipe: argv[5] is its read end
        fresh_pipes.append(os.fstat(int(args[5])).st_ino)
        return popen(args, *a, **kw)

    monkeypatch.setattr(sandbox, "SPAWNER", Late())
    monkeypatch.setattr(sandbox.subprocess, "Popen", fresh)
    try:
        report = runner.grade(copy_solutions(str(tmp_path / "good")), plans(["rnn_layers"]))
        assert kept and forked_workers, "no fresh worker took over"
        assert not {os.fstat(fd).st_ino for fd in kept} & set(fresh_pipes), "a fresh worker reused the sent pipes"
        for fd in kept:
            assert os.read(fd, 1 << 16) == b"", "a late fork would read the fresh worker's requests"
    finally:
        for fd in kept:
            os.close(fd)
    forked_workers.clear()
    assert all(fr.score == fr.max_score for fr in report.functions), [fr.first_failure() for fr in report.functions]
