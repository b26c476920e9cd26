"""The reference LSTM reproduces CS231n's published expected values (same gate order i, f, o, g).

Inputs and expected values are those of Stanford CS231n's assignment 3 notebook
`LSTM_Captioning.ipynb` (cells "LSTM: step forward" and "LSTM: forward"), as distributed with
the assignment; copied from the copy at github.com/AKSoo/CS231n-2017,
assignment3/LSTM_Captioning.ipynb (commit 1cf6afb9ce19229e2a57b9e7ae3f8faba558fd78). The same
numbers appear in many other copies of that notebook. They are printed to 8 decimals, so they
are matched to 1e-8 (absolute); CS231n's own check is a relative error around 1e-8.
"""
import importlib.util
import os

import pytest
import torch

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "solutions", "torch", "lstm_layers.py")
_spec = importlib.util.spec_from_file_location("solutions_lstm_layers", _PATH)  # by path: never assignment/'s stub
lstm_layers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lstm_layers)

F64 = torch.float64


def linspace(lo, hi, *shape):
    n = 1
    for s in shape:
        n *= s
    return torch.linspace(lo, hi, n, dtype=F64).reshape(*shape)


EXPECTED_NEXT_H = [
    [0.24635157, 0.28610883, 0.32240467, 0.35525807, 0.38474904],
    [0.49223563, 0.55611431, 0.61507696, 0.66844003, 0.7159181],
    [0.56735664, 0.66310127, 0.74419266, 0.80889665, 0.858299]]
EXPECTED_NEXT_C = [
    [0.32986176, 0.39145139, 0.451556, 0.51014116, 0.56717407],
    [0.66382255, 0.76674007, 0.87195994, 0.97902709, 1.08751345],
    [0.74192008, 0.90592151, 1.07717006, 1.25120233, 1.42395676]]
EXPECTED_H = [
    [[0.01764008, 0.01823233, 0.01882671, 0.0194232],
     [0.11287491, 0.12146228, 0.13018446, 0.13902939],
     [0.31358768, 0.33338627, 0.35304453, 0.37250975]],
    [[0.45767879, 0.4761092, 0.4936887, 0.51041945],
     [0.6704845, 0.69350089, 0.71486014, 0.7346449],
     [0.81733511, 0.83677871, 0.85403753, 0.86935314]]]


def assert_published(got, expected):
    expected = torch.tensor(expected, dtype=F64)
    assert got.dtype == F64 and got.shape == expected.shape
    err = float((got - expected).abs().max())
    assert err <= 1e-8, "largest difference from the published values: %.3g" % err


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lstm_step_forward_published(dtype):
    N, D, H = 3, 4, 5
    x = linspace(-0.4, 1.2, N, D)
    prev_h = linspace(-0.3, 0.7, N, H)
    prev_c = linspace(-0.4, 0.9, N, H)
    Wx = linspace(-2.1, 1.3, D, 4 * H)
    Wh = linspace(-0.7, 2.2, H, 4 * H)
    b = linspace(0.3, 0.7, 4 * H)
    args = [t.to(dtype) for t in (x, prev_h, prev_c, Wx, Wh, b)]
    next_h, next_c, _ = lstm_layers.lstm_step_forward(*args)
    if dtype == F64:
        assert_published(next_h, EXPECTED_NEXT_H)
        assert_published(next_c, EXPECTED_NEXT_C)
    else:  # float32 only to its precision
        assert next_h.dtype == dtype
        assert torch.allclose(next_h.double(), torch.tensor(EXPECTED_NEXT_H, dtype=F64), atol=1e-5)
        assert torch.allclose(next_c.double(), torch.tensor(EXPECTED_NEXT_C, dtype=F64), atol=1e-5)


def test_lstm_forward_published():
    N, D, H, T = 2, 5, 4, 3
    x = linspace(-0.4, 0.6, N, T, D)
    h0 = linspace(-0.4, 0.8, N, H)
    Wx = linspace(-0.2, 0.9, D, 4 * H)
    Wh = linspace(-0.3, 0.6, H, 4 * H)
    b = linspace(0.2, 0.7, 4 * H)
    h, _ = lstm_layers.lstm_forward(x, h0, Wx, Wh, b)
    assert_published(h, EXPECTED_H)
