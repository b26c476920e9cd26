"""The data format between the grader and the sandboxed worker.

A message is a JSON header plus raw little-endian tensor bytes. Loading one parses JSON and
copies bytes into fresh tensors of a whitelisted dtype: nothing in it can run code (unlike
pickle or torch.load), whatever a hostile worker writes.

Frame layout on the pipe: 8-byte big-endian header length, 8-byte payload length, the JSON
header (UTF-8), the payload. Inside the header, a value is one of:

    {"t": "tensor", "dtype": "float64", "shape": [2, 3], "device": "cpu",
     "requires_grad": false, "off": 0, "len": 48}
    {"t": "tuple"|"list", "items": [...]}      {"t": "dict", "items": {"key": ...}}
    {"t": "int", "v": 3}  {"t": "float", "v": "0.5"}  {"t": "bool", "v": true}
    {"t": "str", "v": "..."}  {"t": "none"}
    {"t": "other", "type": "numpy.ndarray", "repr": "array(...)"}   (anything else)

This file is also sent to the worker as source text, so it imports nothing from the package.
"""
import json
import math
import struct

import torch

DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "int64": torch.int64,
    "int32": torch.int32,
    "int16": torch.int16,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "bool": torch.bool,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}

MAX_HEADER = 4 << 20  # bytes of JSON
MAX_PAYLOAD = 32 << 20  # bytes of tensor data (the grader's memory matters more than huge answers)
MAX_DEPTH = 8
MAX_ITEMS = 4096
MAX_STR = 2000


class WireError(ValueError):
    """A message that does not follow the format (reported, never executed)."""


class Received:
    """A tensor as the worker returned it: data on the CPU plus what it claimed to be."""

    __slots__ = ("data", "device", "requires_grad")

    def __init__(self, data, device, requires_grad):
        self.data = data
        self.device = device
        self.requires_grad = requires_grad

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def shape(self):
        return tuple(self.data.shape)

    def __repr__(self):
        return "Received(%s, shape=%s, device=%s)" % (self.dtype, self.shape, self.device)


class Other:
    """A returned object of a type the format does not carry (its type name and a repr)."""

    __slots__ = ("type", "repr")

    def __init__(self, type_, repr_):
        self.type = type_
        self.repr = repr_

    def __repr__(self):
        return "Other(%s)" % self.type


def _safe_repr(obj):
    try:
        text = repr(obj)
    except BaseException:  # a hostile __repr__ must not break the encoder
        text = "<unrepresentable>"
    if not isinstance(text, str):
        text = "<unrepresentable>"
    return text[:200]


def encode(obj):
    """Serialize `obj` into (header_bytes, payload_bytes)."""
    chunks = []
    size = [0]

    def enc(x, depth):
        if depth > MAX_DEPTH:
            return {"t": "other", "type": "nested too deep", "repr": ""}
        t = type(x)  # exact types only: subclasses are reported as "other"
        if t is torch.Tensor:
            name = DTYPE_NAMES.get(x.dtype)
            if name is None or x.is_sparse or x.layout != torch.strided:
                return {"t": "other", "type": "torch.Tensor(%s, %s)" % (x.dtype, x.layout), "repr": ""}
            data = x.detach().to("cpu").resolve_conj().resolve_neg().contiguous()
            if data.dtype == torch.bfloat16:
                raw = data.view(torch.int16).numpy().tobytes()
            else:
                raw = data.numpy().tobytes()
            node = {"t": "tensor", "dtype": name, "shape": list(data.shape), "device": str(x.device),
                    "requires_grad": bool(x.requires_grad), "off": size[0], "len": len(raw)}
            chunks.append(raw)
            size[0] += len(raw)
            return node
        if t is tuple or t is list:
            items = list(x)[:MAX_ITEMS]
            return {"t": t.__name__, "items": [enc(v, depth + 1) for v in items]}
        if t is dict:
            items = {}
            for k in list(x)[:MAX_ITEMS]:
                if type(k) is not str:
                    return {"t": "other", "type": "dict with non-str keys", "repr": _safe_repr(x)}
                items[k] = enc(x[k], depth + 1)
            return {"t": "dict", "items": items}
        if t is bool:
            return {"t": "bool", "v": x}
        if t is int:
            return {"t": "int", "v": str(x)}
        if t is float:
            return {"t": "float", "v": repr(x)}
        if t is str:
            return {"t": "str", "v": x[:MAX_STR]}
        if x is None:
            return {"t": "none"}
        return {"t": "other", "type": "%s.%s" % (t.__module__, t.__qualname__), "repr": _safe_repr(x)}

    header = json.dumps(enc(obj, 0)).encode("utf-8")
    return header, b"".join(chunks)


