"""The engine: what runs a check, and what ships to students in check.py.

It imports nothing outside itself (tests/test_layout.py): the student release copies this folder as it
is. What it needs of the kit around it (the reference solutions, the folders no worker may see) it is
told by the plan it grades against (plans.build_plan).
"""
import os

# The folder this package is imported from (sys.path's entry): the kit's clone, or the student release's
# folder. The zygote starts with it on its path; it is the grader's own code, never the student's.
IMPORT_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * (__name__.count(".") + 1)))
