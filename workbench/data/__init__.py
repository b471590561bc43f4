"""Gameplay data: label schemas, zarr stores, the dataset catalog, recorders and importers."""
