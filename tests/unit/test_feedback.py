"""feedback.py: the student-facing words for what the worker sent back.

Covers format_error on every shape of error the worker (or a hostile frame) reports: the resource
notes (memory, file size, processes) with the limits in force, traces, missing fields, non-dicts;
unpack on right and wrong return structures (a bare tensor for a tuple, tuples of the wrong length,
None, dicts); hints: the order of the overflow hint, the known mistakes' hints and the generic ones,
and a mistake detector that raises.
"""
import math
from types import SimpleNamespace

import pytest
import torch

from autograder.engine import compare, feedback
from autograder.engine.sandbox import Limits
from autograder.engine.spec import Case, Mistake
from autograder.engine.wire import Other, Received

F64 = torch.float64


# --------------------------------------------------------------------------- format_error
def test_an_error_reads_type_colon_message():
    assert feedback.format_error({"type": "ValueError", "message": "bad shape"}) == "ValueError: bad shape"


def test_the_trace_follows_on_its_own_lines():
    trace = '  File "rnn_layers.py", line 12, in rnn_forward\n    h = x @ Wx'
    got = feedback.format_error({"type": "RuntimeError", "message": "mat1 and mat2", "trace": trace})
    assert got == "RuntimeError: mat1 and mat2\n" + trace


def test_an_empty_trace_adds_nothing():
    assert feedback.format_error({"type": "KeyError", "message": "'h'", "trace": ""}) == "KeyError: 'h'"


@pytest.mark.parametrize("err", [None, "MemoryError", ["ValueError", "x"], 42, Other("dict", "{}")])
def test_anything_but_a_dict_is_an_unknown_error(err):
    assert feedback.format_error(err) == "unknown error"


def test_missing_fields_are_filled_in():
    assert feedback.format_error({}) == "Error: "
    assert feedback.format_error({"message": "m"}) == "Error: m"


@pytest.mark.parametrize("err", [
    {"type": "MemoryError", "message": ""},
    {"type": "RuntimeError", "message": "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"},
    {"type": "RuntimeError", "message": "CUDA out of memory. Tried to allocate 2.00 GiB"},
], ids=["MemoryError", "CPU allocator", "CUDA"])
def test_running_out_of_memory_names_the_limit_in_force(err):
    got = feedback.format_error(err, Limits(memory_mb=123))
    assert "the worker's memory limit of 123 MB was reached" in got and "AUTOGRADER_MEMORY_MB" in got


