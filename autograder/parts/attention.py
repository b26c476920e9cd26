"""attention.py: to be written (see the issue). FUNCTIONS is this file's registry."""

FUNCTIONS = []
