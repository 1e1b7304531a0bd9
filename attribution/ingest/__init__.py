"""Billing export ingestion: streaming parse -> COPY to staging -> atomic swap -> daily rollup.

Layout:
- `detect.py` picks a parser from a file's header (CSV) or first record (NDJSON).
- `formats/` holds one module per native format; each turns source rows into staging rows
  (FOCUS columns). Adding a format means adding a module there and registering it.
- `mapping.py` holds the FOCUS cost and charge-category rules of every provider in one place.
- `loader.py` owns the SQL: COPY into staging, dimension resolution, the swap, the rollup.
- `services.py` drives runs (create, execute) with these pieces.
"""