def test_without_limits_the_environments_are_named(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_MEMORY_MB", "77")
    assert "memory limit of 77 MB" in feedback.format_error({"type": "MemoryError", "message": ""})


def test_a_file_too_large_names_the_file_size_limit():
    got = feedback.format_error({"type": "OSError", "message": "[Errno 27] File too large"}, Limits(fsize_mb=9))
    assert got.endswith("(the file-size limit of 9 MB was reached: AUTOGRADER_FSIZE_MB)")


@pytest.mark.parametrize("err", [
    {"type": "BlockingIOError", "message": "[Errno 11]"},
    {"type": "RuntimeError", "message": "can't start new thread: Resource temporarily unavailable"},
])
def test_running_out_of_processes_names_the_process_limit(err):
    assert feedback.format_error(err, Limits()).endswith("(the process/thread limit was reached: AUTOGRADER_NPROC)")


def test_one_resource_note_at_most_and_before_the_trace():
    err = {"type": "MemoryError", "message": "File too large", "trace": "TRACE"}
    got = feedback.format_error(err, Limits(memory_mb=5, fsize_mb=6))
    assert "memory limit of 5 MB" in got and "file-size limit" not in got
    assert got.endswith("\nTRACE")


def test_an_ordinary_error_gets_no_resource_note():
    got = feedback.format_error({"type": "IndexError", "message": "index 5 is out of bounds"}, Limits())
    assert "limit" not in got


def test_a_non_string_message_is_printed_not_raised():
    got = feedback.format_error({"type": "ValueError", "message": 12345}, Limits())
    assert got == "ValueError: 12345"


@pytest.mark.parametrize("trace", [5, ["frame"], {"a": 1}])
def test_a_non_string_trace_is_printed_not_raised(trace):
    got = feedback.format_error({"type": "ValueError", "message": "m", "trace": trace}, Limits())
    assert got.startswith("ValueError: m")


# --------------------------------------------------------------------------- unpack
def test_a_single_output_is_taken_as_returned(make_fn):
    fn = make_fn(returns=("h",))
    value = Received(torch.zeros(2), "cpu", False)
    assert feedback.unpack(fn, value) == ({"h": value}, None)
    assert feedback.unpack(fn, (value, value)) == ({"h": (value, value)}, None)  # check_tensor judges it


@pytest.mark.parametrize("container", [tuple, list])
def test_a_tuple_or_list_of_the_right_length_is_named_in_order(make_fn, container):
    fn = make_fn(returns=("h", "cache"))
    values, problem = feedback.unpack(fn, container(["H", "C"]))
    assert problem is None and values == {"h": "H", "cache": "C"}


@pytest.mark.parametrize("value,type_name", [
    (Received(torch.zeros(2), "cpu", False), "torch.Tensor"), (None, "NoneType"), ({"h": 1}, "dict"),
    (Other("numpy.ndarray", ""), "numpy.ndarray"), (3.5, "float"),
])
def test_a_non_tuple_for_several_outputs_names_what_came_back(make_fn, value, type_name):
    fn = make_fn(name="rnn_step_forward", returns=("next_h", "cache"))
    values, problem = feedback.unpack(fn, value)
    assert values is None
    assert problem == "rnn_step_forward returned %s, expected a tuple of 2 (next_h, cache)" % type_name


@pytest.mark.parametrize("n", [0, 1, 2, 4, 10])
def test_a_tuple_of_the_wrong_length_gives_both_lengths(make_fn, n):
    fn = make_fn(name="lstm_step_forward", returns=("next_h", "next_c", "cache"))
    values, problem = feedback.unpack(fn, tuple(range(n)))
    assert values is None
    assert problem == "lstm_step_forward returned a tuple of %d values, expected 3 (next_h, next_c, cache)" % n


# --------------------------------------------------------------------------- hints
@pytest.fixture
def prep(make_fn, gen):
    """prep(mistakes=..., time_axis=..., inputs=...) -> what hints() reads of the runner's Prepared check."""

    def make(mistakes=(), time_axis=None, inputs=None, expected=None):
        fn = make_fn(returns=("h",), mistakes=list(mistakes), time_axis=time_axis or {})
        case = Case("float64, small", {"N": 2, "T": 4, "H": 3}, torch.float64, seed=1)
        exp = torch.randn(2, 4, 3, dtype=F64, generator=gen) if expected is None else expected
        small = {"x": torch.randn(2, 4, 3, dtype=F64, generator=gen)}
        return SimpleNamespace(fn=fn, case=case, expected={"h": exp}, inputs64=small if inputs is None else inputs)

    return make


def got(t):
    return Received(t, "cpu", False)


def test_a_recognised_mistake_gives_its_hint_and_no_generic_one(prep):
    p = prep(mistakes=[Mistake("you summed where you should average", lambda i, n, g, e: True)])
    zeros = torch.zeros(2, 4, 3, dtype=F64)  # all zeros: a generic hint would apply too
    assert feedback.hints(p, "h", got(zeros)) == "\nHint: you summed where you should average"


def test_a_detector_sees_the_float64_answer_the_expected_value_and_the_inputs(prep):
    seen = []
    p = prep(mistakes=[Mistake("m", lambda i, n, g, e: seen.append((i, n, g, e)) or False)])
    answer = torch.ones(2, 4, 3, dtype=torch.float32)
    feedback.hints(p, "h", got(answer))
    (inputs, name, g, e), = seen
    assert inputs is p.inputs64 and name == "h" and e is p.expected["h"]
    assert g.dtype == F64 and torch.equal(g, answer.double())


def test_every_matching_mistake_is_hinted_in_order(prep):
    p = prep(mistakes=[Mistake("first", lambda *a: True), Mistake("not me", lambda *a: False),
                       Mistake("second", lambda *a: True)])
    assert feedback.hints(p, "h", got(torch.zeros(2, 4, 3, dtype=F64))) == "\nHint: first\nHint: second"


def test_a_detector_that_raises_is_skipped(prep):
    def broken(*args):
        raise IndexError("a detector bug")

    p = prep(mistakes=[Mistake("never", broken), Mistake("still found", lambda *a: True)])
    assert feedback.hints(p, "h", got(torch.zeros(2, 4, 3, dtype=F64))) == "\nHint: still found"


def test_without_a_recognised_mistake_the_generic_hints_are_given(prep):
    p = prep(mistakes=[Mistake("not this", lambda *a: False)])
    assert feedback.hints(p, "h", got(torch.zeros(2, 4, 3, dtype=F64))) == (
        "\nHint: it is all zeros: is the value ever written, or the gradient ever accumulated?")


def test_the_generic_hints_use_the_functions_time_axis(prep):
    p = prep(time_axis={"h": 1})
    answer = p.expected["h"].clone()
    answer[:, 3] += 1.0
    assert "\nHint: it is right at t = 0, 1, 2 and wrong at t = 3" in feedback.hints(p, "h", got(answer))


def test_an_overflow_comes_first_and_replaces_the_generic_hints(prep):
    large = {"x": torch.full((2, 4, 3), 60.0, dtype=F64)}
    p = prep(inputs=large, mistakes=[Mistake("also this", lambda *a: True)])
    answer = p.expected["h"].clone()
    answer[0, 0, 0] = math.inf
    assert feedback.hints(p, "h", got(answer)) == "\nHint: %s\nHint: also this" % compare.OVERFLOW_HINT
    p = prep(inputs=large)
    assert feedback.hints(p, "h", got(answer)) == "\nHint: %s" % compare.OVERFLOW_HINT


def test_an_unexplained_wrong_answer_gets_no_hint(prep, gen):
    p = prep()
    assert feedback.hints(p, "h", got(torch.randn(2, 4, 3, dtype=F64, generator=gen))) == ""
