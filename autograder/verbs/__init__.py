"""The verbs of `python -m autograder`: grade, instructor tests, stubs, package, release, batch."""
