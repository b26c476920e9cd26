"""compare.py: the relative error, the per-tensor verdict and message, and the generic hints.

Covers relative_error against the formula of the module docstring computed by hand in plain Python;
check_tensor on right answers, answers just inside and just outside the tolerance, and everything a
confused or hostile student returns instead (non-tensors, wrong shapes, dtypes and devices, NaN and
inf, integer outputs, empty and 0-d tensors); overflowed; in_place_message; value_hints (all zeros,
scaled by a size of the case, transposed, wrong at some time steps only).
"""
import itertools
import math

import pytest
import torch

from autograder.engine import compare
from autograder.engine.wire import Other, Received

F64 = torch.float64


def received(t, device="cpu", requires_grad=False):
    """What the wire hands the grader for a returned tensor."""
    return Received(t, device, requires_grad)


def hand_relative_error(got, expected):
    """The docstring's formula in plain Python: (largest error, its index), first index on ties."""
    shape = tuple(expected.shape)
    g = [float(v) for v in got.reshape(-1).tolist()]
    e = [float(v) for v in expected.reshape(-1).tolist()]
    floor = max(compare.FLOOR * max(abs(v) for v in e), compare.TINY)
    errs = []
    for a, b in zip(g, e):
        err = abs(a - b) / max(abs(b), floor)
        errs.append(math.inf if math.isnan(err) else err)
    best = max(range(len(errs)), key=lambda i: (errs[i], -i))
    index = list(itertools.product(*[range(n) for n in shape]))[best] if shape else ()
    return errs[best], tuple(index)


# --------------------------------------------------------------------------- describe_type
@pytest.mark.parametrize("value,name", [
    (received(torch.zeros(2)), "torch.Tensor"),
    (Other("numpy.ndarray", "array([1.])"), "numpy.ndarray"),
    (3, "int"), (2.5, "float"), (None, "NoneType"), ((1, 2), "tuple"), ([1], "list"), ({"a": 1}, "dict"),
    ("s", "str"),
])
def test_describe_type_names_what_the_student_returned(value, name):
    assert compare.describe_type(value) == name


# --------------------------------------------------------------------------- relative_error
def test_relative_error_of_identical_tensors_is_zero(gen):
    e = torch.randn(3, 4, dtype=F64, generator=gen)
    assert compare.relative_error(e.clone(), e)[0] == 0.0


def test_relative_error_matches_the_documented_formula(gen):
    e = torch.randn(4, 5, dtype=F64, generator=gen)
    e[1, 2] = 1e-9  # below the floor: judged against 0.1% of the largest entry
    g = e + 1e-4 * torch.randn(4, 5, dtype=F64, generator=gen)
    err, index = compare.relative_error(g, e)
    want_err, want_index = hand_relative_error(g, e)
    assert err == pytest.approx(want_err, rel=1e-12)
    assert index == want_index


def test_an_entry_near_zero_is_judged_against_the_tensors_scale_not_itself():
    e = torch.tensor([1000.0, 0.0], dtype=F64)
    g = torch.tensor([1000.0, 1e-3], dtype=F64)
    err, index = compare.relative_error(g, e)
    assert err == pytest.approx(1e-3 / (compare.FLOOR * 1000.0), rel=1e-12)  # not 1e-3 / 0
    assert index == (1,)


def test_an_all_zero_expected_value_fails_any_nonzero_answer():
    e = torch.zeros(3, dtype=F64)
    assert compare.relative_error(torch.zeros(3, dtype=F64), e)[0] == 0.0
    err, index = compare.relative_error(torch.tensor([0.0, 1e-12, 0.0], dtype=F64), e)
    assert err > 1e6 and index == (1,)


def test_a_nan_in_the_answer_is_an_infinite_error_at_its_index():
    e = torch.ones(2, 3, dtype=F64)
    g = e.clone()
    g[1, 0] = math.nan
    assert compare.relative_error(g, e) == (math.inf, (1, 0))


def test_relative_error_of_empty_tensors_is_zero_with_no_index():
    assert compare.relative_error(torch.empty(0, 3), torch.empty(0, 3)) == (0.0, ())


