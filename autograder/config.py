"""The course's settings, in one place: `course.toml` at the top of the kit.

What an instructor may change without touching the registry: the track (what students write their layers
in: `track = "torch"` or `"numpy"`, the file's one top-level key), points and visibility per
function, whether float32 and CUDA checks count, when hidden checks' messages are shown, and the
limits of the sandbox. Every key is checked when the file is read; a bad one stops `make
autograder` and `grade` with the key named (`ConfigError`). Environment variables
(`AUTOGRADER_CALL_TIMEOUT`, ...) still override the file, for one-off runs.

The registry stays the single source of truth for what is graded and its default points;
`apply` adjusts its entries for this course.
"""
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Dict, Optional

import tomli  # not the standard library's 3.11+ twin: Gradescope's image runs Python 3.10

from . import paths

DEFAULT_PATH = paths.COURSE_TOML
VISIBILITY = ("visible", "hidden", "after_due_date", "after_published")  # Gradescope's values

# section -> key -> (type, rule): what course.toml may say (its comments say what each means)
SCHEMA = {
    "grading": {"float32": (bool, None), "cuda": (bool, None), "hidden_details": (str, VISIBILITY[1:])},
    "limits": {"call_timeout": ((int, float), "positive"), "budget": ((int, float), "positive"),
               "memory_mb": (int, "non-negative"), "instructor_timeout": ((int, float), "positive")},
}


class ConfigError(ValueError):
    """A bad course.toml: the message names the file and the key."""


TOP = {"track": (str, paths.TRACKS)}  # keys before any [section]


@dataclass
class Config:
    track: str = "torch"  # paths.TRACKS: solutions/<track>/ and assignment/<track>/, and how the grader calls them
    float32: bool = True
    cuda: bool = True
    hidden_details: str = "after_published"
    # limits: None keeps the engine's default (sandbox.Limits, runner.DEFAULT_BUDGET, instructor.py)
    call_timeout: Optional[float] = None
    budget: Optional[float] = None
    memory_mb: Optional[int] = None
    instructor_timeout: Optional[float] = None
    points: Dict[str, float] = field(default_factory=dict)  # function -> points (overrides)
    visibility: Dict[str, str] = field(default_factory=dict)  # function -> Gradescope visibility

    def limits(self):
        """The sandbox's Limits: this file's values, then the environment's overrides."""
        from .engine.sandbox import Limits

        base = Limits()
        if self.call_timeout is not None:
            base.call_timeout = float(self.call_timeout)
        if self.memory_mb is not None:
            base.memory_mb = self.memory_mb
        return Limits.from_env(base)

    def budget_seconds(self, given=None):
        """The overall budget: given (--budget), else AUTOGRADER_BUDGET, else this file, else None."""
        if given is not None:
            return given
        env = os.environ.get("AUTOGRADER_BUDGET")
        return float(env) if env else (float(self.budget) if self.budget is not None else None)


def _check(path, section, key, value, kind, rule):
    where = "%s: [%s] %s" % (os.path.basename(path), section, key) if section else "%s: %s" % (
        os.path.basename(path), key)
    if isinstance(value, bool) and kind is not bool:  # TOML true is not a number of seconds
        raise ConfigError("%s = %r: expected a number" % (where, value))
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "number"
        raise ConfigError("%s = %r: expected a %s" % (where, value, {"bool": "true or false", "str": "string"}
                                                      .get(names, names)))
    if rule == "positive" and not value > 0 or rule == "non-negative" and value < 0:
        raise ConfigError("%s = %r: must be %s" % (where, value, rule))
    if isinstance(rule, tuple) and value not in rule:
        raise ConfigError("%s = %r: must be one of %s" % (where, value, ", ".join(rule)))


def load(path=DEFAULT_PATH, function_names=None):
    """The Config in `path` (defaults when the file does not exist). Raises ConfigError.

    function_names: the graded functions [points] and [visibility] may name (default: the registry's).
    """
    cfg = Config()
    if not os.path.exists(path):
        return cfg
    try:
        with open(path, "rb") as f:
            data = tomli.load(f)
    except (tomli.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError("%s is not valid TOML: %s" % (os.path.basename(path), e))
    if function_names is None:
        from . import registry

        function_names = [fn.name for fn in registry.FUNCTIONS]
    for section, body in data.items():
        if section in TOP:
            _check(path, "", section, body, *TOP[section])
            setattr(cfg, section, body)
            continue
        if section not in SCHEMA and section not in ("points", "visibility"):
            raise ConfigError("%s: unknown section [%s] (known: %s; and the key %s before them)" % (
                os.path.basename(path), section, ", ".join(list(SCHEMA) + ["points", "visibility"]), ", ".join(TOP)))
        if not isinstance(body, dict):
            raise ConfigError("%s: %s must be a [section]" % (os.path.basename(path), section))
        for key, value in body.items():
            if section in SCHEMA:
                if key not in SCHEMA[section]:
                    raise ConfigError("%s: [%s] %s: unknown key (known: %s)" % (
                        os.path.basename(path), section, key, ", ".join(SCHEMA[section])))
                kind, rule = SCHEMA[section][key]
                _check(path, section, key, value, kind, rule)
                setattr(cfg, key, value)
                continue
            if key not in function_names:
                raise ConfigError("%s: [%s] %s: no graded function has that name (python -m autograder "
                                  "list shows them)" % (os.path.basename(path), section, key))
            if section == "points":
                _check(path, section, key, value, (int, float), "non-negative")
                cfg.points[key] = float(value)
            else:
                _check(path, section, key, value, str, VISIBILITY)
                cfg.visibility[key] = value
    return cfg


def apply(cfg, functions):
    """Copies of the registry entries `functions` as this course grades them: its points, and the float32
    and CUDA cases that count (the NumPy track has none on CUDA). The registry's own entries are never changed."""
    cuda = cfg.cuda and cfg.track == "torch"
    return [dataclasses.replace(
        fn, points=cfg.points.get(fn.name, fn.points),
        cases=[c for c in fn.cases if (cfg.float32 or c.dtype != _float32()) and (cuda or c.device != "cuda")])
        for fn in functions]


def _float32():
    import torch

    return torch.float32
