"""A validator of Gradescope's results.json, after its specification:
https://gradescope-autograders.readthedocs.io/en/latest/specs/ ("Output format").

`problems(doc)` lists everything wrong with a parsed results.json (empty when valid);
`check(doc)` raises AssertionError listing them; `check_file(path)` checks a results.json file
(its size on disk included) and returns it parsed. Beyond the types and values of every field:
- keys the specification does not name are errors (a typo such as "visiblity" would otherwise
  be silently ignored by Gradescope);
- a top-level score, when given, must equal the sum of the tests' scores (to 1e-6): the kit
  never overrides its tests' total;
- the serialized document must stay under 1 MB, as Gradescope requires.
"""
import json
import math

VISIBILITY = ("hidden", "after_due_date", "after_published", "visible")
FORMATS = ("text", "html", "simple_format", "md", "ansi")
STATUS = ("passed", "failed")
MAX_BYTES = 1000 * 1000
SCORE_TOLERANCE = 1e-6


def _rule(ok, expected):
    ok.expected = expected  # the words of the error message
    return ok


def _one_of(values):
    return _rule(lambda v: isinstance(v, str) and v in values, "one of %s" % ", ".join(values))


NUMBER = _rule(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
               "a finite number")
STRING = _rule(lambda v: isinstance(v, str), "a string")
STRINGS = _rule(lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v), "a list of strings")
OBJECT = _rule(lambda v: isinstance(v, dict), "an object")
LIST = _rule(lambda v: isinstance(v, list), "a list")

TOP = {
    "score": NUMBER,
    "execution_time": NUMBER,  # seconds
    "output": STRING,
    "output_format": _one_of(FORMATS),
    "test_output_format": _one_of(FORMATS),
    "test_name_format": _one_of(FORMATS),
    "visibility": _one_of(VISIBILITY),
    "stdout_visibility": _one_of(VISIBILITY),
    "extra_data": OBJECT,
    "tests": LIST,
    "leaderboard": LIST,
}
TEST = {
    "score": NUMBER,
    "max_score": NUMBER,
    "status": _one_of(STATUS),
    "name": STRING,
    "name_format": _one_of(FORMATS),
    "number": _rule(lambda v: STRING(v) or NUMBER(v), 'a string such as "1.1" (or a number)'),
    "output": STRING,
    "output_format": _one_of(FORMATS),
    "tags": STRINGS,
    "visibility": _one_of(VISIBILITY),
    "extra_data": OBJECT,
}
LEADERBOARD = {
    "name": STRING,
    "value": _rule(lambda v: STRING(v) or NUMBER(v), "a number or a string"),
    "order": _one_of(("asc", "desc")),
}


def _fields(obj, fields, where, required=()):
    """Problems with one object's keys and field types."""
    if not isinstance(obj, dict):
        return ["%s must be an object, got %s" % (where, type(obj).__name__)]
    out = []
    for key in sorted(set(obj) - set(fields)):
        out.append("%s has an unknown key %r (allowed: %s)" % (where, key, ", ".join(fields)))
    for key in required:
        if key not in obj:
            out.append("%s lacks %r" % (where, key))
    for key, ok in fields.items():
        if key in obj and not ok(obj[key]):
            out.append("%s: %r must be %s, got %r" % (where, key, ok.expected, obj[key]))
    return out


def problems(doc):
    """Everything wrong with a parsed results.json, as messages (empty when it is valid)."""
    out = _fields(doc, TOP, "results.json")
    if not isinstance(doc, dict):
        return out
    tests = doc["tests"] if LIST(doc.get("tests")) else []
    board = doc["leaderboard"] if LIST(doc.get("leaderboard")) else []
    if "score" not in doc and "tests" not in doc:
        out.append("results.json needs a top-level 'score' or a 'tests' list")
    for i, test in enumerate(tests):
        named = isinstance(test, dict) and STRING(test.get("name"))
        where = "tests[%d]%s" % (i, " (%s)" % test["name"] if named else "")
        out += _fields(test, TEST, where, required=() if "score" in doc else ("score",))
    for i, entry in enumerate(board):
        out += _fields(entry, LEADERBOARD, "leaderboard[%d]" % i, required=("name", "value"))
    if NUMBER(doc.get("score")) and tests:
        total = sum(t["score"] for t in tests if isinstance(t, dict) and NUMBER(t.get("score")))
        if abs(total - doc["score"]) > SCORE_TOLERANCE:
            out.append("top-level score %r is not the sum of the tests' scores (%r)" % (doc["score"], total))
    try:
        size = len(json.dumps(doc, allow_nan=False).encode("utf-8"))
    except (TypeError, ValueError) as e:
        out.append("results.json is not serializable as strict JSON: %s" % e)
    else:
        if size >= MAX_BYTES:
            out.append("results.json is %d bytes: Gradescope needs it under 1 MB" % size)
    return out


def check(doc):
    """Raise AssertionError listing every problem of a parsed results.json."""
    found = problems(doc)
    assert not found, "invalid results.json:\n  " + "\n  ".join(found)


def check_file(path):
    """Check the results.json at `path` (strict JSON, under 1 MB on disk); return it parsed."""
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) < MAX_BYTES, "%s is %d bytes: Gradescope needs it under 1 MB" % (path, len(data))

    def no_constant(name):
        raise AssertionError("%s holds %s, which is not JSON" % (path, name))

    doc = json.loads(data.decode("utf-8"), parse_constant=no_constant)
    check(doc)
    return doc
