"""The data format between the grader and the sandboxed worker.

A message is a JSON header plus raw little-endian tensor bytes. Loading one parses JSON and
copies bytes into fresh tensors of a whitelisted dtype: nothing in it can run code (unlike
pickle or torch.load), whatever a hostile worker writes.

Frame layout on the pipe: 8-byte big-endian header length, 8-byte payload length, the JSON
header (UTF-8), the payload. Inside the header, a value is one of:

    {"t": "tensor", "dtype": "float64", "shape": [2, 3], "device": "cpu",
     "requires_grad": false, "off": 0, "len": 48}
        (a NumPy array the worker sends back carries "array": "ndarray", a NumPy scalar "array":
         "scalar" with shape []: the NumPy track's answers, decoded into a Received that says so)
    {"t": "tuple"|"list", "items": [...]}      {"t": "dict", "items": {"key": ...}}
    {"t": "int", "v": "3"}  {"t": "float", "v": "0.5"}  {"t": "bool", "v": true}
    {"t": "str", "v": "..."}  {"t": "none"}
    {"t": "other", "type": "numpy.ndarray", "repr": "array(...)"}   (anything else)

The tensors' bytes lie in the payload one after another, in the order their entries come in the
header (depth first, items and keys in order), with no gap and no overlap: the first has off 0,
each next one starts where the one before ended, and the last ends where the payload ends. So
decoding never copies more bytes than the frame carried.

Limits, all checked by the decoder (a frame over any of them is a WireError, never a crash):
MAX_HEADER and MAX_PAYLOAD bytes (checked before reading); brackets nested at most
MAX_JSON_DEPTH deep and at most MAX_JSON_VALUES values, both counted on the raw header before it
is parsed; values nested at most MAX_DEPTH deep, MAX_NODES of them in all and MAX_ITEMS in one
container; tensors of at most MAX_DIMS dimensions. The encoder keeps to the same limits: what it
cannot carry becomes a shorter container or an "other" value, so the only frames of its own that
are refused are those over MAX_HEADER or MAX_PAYLOAD bytes ("too large").

This file is also sent to the worker as source text, so it imports nothing from the package.
"""
import itertools
import json
import math
import re
import struct

import numpy
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
MAX_DEPTH = 8  # values inside values (the root is at depth 0)
MAX_ITEMS = 4096  # items of one tuple, list or dict
MAX_NODES = 8192  # values in one frame, all depths together (the kit's own frames hold hundreds)
MAX_DIMS = 16  # dimensions of one tensor
MAX_DIM_SIZE = (1 << 63) - 1  # one dimension (torch's sizes are int64)
MAX_STR = 2000
# Counted on the raw header, before json.loads (which recurses once per bracket and allocates an
# object per JSON value) runs. A value at depth d opens brackets at depth 2d + 1 and 2d + 2 (its
# shape or its items). A value is at most MAX_DIMS + 19 strings, commas and opening brackets (a
# tensor in a dict: 11 strings, 6 commas and its shape's, 2 brackets), so the encoder's frames
# always pass, and json.loads allocates at most ~30 MB for any header (measured: 143k dict keys).
MAX_JSON_DEPTH = 2 * MAX_DEPTH + 2
MAX_JSON_VALUES = (MAX_DIMS + 19) * MAX_NODES


class WireError(ValueError):
    """A message that does not follow the format (reported, never executed)."""


# What encode and frame call, bound when this file is loaded: in the worker, before any student file is imported,
# so that a student's numpy.asarray = f (or json.dumps, struct.pack) is not called on the answer being sent.
_asarray, _contiguous, _dumps, _pack = numpy.asarray, numpy.ascontiguousarray, json.dumps, struct.pack

ARRAY_KINDS = ("ndarray", "scalar")  # what a NumPy value was: an array, or a scalar (numpy.float32(...))
# NumPy's scalar types the format carries (exact types, as everywhere here), by their dtype's name
NUMPY_SCALARS = {numpy.dtype(name).type: name for name in DTYPES if name != "bfloat16"}


class Received:
    """A tensor as the worker returned it: data on the CPU plus what it claimed to be. `array` says
    that it came as a NumPy value ("ndarray" or "scalar"; None: a torch.Tensor)."""

    __slots__ = ("data", "device", "requires_grad", "array")

    def __init__(self, data, device, requires_grad, array=None):
        self.data = data
        self.device = device
        self.requires_grad = requires_grad
        self.array = array

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


def _type_name(t):
    """module.qualname of a type, read without running any code of its own (a metaclass's properties)."""
    try:
        module, name = type.__dict__["__module__"].__get__(t), type.__dict__["__qualname__"].__get__(t)
    except BaseException:
        return "<a type>"
    return "%s.%s" % (module if type(module) is str else "?", name if type(name) is str else "?")


