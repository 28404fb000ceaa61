"""Preprocessing: pure numpy functions from raw counts to the vectors identification uses."""

from edge.preprocess.raw import absorbance_from_counts, transmittance_from_counts

__all__ = ["absorbance_from_counts", "transmittance_from_counts"]
