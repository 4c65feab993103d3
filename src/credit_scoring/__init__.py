"""credit-scoring: behaviour data to a calibrated 350-950 credit score, limit and reasons."""

__version__ = "0.1.0"