def test_relative_error_of_zero_dim_tensors_has_an_empty_index():
    err, index = compare.relative_error(torch.tensor(1.5, dtype=F64), torch.tensor(2.0, dtype=F64))
    assert index == () and err == pytest.approx(0.5 / 2.0)


def test_relative_error_is_computed_in_float64_even_for_float32_tensors():
    one_ulp = 2.0 ** -23  # exactly representable in float32; float32 arithmetic would not keep err exact
    e = torch.tensor([1.0], dtype=torch.float32)
    g = torch.tensor([1.0 + one_ulp], dtype=torch.float32)
    assert compare.relative_error(g, e)[0] == one_ulp


# --------------------------------------------------------------------------- check_tensor: the verdict
def check(got, expected, dtype=F64, device="cpu", rtol=None):
    return compare.check_tensor("h", got, expected, dtype, device, compare.RTOL[dtype] if rtol is None else rtol)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_right_answer_passes(dtype, gen):
    e = torch.randn(3, 4, dtype=F64, generator=gen)
    assert check(received(e.to(dtype)), e, dtype) is None


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_an_error_just_inside_the_tolerance_passes_and_just_outside_fails(dtype, gen):
    e = torch.randn(3, 4, dtype=F64, generator=gen)
    rtol = compare.RTOL[dtype]
    assert check(received((e * (1 + 0.5 * rtol)).to(dtype)), e, dtype) is None
    msg, value_mismatch = check(received((e * (1 + 3 * rtol)).to(dtype)), e, dtype)
    assert value_mismatch is True and "largest relative error" in msg


def test_the_tolerance_argument_is_the_one_applied(gen):
    e = torch.randn(5, dtype=F64, generator=gen)
    g = received(e * (1 + 1e-5))
    assert check(g, e, rtol=1e-4) is None
    assert check(g, e, rtol=1e-6) is not None


def test_a_value_failure_names_the_worst_entry_with_both_values(gen):
    e = torch.randn(4, 5, dtype=F64, generator=gen)
    g = e + 1e-2 * torch.randn(4, 5, dtype=F64, generator=gen)
    msg, value_mismatch = check(received(g), e)
    err, index = hand_relative_error(g, e)
    assert value_mismatch is True
    assert "largest relative error %.2e" % err in msg
    assert "at [%d, %d]" % index in msg
    assert "expected %s, got %s" % ("%.6g" % e[index].item(), "%.6g" % g[index].item()) in msg


def test_a_wrong_zero_dim_answer_is_reported_without_an_index():
    msg, value_mismatch = check(received(torch.tensor(3.0, dtype=F64)), torch.tensor(2.0, dtype=F64))
    assert value_mismatch is True and " at [" not in msg and "expected 2, got 3" in msg


def test_a_message_about_a_huge_tensor_stays_short(gen):
    e = torch.randn(1000, 1000, dtype=F64, generator=gen)
    msg, _ = check(received(-e), e)
    assert len(msg) < 300, msg


def test_empty_tensors_of_the_right_shape_pass():
    assert check(received(torch.empty(0, 3, dtype=F64)), torch.empty(0, 3, dtype=F64)) is None


# --------------------------------------------------------------------------- check_tensor: not even a tensor
@pytest.mark.parametrize("value,type_name", [
    (None, "NoneType"), (3, "int"), (0.5, "float"), ((1, 2), "tuple"), ([1.0, 2.0], "list"),
    (Other("numpy.ndarray", ""), "numpy.ndarray"), ("tensor", "str"),
])
def test_a_non_tensor_is_a_type_problem_not_a_value_one(value, type_name):
    msg, value_mismatch = check(value, torch.zeros(2, dtype=F64))
    assert value_mismatch is False
    assert msg == "h should be a torch.Tensor, got %s" % type_name


def test_a_plain_python_number_for_a_zero_dim_output_is_not_accepted():
    msg, value_mismatch = check(2.0, torch.tensor(2.0, dtype=F64))
    assert value_mismatch is False and "should be a torch.Tensor" in msg


