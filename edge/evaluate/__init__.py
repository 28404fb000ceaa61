"""Evaluation: challenge sets from a library, metrics, baseline, plots and a JSON summary."""
