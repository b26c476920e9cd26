"""Where the kit lives, defined once: every verb that reads or writes the kit's folders starts here.

The engine (autograder/engine/) never reads these: it ships to students inside check.py, where there
is no kit around it, and is told what it needs (the reference solutions' folder, the folders no
worker may see) by the plan it is given.

The kit has two tracks (course.toml's `track`): the same assignment written in PyTorch or in NumPy.
Each has its reference solutions in solutions/<track>/ and its stubs in assignment/<track>/, side by
side; the registry (autograder/parts/) serves both.
"""
import os

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))  # autograder/
KIT_ROOT = os.path.dirname(PACKAGE_DIR)  # the clone: course.toml, solutions/, assignment/, dist/ ...
TRACKS = ("torch", "numpy")  # course.toml's track: what the students write their layers in
INSTRUCTOR_TESTS = os.path.join(KIT_ROOT, "instructor_tests")
COURSE_TOML = os.path.join(KIT_ROOT, "course.toml")
DIST = os.path.join(KIT_ROOT, "dist")


def solutions(track):
    """The reference solutions of `track` (solutions/torch/, solutions/numpy/)."""
    if track not in TRACKS:
        raise ValueError("unknown track %r (known: %s)" % (track, ", ".join(TRACKS)))
    return os.path.join(KIT_ROOT, "solutions", track)


def assignment(track):
    """The student stubs of `track`, generated from solutions(track) (assignment/torch/, assignment/numpy/)."""
    if track not in TRACKS:
        raise ValueError("unknown track %r (known: %s)" % (track, ", ".join(TRACKS)))
    return os.path.join(KIT_ROOT, "assignment", track)
