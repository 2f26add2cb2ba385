"""Benchmarks of galaxymorph: speed (benchmarks/speed/, plain scripts) and model-choice studies
(the package benchmarks.studies, run from the repository root with ``python -m``)."""
