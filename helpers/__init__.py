"""Helpers the notebooks import: the sandbox cluster and the views that show what it does."""
