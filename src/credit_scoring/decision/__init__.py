"""From features to a credit decision: score scale, limits, reasons, the deployable bundle,
batch scoring, advice.
"""
