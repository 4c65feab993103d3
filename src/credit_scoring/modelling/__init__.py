"""From a feature table to a calibrated PD model: out-of-time split, LightGBM training,
calibration, the WoE baseline, metrics.
"""
