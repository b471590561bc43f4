"""Analyses: pure functions from datasets/embeddings to tables and arrays, shared by the
notebooks, the CLI and the dashboard."""
