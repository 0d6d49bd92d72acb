"""Benchmarks (not shipped): `python -m bench.intake` measures intake against a raw-driver floor."""