def encode(obj):
    """Serialize `obj` into (header_bytes, payload_bytes), within the decoder's limits.

    Tensors' bytes are appended to the payload in the order their entries are written (depth
    first), so each entry's off is the total length of the tensors before it.
    """
    chunks = []
    size = 0  # payload bytes so far: the next tensor's off
    nodes = 0

    def enc(x, depth):
        nonlocal size, nodes
        nodes += 1
        t = type(x)  # exact types only: subclasses are reported as "other"
        if t in (tuple, list, dict) and depth >= MAX_DEPTH:
            return {"t": "other", "type": "nested too deep", "repr": ""}
        if t is torch.Tensor:
            name = DTYPE_NAMES.get(x.dtype)
            if name is None or x.is_sparse or x.layout != torch.strided or x.dim() > MAX_DIMS:
                return {"t": "other", "type": "torch.Tensor(%s, %s, %d dims)" % (x.dtype, x.layout, x.dim()),
                        "repr": ""}
            data = x.detach().to("cpu").resolve_conj().resolve_neg().contiguous()
            if data.dtype == torch.bfloat16:
                raw = data.view(torch.int16).numpy().tobytes()
            else:
                raw = data.numpy().tobytes()
            node = {"t": "tensor", "dtype": name, "shape": list(data.shape), "device": str(x.device),
                    "requires_grad": bool(x.requires_grad), "off": size, "len": len(raw)}
            chunks.append(raw)
            size += len(raw)
            return node
        if t is numpy.ndarray or t in NUMPY_SCALARS:
            arr = _asarray(x)
            name = arr.dtype.name
            if name not in DTYPES or arr.ndim > MAX_DIMS or arr.dtype.byteorder == ">":
                return {"t": "other", "type": "numpy.ndarray(%s, %d dims)" % (
                    (arr.dtype.name + (" big-endian" if arr.dtype.byteorder == ">" else ""))[:40], arr.ndim)
                        if t is numpy.ndarray else "numpy.%s" % t.__name__, "repr": ""}
            raw = _contiguous(arr).tobytes()
            node = {"t": "tensor", "dtype": name, "shape": list(arr.shape), "device": "cpu", "requires_grad": False,
                    "off": size, "len": len(raw), "array": "ndarray" if t is numpy.ndarray else "scalar"}
            chunks.append(raw)
            size += len(raw)
            return node
        if t is tuple or t is list:
            items = []
            for v in list(x)[:MAX_ITEMS]:
                if nodes >= MAX_NODES:  # the rest is dropped, as items past MAX_ITEMS are
                    break
                items.append(enc(v, depth + 1))
            return {"t": t.__name__, "items": items}
        if t is dict:
            keys = list(x)[:MAX_ITEMS]
            if any(type(k) is not str for k in keys):  # checked before any value adds payload bytes
                return {"t": "other", "type": "dict with non-str keys", "repr": ""}
            items = {}
            for k in keys:
                if nodes >= MAX_NODES:
                    break
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
        return {"t": "other", "type": _type_name(t), "repr": ""}  # no repr: it would run the student's code

    header = _dumps(enc(obj, 0)).encode("utf-8")
    return header, b"".join(chunks)


def frame(obj):
    """Encode `obj` as one frame of bytes."""
    header, payload = encode(obj)
    return _pack(">QQ", len(header), len(payload)) + header + payload


_STRING = re.compile(rb'"[^"]*"')  # once escapes are gone, a string holds no quote
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def _check_json_size(header):
    """Refuse a header with more than MAX_JSON_VALUES values or brackets nested deeper than
    MAX_JSON_DEPTH, before json.loads (which recurses once per bracket and allocates an object
    per value) sees it.

    Only what lies outside strings counts: escape pairs are dropped first, so that every quote
    left opens or closes a string. Linear time in C loops, memory a few copies of the header.
    A text that is not JSON may be counted wrongly here; json.loads refuses it next.
    """
    text = header.replace(b"\\\\", b"").replace(b'\\"', b"")
    values = text.count(b'"') // 2  # strings (counted first: they bound the pieces sub() makes)
    if values <= MAX_JSON_VALUES:
        outside = _STRING.sub(b"", text)
        values += outside.count(b",") + outside.count(b"[") + outside.count(b"{")
    if values > MAX_JSON_VALUES:
        raise WireError("the header holds more than %d values" % MAX_JSON_VALUES)
    brackets = outside.translate(None, _NOT_BRACKETS)
    depth = max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)  # running count of open ones
    if depth > MAX_JSON_DEPTH:
        raise WireError("the header is nested %d brackets deep (at most %d)" % (depth, MAX_JSON_DEPTH))


_SURROGATE = re.compile("[\ud800-\udfff]")


