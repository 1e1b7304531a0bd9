"""Dimension mapping rules: which team, model and deployment a line item belongs to."""
