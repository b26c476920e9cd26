"""Which torch operators do a graded function's work for it, by meaning (API.md, "Conventions").

The worker watches the operators that actually run during every student call (a
`TorchFunctionMode`, worker.py `_Observer`) and compares their ATen names with the calling
function's deny-list, whatever Python name reached them: `torch.nn.LSTM`, `torch.lstm`,
`torch._VF.lstm`, `torch.ops.aten.lstm.input` and `torch._C._VariableFunctions.lstm` all run the
operator `lstm`. Each registry entry (spec.GradedFunction.forbidden_ops) holds its deny-list; the
groups below are what it is built from. Names map to the words a student reads:
"lstm_forward uses torch's built-in LSTM (aten::lstm), which this assignment does not allow".

Autograd is caught separately (the worker's guards on the engine, plus any operator that returns a
tensor requiring grad).
"""

# Student-allowed building blocks, stated so that no deny-list ever grows into them.
ALLOWED = ("softmax", "_softmax", "logsumexp", "tanh", "sigmoid", "exp", "log", "matmul", "mm", "bmm",
           "einsum", "index", "index_select", "index_add", "index_add_", "gather", "scatter_add",
           "__getitem__", "__setitem__", "norm", "linalg_vector_norm", "sqrt", "sum", "max", "amax",
           "argmax", "where", "masked_fill", "cat", "stack", "zeros", "zeros_like", "one_hot")


def _group(words, names):
    return {name: "%s (aten::%s)" % (words, name) for name in names}


RNN = {}
RNN.update(_group("torch's built-in RNN", (
    "rnn_tanh", "rnn_relu", "rnn_tanh_cell", "rnn_relu_cell", "quantized_rnn_tanh_cell",
    "quantized_rnn_relu_cell", "_cudnn_rnn", "_cudnn_rnn_backward", "_cudnn_rnn_flatten_weight",
    "miopen_rnn", "miopen_rnn_backward", "mkldnn_rnn_layer", "mkldnn_rnn_layer_backward",
    "_thnn_differentiable_lstm_cell_backward", "_thnn_differentiable_gru_cell_backward")))
RNN.update(_group("torch's built-in LSTM", (
    "lstm", "lstm_cell", "_thnn_fused_lstm_cell", "_thnn_fused_lstm_cell_backward",
    "_thnn_fused_lstm_cell_backward_impl", "quantized_lstm_cell", "_use_cudnn_rnn_flatten_weight",
    "lstm_mps_backward")))
RNN.update(_group("torch's built-in GRU", (
    "gru", "gru_cell", "_thnn_fused_gru_cell", "_thnn_fused_gru_cell_backward", "quantized_gru_cell")))

EMBEDDING = _group("torch's built-in embedding", (
    "embedding", "embedding_backward", "embedding_dense_backward", "embedding_sparse_backward",
    "_embedding_bag", "_embedding_bag_forward_only", "embedding_bag", "_embedding_bag_backward",
    "_embedding_bag_dense_backward", "_embedding_bag_sparse_backward", "embedding_renorm_"))

LOSS = _group("torch's built-in cross-entropy / NLL loss", (
    "cross_entropy", "cross_entropy_loss", "nll_loss", "nll_loss2d", "nll_loss_nd", "nll_loss_forward",
    "nll_loss_backward", "nll_loss2d_forward", "nll_loss2d_backward"))

# Only where a loss is graded: log-softmax is half of the loss (logsumexp stays allowed).
LOG_SOFTMAX = _group("torch's built-in log-softmax", (
    "log_softmax", "_log_softmax", "_log_softmax_backward_data", "special_log_softmax"))

ATTENTION = _group("torch's built-in attention", (
    "scaled_dot_product_attention", "_scaled_dot_product_attention_math",
    "_scaled_dot_product_attention_math_for_mps", "_fused_sdp_choice",
    "_scaled_dot_product_flash_attention", "_scaled_dot_product_flash_attention_backward",
    "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention_for_cpu_backward",
    "_scaled_dot_product_efficient_attention", "_scaled_dot_product_efficient_attention_backward",
    "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_cudnn_attention_backward",
    "_scaled_dot_product_fused_attention_overrideable",
    "_scaled_dot_product_fused_attention_overrideable_backward",
    "_flash_attention_forward", "_flash_attention_backward", "_efficient_attention_forward",
    "_efficient_attention_backward", "_cudnn_attention_forward", "_native_multi_head_attention",
    "multi_head_attention_forward", "_masked_softmax", "_masked_softmax_backward",
    "_transformer_encoder_layer_fwd"))

CLIPPING = _group("torch's built-in gradient clipping", (
    "clip_grad_norm_", "clip_grads_with_norm_", "get_total_norm", "_foreach_norm"))

# What no graded function may use: API.md forbids these library layers in every file.
LAYERS = {}
for _g in (RNN, EMBEDDING, LOSS, ATTENTION, CLIPPING):
    LAYERS.update(_g)
# Where the loss itself is graded (temporal_softmax_loss, and the TBPTT functions built on it).
LAYERS_AND_LOG_SOFTMAX = dict(LAYERS, **LOG_SOFTMAX)

assert not set(LAYERS_AND_LOG_SOFTMAX) & set(ALLOWED)
