"""detectors.py: the hint detectors that ship with the student release.

Each detector must fire on the mistake it names and stay silent on a right answer and on unrelated
wrong ones. Covers matches_model (tolerance, shapes, NaN placement, all-NaN and empty models),
repeated_words_overwritten (dW assigned instead of accumulated for repeated words) and
transposed_weight_grad (a square weight gradient transposed), with the right answers and the
mistakes computed here by plain loops.
"""
import math

import pytest
import torch

from autograder.engine import detectors
from autograder.engine.compare import MATCH

F64 = torch.float64


# --------------------------------------------------------------------------- matches_model
@pytest.fixture
def model_out(gen):
    return torch.randn(3, 4, dtype=F64, generator=gen)


def test_an_output_equal_to_the_model_matches(model_out):
    assert detectors.matches_model(model_out, model_out.clone())


def test_a_difference_within_match_of_the_models_scale_matches_and_beyond_it_does_not(model_out):
    scale = max(abs(v) for v in model_out.reshape(-1).tolist())
    near, far = model_out.clone(), model_out.clone()
    near[1, 2] += 0.5 * MATCH * scale
    far[1, 2] += 2.0 * MATCH * scale
    assert detectors.matches_model(model_out, near)
    assert not detectors.matches_model(model_out, far)


def test_no_model_never_matches(model_out):
    assert not detectors.matches_model(None, model_out)


def test_another_shape_never_matches(model_out):
    assert not detectors.matches_model(model_out, model_out.T.clone())
    assert not detectors.matches_model(model_out, model_out.reshape(-1).clone())


def test_a_float32_model_is_compared_in_float64(model_out):
    assert detectors.matches_model(model_out.float(), model_out.float().double())


def test_a_model_that_requires_grad_is_compared_by_value(model_out):
    assert detectors.matches_model(model_out.clone().requires_grad_(), model_out.clone())


def test_nan_in_the_same_places_and_equal_elsewhere_matches(model_out):
    b = model_out.clone()
    b[0, 1] = math.nan
    assert detectors.matches_model(b, b.clone())


def test_nan_in_other_places_does_not_match(model_out):
    b, g = model_out.clone(), model_out.clone()
    b[0, 1] = math.nan
    g[2, 3] = math.nan
    assert not detectors.matches_model(b, g)
    assert not detectors.matches_model(model_out, g)  # NaN in the answer only


def test_an_all_nan_model_proves_nothing():
    b = torch.full((2, 3), math.nan, dtype=F64)
    assert not detectors.matches_model(b, b.clone())


def test_an_empty_model_never_matches():
    assert not detectors.matches_model(torch.empty(0, 3, dtype=F64), torch.empty(0, 3, dtype=F64))


def test_an_all_zero_model_matches_zeros_only():
    b = torch.zeros(2, 2, dtype=F64)
    assert detectors.matches_model(b, b.clone())
    assert not detectors.matches_model(b, torch.full((2, 2), 1e-20, dtype=F64))


# --------------------------------------------------------------------------- repeated_words_overwritten
V, D = 6, 3
WORDS = [[0, 1, 1, 2], [3, 1, 4, 4]]  # 1 three times, 4 twice, 0, 2 and 3 once, 5 never


def word_grads(words, dout, accumulate):
    """dW of a word embedding by plain loops: summed over every use of a word, or overwritten by the last."""
    dW = [[0.0] * D for _ in range(V)]
    for n, row in enumerate(words):
        for t, w in enumerate(row):
            for d in range(D):
                g = dout[n][t][d]
                dW[w][d] = dW[w][d] + g if accumulate else g
    return torch.tensor(dW, dtype=F64)


@pytest.fixture
def embedding(gen):
    dout = torch.randn(2, 4, D, dtype=F64, generator=gen).tolist()
    inputs = {"x": torch.tensor(WORDS), "dout": torch.tensor(dout, dtype=F64)}
    return inputs, word_grads(WORDS, dout, accumulate=True), word_grads(WORDS, dout, accumulate=False)


def test_overwriting_the_rows_of_repeated_words_is_recognised(embedding):
    inputs, right, overwritten = embedding
    assert detectors.repeated_words_overwritten(inputs, "dW", overwritten, right)


def test_the_right_gradient_is_not_called_overwritten(embedding):
    inputs, right, _ = embedding
    assert not detectors.repeated_words_overwritten(inputs, "dW", right.clone(), right)


def test_an_answer_wrong_on_words_seen_once_is_another_mistake(embedding):
    inputs, right, overwritten = embedding
    also_scaled = overwritten.clone()
    also_scaled[0] *= 2.0  # word 0 is seen once
    assert not detectors.repeated_words_overwritten(inputs, "dW", also_scaled, right)
    assert not detectors.repeated_words_overwritten(inputs, "dW", -right, right)


def test_without_repeated_words_the_detector_stays_silent(gen):
    words = [[0, 1], [2, 3]]
    dout = torch.randn(2, 2, D, dtype=F64, generator=gen).tolist()
    right = word_grads(words, dout, accumulate=True)
    wrong = right * 3.0
    assert not detectors.repeated_words_overwritten({"x": torch.tensor(words)}, "dW", wrong, right)


def test_overwritten_only_applies_to_dW(embedding):
    inputs, right, overwritten = embedding
    assert not detectors.repeated_words_overwritten(inputs, "dx", overwritten, right)


# --------------------------------------------------------------------------- transposed_weight_grad
@pytest.fixture
def square(gen):
    return torch.randn(4, 4, dtype=F64, generator=gen)


@pytest.mark.parametrize("name", ["dWh", "dWx", "dW"])
def test_a_transposed_square_weight_gradient_is_recognised(square, name):
    transposed = torch.tensor([[square[j][i].item() for j in range(4)] for i in range(4)], dtype=F64)
    assert detectors.transposed_weight_grad({}, name, transposed, square)


def test_the_right_weight_gradient_is_not_called_transposed(square):
    assert not detectors.transposed_weight_grad({}, "dWh", square.clone(), square)


def test_an_unrelated_wrong_gradient_is_not_called_transposed(square, gen):
    assert not detectors.transposed_weight_grad({}, "dWh", torch.randn(4, 4, dtype=F64, generator=gen), square)


def test_transposed_applies_to_square_weight_gradients_only(gen):
    rect = torch.randn(3, 5, dtype=F64, generator=gen)
    assert not detectors.transposed_weight_grad({}, "dWx", rect.T.clone(), rect)  # not square
    sq = torch.randn(3, 3, dtype=F64, generator=gen)
    assert not detectors.transposed_weight_grad({}, "db", sq.T.clone(), sq)  # not a weight
    assert not detectors.transposed_weight_grad({}, "dh0", sq.T.clone(), sq)
    vec = torch.randn(3, dtype=F64, generator=gen)
    assert not detectors.transposed_weight_grad({}, "dWb", vec.clone(), vec)  # not 2-D


# --------------------------------------------------------------------------- the table the release refers to
def test_every_generic_detector_is_listed_under_its_own_name():
    assert detectors.DETECTORS == {"repeated_words_overwritten": detectors.repeated_words_overwritten,
                                   "transposed_weight_grad": detectors.transposed_weight_grad}
