"""One module per student file; each defines FUNCTIONS, its list of GradedFunction."""
