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
    # BEGIN SOLUTION
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b  # (N, 4H) activations of all four gates
    i = sigmoid(a[:, 0:H])  # (N, H) input gate
    f = sigmoid(a[:, H:2 * H])  # (N, H) forget gate
    o = sigmoid(a[:, 2 * H:3 * H])  # (N, H) output gate
    g = np.tanh(a[:, 3 * H:4 * H])  # (N, H) gate gate (candidate cell values)
    next_c = f * prev_c + i * g  # (N, H)
    tanh_c = np.tanh(next_c)  # (N, H)
    next_h = o * tanh_c  # (N, H)
    cache = (x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c)
    # END SOLUTION
    return next_h, next_c, cache


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
    # BEGIN SOLUTION
    x, prev_h, prev_c, Wx, Wh, i, f, o, g, tanh_c = cache
    dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)  # (N, H) total gradient of next_c
    di = dc * g  # (N, H)
    df = dc * prev_c  # (N, H)
    do = dnext_h * tanh_c  # (N, H)
    dg = dc * i  # (N, H)
    dprev_c = dc * f  # (N, H)
    da = np.concatenate([di * i * (1 - i),  # through the sigmoids and the tanh, in gate order i, f, o, g
                         df * f * (1 - f),
                         do * o * (1 - o),
                         dg * (1 - g * g)], axis=1)  # (N, 4H)
    dx = da @ Wx.T  # (N, D)
    dprev_h = da @ Wh.T  # (N, H)
    dWx = x.T @ da  # (D, 4H)
    dWh = prev_h.T @ da  # (H, 4H)
    db = da.sum(axis=0)  # (4H,)
    # END SOLUTION
    return dx, dprev_h, dprev_c, dWx, dWh, db


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
    # BEGIN SOLUTION
    N, T, _ = x.shape
    H = h0.shape[1]
    h = np.empty((N, T, H), dtype=x.dtype)  # input's dtype
    caches = []
    prev_h = h0
    prev_c = np.zeros_like(h0)  # (N, H) the initial cell state is zero
    for t in range(T):
        prev_h, prev_c, step_cache = lstm_step_forward(x[:, t], prev_h, prev_c, Wx, Wh, b)  # (N, H) each
        h[:, t] = prev_h
        caches.append(step_cache)
    cache = caches
    # END SOLUTION
    return h, cache


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
    # BEGIN SOLUTION
    caches = cache
    N, T, H = dh.shape
    D = caches[0][0].shape[1]
    dx = np.empty((N, T, D), dtype=dh.dtype)
    dWx = np.zeros((D, 4 * H), dtype=dh.dtype)
    dWh = np.zeros((H, 4 * H), dtype=dh.dtype)
    db = np.zeros((4 * H,), dtype=dh.dtype)
    dprev_h = np.zeros((N, H), dtype=dh.dtype)  # hidden-state gradient flowing back from step t+1
    dprev_c = np.zeros((N, H), dtype=dh.dtype)  # cell-state gradient flowing back from step t+1
    for t in reversed(range(T)):
        dnext_h = dh[:, t] + dprev_h  # a new array: dh itself is left untouched
        dx_t, dprev_h, dprev_c, dWx_t, dWh_t, db_t = lstm_step_backward(dnext_h, dprev_c, caches[t])
        dx[:, t] = dx_t
        dWx = dWx + dWx_t
        dWh = dWh + dWh_t
        db = db + db_t
    dh0 = dprev_h  # the gradient of c0 is dropped: c0 is a constant zero
    # END SOLUTION
    return dx, dh0, dWx, dWh, db
