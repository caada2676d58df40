"""The fuzz stage: schemathesis against a live server on each backend (see test_fuzz.py)."""