# --------------------------------------------------------------------------- check_tensor: shape
def test_a_transposed_matrix_is_called_transposed():
    msg, value_mismatch = check(received(torch.zeros(3, 2, dtype=F64)), torch.zeros(2, 3, dtype=F64))
    assert value_mismatch is False
    assert msg.startswith("h has shape (3, 2), expected (2, 3)") and "(transposed?)" in msg


def test_a_permuted_3d_tensor_is_a_reshape_or_transpose_problem():
    msg, _ = check(received(torch.zeros(3, 2, 4, dtype=F64)), torch.zeros(2, 3, 4, dtype=F64))
    assert "same number of elements" in msg and "(transposed?)" not in msg


def test_only_a_matrix_is_called_transposed_not_a_reversed_3d_shape():
    msg, _ = check(received(torch.zeros(4, 3, 2, dtype=F64)), torch.zeros(2, 3, 4, dtype=F64))
    assert "(transposed?)" not in msg and "same number of elements" in msg


def test_a_shape_with_another_number_of_elements_gets_no_guess():
    msg, value_mismatch = check(received(torch.zeros(2, 4, dtype=F64)), torch.zeros(2, 3, dtype=F64))
    assert value_mismatch is False
    assert msg == "h has shape (2, 4), expected (2, 3)"


def test_a_one_element_vector_for_a_zero_dim_output_is_a_shape_problem():
    msg, value_mismatch = check(received(torch.zeros(1, dtype=F64)), torch.tensor(0.0, dtype=F64))
    assert value_mismatch is False and msg.startswith("h has shape (1,), expected ()")


def test_an_empty_tensor_for_a_full_one_is_a_shape_problem():
    msg, value_mismatch = check(received(torch.empty(0, dtype=F64)), torch.zeros(2, dtype=F64))
    assert value_mismatch is False and "shape (0,)" in msg


# --------------------------------------------------------------------------- check_tensor: dtype, device
def test_float32_returned_for_float64_inputs_is_a_dtype_problem_with_the_fix():
    msg, value_mismatch = check(received(torch.zeros(2, dtype=torch.float32)), torch.zeros(2, dtype=F64), F64)
    assert value_mismatch is False
    assert "dtype float32, expected float64" in msg and "dtype=x.dtype" in msg


def test_float64_returned_for_float32_inputs_is_a_dtype_problem():
    """The expected values are float64 (the oracle's); the dtype asked for is the case's."""
    msg, _ = check(received(torch.zeros(2, dtype=F64)), torch.zeros(2, dtype=F64), torch.float32)
    assert "dtype float64, expected float32" in msg


def test_an_integer_output_must_keep_the_expected_integer_dtype():
    msg, value_mismatch = check(received(torch.zeros(2, dtype=F64)), torch.zeros(2, dtype=torch.int64), F64)
    assert value_mismatch is False
    assert "dtype float64, expected int64" in msg and "dtype=x.dtype" not in msg


def test_a_tensor_left_on_the_cpu_in_a_cuda_case_is_a_device_problem():
    e = torch.zeros(2, dtype=F64)
    msg, value_mismatch = check(received(e.clone(), device="cpu"), e, device="cuda")
    assert value_mismatch is False
    assert msg.startswith("h is on cpu, expected cuda") and "device=x.device" in msg


def test_the_device_index_does_not_matter_only_its_type():
    e = torch.zeros(2, dtype=F64)
    assert check(received(e.clone(), device="cuda:0"), e, device="cuda") is None
    assert check(received(e.clone(), device="cuda"), e, device="cuda:0") is None


def test_a_device_string_torch_cannot_parse_fails_the_check_without_raising():
    e = torch.zeros(2, dtype=F64)
    problem = check(received(e.clone(), device="no-such-device"), e)
    assert problem is not None and problem[1] is False


# --------------------------------------------------------------------------- check_tensor: non-finite
def test_nan_and_inf_where_the_answer_is_finite_are_reported_at_the_first_one():
    e = torch.ones(2, 3, dtype=F64)
    g = e.clone()
    g[1, 2] = math.inf
    g[0, 1] = math.nan
    msg, value_mismatch = check(received(g), e)
    assert value_mismatch is True
    assert msg.startswith("h contains nan at [0, 1] where the expected value is 1")
    assert "overflow or an unstable formula" in msg


