"""The engine: what runs a check, and what ships to students in check.py. It imports nothing outside itself."""
