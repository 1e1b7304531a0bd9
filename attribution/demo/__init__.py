"""A fictional company ("Acme") whose inference bills are generated in each cloud's native format.

`company.py` describes the company (teams, models, accounts; `deployments.py` its deployments) with
the plain dataclasses of `specs.py`;
the writers (`aws_cur2.py`, `gcp_billing.py`, `azure_cost_details.py`, `usage.py`) turn it into
files laid out as the providers deliver them, and `expected.py` records the exact totals the
ingest pipeline must reproduce. Everything is deterministic given the seed and the end date.
"""