def test_inf_in_a_float32_answer_is_reported_as_inf():
    e = torch.full((3,), 2.0, dtype=F64)
    g = torch.tensor([2.0, math.inf, -math.inf], dtype=torch.float32)
    msg, _ = check(received(g), e, torch.float32)
    assert msg.startswith("h contains inf at [1]")


def test_a_nan_zero_dim_answer_does_not_raise():
    msg, value_mismatch = check(received(torch.tensor(math.nan, dtype=F64)), torch.tensor(1.0, dtype=F64))
    assert value_mismatch is True and "contains nan" in msg


# --------------------------------------------------------------------------- check_tensor: integers
def test_integer_outputs_are_compared_exactly_and_the_first_difference_named():
    e = torch.arange(12, dtype=torch.int64).reshape(3, 4)
    g = e.clone()
    g[2, 1] = 99
    g[1, 3] = -5
    first = next(ij for ij in itertools.product(range(3), range(4)) if g[ij] != e[ij])
    msg, value_mismatch = check(received(g), e)
    assert value_mismatch is True
    assert msg == "h is wrong at [%d, %d]: expected %d, got %d" % (first + (e[first].item(), g[first].item()))


def test_equal_integer_outputs_pass():
    e = torch.arange(6, dtype=torch.int64)
    assert check(received(e.clone()), e) is None


# --------------------------------------------------------------------------- overflowed
def test_inf_with_large_finite_inputs_looks_like_an_exp_overflow():
    got = torch.tensor([math.inf, 1.0], dtype=F64)
    expected = torch.ones(2, dtype=F64)
    assert compare.overflowed(got, expected, {"x": torch.tensor([compare.LARGE_INPUT * 2, 1.0], dtype=F64)})


def test_inf_with_small_inputs_is_not_called_an_overflow():
    got = torch.tensor([math.inf, 1.0], dtype=F64)
    assert not compare.overflowed(got, torch.ones(2, dtype=F64), {"x": torch.tensor([0.5, -0.5], dtype=F64)})


def test_non_finite_inputs_rule_out_the_overflow_story():
    got = torch.tensor([math.inf, 1.0], dtype=F64)
    inputs = {"x": torch.tensor([50.0, math.inf], dtype=F64)}
    assert not compare.overflowed(got, torch.ones(2, dtype=F64), inputs)


def test_a_finite_wrong_answer_is_not_an_overflow():
    got = torch.tensor([5.0, 1.0], dtype=F64)
    assert not compare.overflowed(got, torch.ones(2, dtype=F64), {"x": torch.full((2,), 50.0, dtype=F64)})


def test_nan_where_nan_is_expected_is_not_an_overflow():
    got = torch.tensor([math.nan, 1.0], dtype=F64)
    expected = torch.tensor([math.nan, 1.0], dtype=F64)
    assert not compare.overflowed(got, expected, {"x": torch.full((2,), 50.0, dtype=F64)})


def test_integer_empty_and_non_tensor_inputs_are_ignored():
    got = torch.tensor([math.inf], dtype=F64)
    expected = torch.ones(1, dtype=F64)
    large_int_only = {"idx": torch.tensor([1000]), "n": 3, "e": torch.empty(0, dtype=F64),
                      "x": torch.tensor([0.1], dtype=F64)}
    assert not compare.overflowed(got, expected, large_int_only)
    assert compare.overflowed(got, expected, dict(large_int_only, x=torch.tensor([50.0], dtype=F64)))
    assert not compare.overflowed(got, expected, {})


# --------------------------------------------------------------------------- in_place_message
def test_one_modified_input_is_named_with_its_fix():
    msg = compare.in_place_message(["h"])
    assert msg.startswith("modified its input h in place")
    assert "`h_new = h + ...`" in msg and "`h += ...`" in msg and "`h.clone()`" in msg


def test_an_upstream_gradient_gets_its_gradient_name_in_the_fix():
    msg = compare.in_place_message(["dnext_c"])
    assert "`dc = dnext_c + ...`" in msg and "`dnext_c += ...`" in msg


