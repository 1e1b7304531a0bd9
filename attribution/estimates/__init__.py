"""Spend estimated from usage before the bill lands: calibration and accuracy."""
