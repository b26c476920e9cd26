"""grade-batch and merge: discovery (what a class submitted), run (grading it), report (what it got)."""
