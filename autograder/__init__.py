"""Autograder for the recurrent-networks assignment (see README.md)."""
