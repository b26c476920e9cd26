"""Where the kit lives, defined once: every verb that reads or writes the kit's folders starts here.

The engine (autograder/engine/) never reads these: it ships to students inside check.py, where there
is no kit around it, and is told what it needs (the reference solutions' folder, the folders no
worker may see) by the plan it is given.
"""
import os

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))  # autograder/
KIT_ROOT = os.path.dirname(PACKAGE_DIR)  # the clone: course.toml, solutions/, assignment/, dist/ ...
SOLUTIONS = os.path.join(KIT_ROOT, "solutions")
ASSIGNMENT = os.path.join(KIT_ROOT, "assignment")
INSTRUCTOR_TESTS = os.path.join(KIT_ROOT, "instructor_tests")
COURSE_TOML = os.path.join(KIT_ROOT, "course.toml")
DIST = os.path.join(KIT_ROOT, "dist")
