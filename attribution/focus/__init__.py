"""FOCUS (FinOps Open Cost and Usage Specification) conformance: the readable per-provider tables the
parsers use (service categories, regions, units) and the typed export of the focus_line_items view."""
