"""Speed benchmarks of palette_core: ``bash scripts/bench`` (``python -m benchmarks``).

Each workload is timed against a fixed NumPy baseline measured in the same run, so the ratios
printed can be compared between machines and commits; nothing here is a test with a deadline.
"""