def test_several_modified_inputs_are_all_named():
    msg = compare.in_place_message(["dout", "h0"])
    assert msg.startswith("modified its inputs dout, h0 in place")
    assert "For dout, " in msg and "; for h0, " in msg


# --------------------------------------------------------------------------- value_hints
SIZES = {"N": 4, "T": 5, "D": 3, "H": 6}


@pytest.fixture
def expected(gen):
    return torch.randn(4, 5, 6, dtype=F64, generator=gen)


def test_an_all_zero_answer_is_called_all_zeros(expected):
    assert compare.value_hints(torch.zeros_like(expected), expected, SIZES) == [
        "it is all zeros: is the value ever written, or the gradient ever accumulated?"]


def test_no_hint_when_the_expected_value_itself_is_all_zeros(gen):
    e = torch.zeros(3, 3, dtype=F64)
    assert compare.value_hints(torch.randn(3, 3, dtype=F64, generator=gen), e, SIZES) == []


@pytest.mark.parametrize("factor,story", [
    (-1.0, "the sign is flipped"),
    (1 / 4, "1/N: averaged over the batch"),
    (4.0, "= N: summed where it should be averaged"),
    (1 / 5, "1/T: divided by the number of time steps"),
    (1 / 20, "1/(N*T): averaged over batch and time"),
], ids=["-1", "1/N", "N", "1/T", "1/(N*T)"])
def test_a_scaled_answer_names_the_factor_in_terms_of_the_sizes(expected, factor, story):
    hints = compare.value_hints(expected * factor, expected, SIZES)
    scale = [h for h in hints if h.startswith("it equals the expected value times")]
    assert len(scale) == 1, hints
    assert scale[0].startswith("it equals the expected value times %s" % compare.fmt_num(factor))
    assert story in scale[0]


def test_an_unexplained_factor_is_reported_without_a_story(expected):
    hints = compare.value_hints(expected * 3.7, expected, SIZES)
    assert hints == ["it equals the expected value times 3.7"]


def test_the_batch_story_needs_a_batch_larger_than_one(expected):
    hints = compare.value_hints(expected * 0.25, expected, {"N": 1, "T": 1})
    assert hints == ["it equals the expected value times 0.25"]


def test_a_right_answer_gets_no_scale_or_transpose_hint(expected):
    assert compare.value_hints(expected.clone(), expected, SIZES, time_axis=1) == []


def test_an_unrelated_answer_gets_no_hint(expected, gen):
    other = torch.randn(expected.shape, dtype=F64, generator=gen)
    assert compare.value_hints(other, expected, SIZES) == []


def test_the_transpose_of_a_square_answer_is_recognised(gen):
    e = torch.randn(5, 5, dtype=F64, generator=gen)
    assert "it equals the transpose of the expected value" in compare.value_hints(e.T.clone(), e, SIZES)


def test_an_answer_wrong_at_some_time_steps_names_them(expected):
    got = expected.clone()
    got[:, 2] += 1.0
    got[:, 4] *= 2.0
    hints = compare.value_hints(got, expected, SIZES, time_axis=1)
    assert "it is right at t = 0, 1, 3 and wrong at t = 2, 4" in hints


def test_many_wrong_steps_are_abbreviated(gen):
    e = torch.randn(2, 10, 3, dtype=F64, generator=gen)
    got = e.clone()
    got[:, 1:9] += 1.0  # right at 0 and 9 only
    hints = compare.value_hints(got, e, {"N": 2, "T": 10}, time_axis=1)
    assert "it is right at t = 0, 9 and wrong at t = 1, 2, 3 ... 7, 8" in hints


def test_an_answer_wrong_at_every_step_gets_no_step_hint(expected):
    hints = compare.value_hints(expected + 1.0, expected, SIZES, time_axis=1)
    assert not any("right at t" in h for h in hints)


def test_a_nan_answer_gets_hints_without_raising(expected):
    got = expected.clone()
    got[0, 0, 0] = math.nan
    hints = compare.value_hints(got, expected, SIZES, time_axis=1)
    assert "it is right at t = 1, 2, 3, 4 and wrong at t = 0" in hints
