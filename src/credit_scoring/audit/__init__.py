"""Checks of a trained model before it may serve: evaluation, fairness, robustness, the
promotion gate.
"""
