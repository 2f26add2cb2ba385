"""Data: the Galaxy10 layout, download, synthetic sky, importers, splits and batches."""