def frame(obj):
    """Encode `obj` as one frame of bytes."""
    header, payload = encode(obj)
    return struct.pack(">QQ", len(header), len(payload)) + header + payload


def decode(header, payload, make_tensor=None):
    """Rebuild a value from (header_bytes, payload_bytes).

    make_tensor(data, device, requires_grad) turns each CPU tensor into what the caller wants;
    by default a `Received` record (the grader's side: nothing is moved to a device).
    """
    if make_tensor is None:
        make_tensor = Received
    try:
        tree = json.loads(header.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise WireError("header is not JSON: %s" % e)

    def dec(node, depth):
        if depth > MAX_DEPTH or type(node) is not dict:
            raise WireError("malformed node")
        t = node.get("t")
        if t == "tensor":
            dtype = DTYPES.get(node.get("dtype"))
            shape = node.get("shape")
            off, length = node.get("off"), node.get("len")
            if dtype is None or type(shape) is not list or not all(type(s) is int and s >= 0 for s in shape):
                raise WireError("bad tensor header")
            if type(off) is not int or type(length) is not int or off < 0 or off + length > len(payload):
                raise WireError("tensor bytes out of range")
            numel = math.prod(shape)
            itemsize = torch.empty((), dtype=dtype).element_size()
            if numel * itemsize != length:
                raise WireError("tensor size does not match its shape")
            buf = bytearray(payload[off:off + length])
            if dtype == torch.bfloat16:
                flat = torch.frombuffer(buf, dtype=torch.int16).view(torch.bfloat16) if length else torch.empty(0, dtype=dtype)
            else:
                flat = torch.frombuffer(buf, dtype=dtype) if length else torch.empty(0, dtype=dtype)
            return make_tensor(flat.reshape(shape), str(node.get("device", "cpu"))[:40],
                               bool(node.get("requires_grad", False)))
        if t in ("tuple", "list"):
            items = node.get("items")
            if type(items) is not list or len(items) > MAX_ITEMS:
                raise WireError("bad sequence")
            vals = [dec(v, depth + 1) for v in items]
            return tuple(vals) if t == "tuple" else vals
        if t == "dict":
            items = node.get("items")
            if type(items) is not dict or len(items) > MAX_ITEMS:
                raise WireError("bad dict")
            return {str(k): dec(v, depth + 1) for k, v in items.items()}
        if t == "int":
            try:
                return int(str(node.get("v"))[:400])
            except ValueError:
                raise WireError("bad int")
        if t == "float":
            try:
                return float(str(node.get("v"))[:64])
            except ValueError:
                raise WireError("bad float")
        if t == "bool":
            return bool(node.get("v"))
        if t == "str":
            return str(node.get("v"))[:MAX_STR]
        if t == "none":
            return None
        if t == "other":
            return Other(str(node.get("type"))[:200], str(node.get("repr"))[:200])
        raise WireError("unknown node type %r" % (t,))

    return dec(tree, 0)


def read_exact(fd, n, read):
    """Read exactly n bytes with read(fd, k); raise EOFError when the stream ends first."""
    parts = []
    while n:
        chunk = read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("stream closed")
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def read_frame(fd, read):
    """Read one frame from fd; returns (header_bytes, payload_bytes)."""
    hlen, plen = struct.unpack(">QQ", read_exact(fd, 16, read))
    if hlen > MAX_HEADER or plen > MAX_PAYLOAD:
        raise WireError("frame too large (%d header bytes, %d payload bytes)" % (hlen, plen))
    return read_exact(fd, hlen, read), read_exact(fd, plen, read)
