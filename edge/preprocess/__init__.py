"""Preprocessing: pure numpy functions from raw counts to the vectors identification uses."""

from edge.preprocess.chain import DEFAULT_SPEC, preprocess, preprocess_with_mask
from edge.preprocess.raw import absorbance_from_counts, transmittance_from_counts

__all__ = [
    "DEFAULT_SPEC",
    "absorbance_from_counts",
    "preprocess",
    "preprocess_with_mask",
    "transmittance_from_counts",
]