def _clean(text):
    """text as valid Unicode: JSON's escapes can carry lone surrogates ("\\ud800"), which no UTF-8 writer
    (a results.json, the terminal, a class summary) accepts; each becomes U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)  # json.loads joins the valid pairs: what is left is alone


def _text(node, key, limit):
    """node[key], a string, cut to `limit` characters, as valid Unicode (_clean)."""
    value = node.get(key)
    if type(value) is not str:
        raise WireError("%r of a %r value is not a string" % (key, node.get("t")))
    return _clean(value[:limit])


def decode(header, payload, make_tensor=None):
    """Rebuild a value from (header_bytes, payload_bytes), or raise WireError.

    make_tensor(data, device, requires_grad) turns each CPU tensor into what the caller wants;
    by default a `Received` record (the grader's side: nothing is moved to a device).

    Whatever the frame holds, the tensors decoded from it hold at most len(payload) bytes in
    all (each entry must start where the one before ended), and every limit in the module
    docstring is checked: the frame plus what decoding it allocates stays under about
    2 * MAX_PAYLOAD + 30 MB, and anything malformed raises WireError, never another exception.
    """
    if make_tensor is None:
        make_tensor = Received
    _check_json_size(header)
    try:
        tree = json.loads(header.decode("utf-8"))
    except Exception as e:  # ValueError, or RecursionError / MemoryError should the checks above miss one
        raise WireError("the header is not JSON (%s: %s)" % (type(e).__name__, e))
    nodes = 0
    used = 0  # payload bytes taken by the tensors decoded so far: the next tensor's off

    def dec(node, depth):
        nonlocal nodes, used
        nodes += 1
        if nodes > MAX_NODES:
            raise WireError("more than %d values in one frame" % MAX_NODES)
        if depth > MAX_DEPTH or type(node) is not dict:
            raise WireError("malformed node")
        t = node.get("t")
        if t == "tensor":
            name, shape = node.get("dtype"), node.get("shape")
            dtype = DTYPES.get(name) if type(name) is str else None
            if (dtype is None or type(shape) is not list or len(shape) > MAX_DIMS
                    or not all(type(s) is int and 0 <= s <= MAX_DIM_SIZE for s in shape)):
                raise WireError("bad tensor header")
            off, length = node.get("off"), node.get("len")
            if type(off) is not int or type(length) is not int:
                raise WireError("bad tensor offset or length")
            if off != used:
                raise WireError("a tensor's bytes start at offset %d, not %d where the one before ended "
                                "(tensors must follow each other, without gap or overlap)" % (off, used))
            if not 0 <= length <= len(payload) - off:
                raise WireError("tensor bytes out of range")
            if math.prod(shape) * torch.empty((), dtype=dtype).element_size() != length:
                raise WireError("tensor size does not match its shape")
            buf = bytearray(memoryview(payload)[off:off + length])  # one copy, of bytes no other entry uses
            used += length
            if dtype == torch.bfloat16:
                flat = torch.frombuffer(buf, dtype=torch.int16).view(torch.bfloat16) if length else torch.empty(0, dtype=dtype)
            else:
                flat = torch.frombuffer(buf, dtype=dtype) if length else torch.empty(0, dtype=dtype)
            value = make_tensor(flat.reshape(shape), _text(node, "device", 40), bool(node.get("requires_grad", False)))
            array = node.get("array")
            if array is not None:
                if array not in ARRAY_KINDS or array == "scalar" and shape:
                    raise WireError("bad array kind")
                if isinstance(value, Received):
                    value.array = array
            return value
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
            return {_clean(k[:MAX_STR]): dec(v, depth + 1) for k, v in items.items()}
        if t == "int":
            try:
                return int(_text(node, "v", 400))
            except ValueError:
                raise WireError("bad int")
        if t == "float":
            try:
                return float(_text(node, "v", 64))
            except ValueError:
                raise WireError("bad float")
        if t == "bool":
            return bool(node.get("v"))
        if t == "str":
            return _text(node, "v", MAX_STR)
        if t == "none":
            return None
        if t == "other":
            return Other(_text(node, "type", 200), _text(node, "repr", 200))
        raise WireError("unknown node type %r" % (str(t)[:40],))

    try:
        value = dec(tree, 0)
    except WireError:
        raise
    except Exception as e:  # TypeError, OverflowError, MemoryError, ...: the frame is malformed all the same
        raise WireError("%s while decoding: %s" % (type(e).__name__, e))
    if used != len(payload):
        raise WireError("%d payload bytes belong to no tensor" % (len(payload) - used))
    return value


def read_exact(fd, n, read):
    """Read exactly n bytes with read(fd, k); raise EOFError when the stream ends first.

    The bytes go straight into one bytearray of n bytes, returned as is: the grader holds a
    payload once, not as chunks plus their join.
    """
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        chunk = read(fd, min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("stream closed")
        view[got:got + len(chunk)] = chunk
        got += len(chunk)
    view.release()
    return buf


def read_frame(fd, read):
    """Read one frame from fd; returns (header, payload), two bytearrays."""
    hlen, plen = struct.unpack(">QQ", read_exact(fd, 16, read))
    if hlen > MAX_HEADER or plen > MAX_PAYLOAD:
        raise WireError("frame too large (%d header bytes, %d payload bytes)" % (hlen, plen))
    return read_exact(fd, hlen, read), read_exact(fd, plen, read)
