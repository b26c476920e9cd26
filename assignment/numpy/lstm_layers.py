"""Long short-term memory (LSTM) layers: one step and a whole sequence, forward and backward.

Everything here is written with plain NumPy array operations and hand-written backward passes:
no torch operator, and no autograd by any library (JAX, autograd, ...): the grader gives a function
that uses either 0 points.

Conventions (see the handout):
- N batch size, T sequence length, D input size, H hidden size.
- Batch first: x has shape (N, T, D); weights multiply from the right: x @ Wx.
- The four gates are stacked along the 4H axis in the lecture's order i, f, o, g:
      a = x @ Wx + prev_h @ Wh + b                      (N, 4H)
      i = sigmoid(a[:, 0:H])      input gate: whether to write to the cell
      f = sigmoid(a[:, H:2H])     forget gate: whether to erase the cell
      o = sigmoid(a[:, 2H:3H])    output gate: how much of the cell to reveal
      g = tanh(a[:, 3H:4H])       gate gate: what to write to the cell
      next_c = f * prev_c + i * g
      next_h = o * tanh(next_c)
  (torch.nn.LSTM orders its gates i, f, g, o: do not copy its layout.) There is one bias b.
  NumPy has no sigmoid: use the function `sigmoid` below, which stays exact and warning-free
  for large pre-activations (np.exp of a large positive number would overflow).
- Every function works for float32 and float64 and returns arrays of the input's dtype
  (float32 in, float32 out): create new arrays with `dtype=x.dtype` or `np.zeros_like`,
  since np.zeros and np.empty default to float64.
- Inputs are never modified in place.
- `cache` is whatever the forward pass hands to its backward pass.
"""
import numpy as np


def sigmoid(x):
    """Numerically stable logistic sigmoid 1 / (1 + exp(-x)), elementwise, of x's dtype.

    Only np.exp(-|x|), which lies in (0, 1], is ever computed: no overflow for any x.
    """
    e = np.exp(-np.abs(x))  # in (0, 1]
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b):
    """One time step of an LSTM.

    Inputs:
    - x: Input data for this time step, of shape (N, D).
    - prev_h: Hidden state from the previous time step, of shape (N, H).
    - prev_c: Cell state from the previous time step, of shape (N, H).
    - Wx: Input-to-hidden weights of the four gates (i, f, o, g), of shape (D, 4H).
    - Wh: Hidden-to-hidden weights of the four gates, of shape (H, 4H).
    - b: Bias of the four gates, of shape (4H,).

    Returns a tuple of:
    - next_h: Next hidden state, of shape (N, H).
    - next_c: Next cell state, of shape (N, H).
    - cache: Values needed by lstm_step_backward.
    """
    raise NotImplementedError("lstm_step_forward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return next_h, next_c, cache


def lstm_step_backward(dnext_h, dnext_c, cache):
    """Backward pass for one time step of an LSTM.

    Inputs:
    - dnext_h: Gradient of the loss with respect to next_h, of shape (N, H).
    - dnext_c: Gradient of the loss with respect to next_c, of shape (N, H). It is the gradient
      that reaches next_c directly (from the next time step); next_c also influences the loss
      through next_h = o * tanh(next_c), and both parts add up.
    - cache: Cache object from lstm_step_forward.

    Returns a tuple of:
    - dx: Gradient of the input data, of shape (N, D).
    - dprev_h: Gradient of the previous hidden state, of shape (N, H).
    - dprev_c: Gradient of the previous cell state, of shape (N, H).
    - dWx: Gradient of the input-to-hidden weights, of shape (D, 4H).
    - dWh: Gradient of the hidden-to-hidden weights, of shape (H, 4H).
    - db: Gradient of the bias, of shape (4H,).

    Hint: d sigmoid(a) / da = s * (1 - s) with s = sigmoid(a); d tanh(a) / da = 1 - tanh(a)^2.
    """
    raise NotImplementedError("lstm_step_backward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return dx, dprev_h, dprev_c, dWx, dWh, db


def lstm_forward(x, h0, Wx, Wh, b):
    """Run an LSTM forward over a whole sequence.

    The LSTM reads x[:, 0], ..., x[:, T-1] in order, starting from the hidden state h0 and a
    cell state of zeros (the initial cell state is not an input); h[:, t] is the hidden state
    after reading x[:, t]. Loop over time only: every step works on the whole batch at once.

    Inputs:
    - x: Input data for the entire sequence, of shape (N, T, D).
    - h0: Initial hidden state, of shape (N, H).
    - Wx: Input-to-hidden weights, of shape (D, 4H).
    - Wh: Hidden-to-hidden weights, of shape (H, 4H).
    - b: Bias, of shape (4H,).

    Returns a tuple of:
    - h: Hidden states for the entire sequence, of shape (N, T, H).
    - cache: Values needed by lstm_backward.
    """
    raise NotImplementedError("lstm_forward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return h, cache


def lstm_backward(dh, cache):
    """Backward pass of an LSTM over a whole sequence (backpropagation through time).

    Inputs:
    - dh: Upstream gradients of all hidden states, of shape (N, T, H). dh[:, t] is the gradient
      that reaches h[:, t] from the layers above, NOT including what flows back from step t+1:
      your loop carries both the hidden-state and the cell-state gradients from step t+1 back
      to step t.
    - cache: Cache object from lstm_forward.

    Returns a tuple of:
    - dx: Gradient of the inputs, of shape (N, T, D).
    - dh0: Gradient of the initial hidden state, of shape (N, H).
    - dWx: Gradient of the input-to-hidden weights, of shape (D, 4H).
    - dWh: Gradient of the hidden-to-hidden weights, of shape (H, 4H).
    - db: Gradient of the bias, of shape (4H,).
    """
    raise NotImplementedError("lstm_backward: not implemented yet")
    # Your code replaces the line above and ends with:
    # return dx, dh0, dWx, dWh, db
