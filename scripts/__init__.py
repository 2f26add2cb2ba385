"""Project scripts (rebuild the shipped model, calibrate the synthetic sky, compare models), run from the
repository root with ``python -m scripts.NAME``."""
