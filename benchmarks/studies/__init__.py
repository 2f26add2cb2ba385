"""Model-choice studies on real galaxies: ``common`` holds what they share; ``real``, ``pretrain``,
``curve``, ``committee`` and ``tree`` are the studies (``python -m benchmarks.studies.NAME --help``)."""
