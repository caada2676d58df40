"""Real peers on loopback for tests and benchmarks (see README.md). Import from the modules
(`tests.fakes.openai_server`), so `python -m tests.fakes.openai_server` runs cleanly."""
