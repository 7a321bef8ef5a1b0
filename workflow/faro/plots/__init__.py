"""Figures of the paper, from the Parquet data and stats of any backend."""
