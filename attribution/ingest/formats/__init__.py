"""Format registry. To add a format: write a Parser subclass in a module here and list it below.

Order matters for detection: the first parser whose `sniff` accepts a file's head wins. Parquet
files are recognised by their magic bytes and then offered to the parsers that define
`sniff_parquet(column_names)` (see detect.py).
"""

from __future__ import annotations

from attribution.ingest.formats.aws_cur import AwsCurLegacyParser, AwsCurParser
from attribution.ingest.formats.aws_cur_parquet import AwsCurParquetParser
from attribution.ingest.formats.azure_cost_details import AzureCostDetailsParser
from attribution.ingest.formats.base import Parser
from attribution.ingest.formats.focus import ANY_PROVIDER, FocusParser
from attribution.ingest.formats.gcp_bigquery import GcpBigQueryParser
from attribution.ingest.formats.gcp_csv import GcpCsvParser

PARSERS: tuple[type[Parser], ...] = (
    # FOCUS first: its column names are distinctive, and an AWS/Azure FOCUS export may carry
    # provider columns (x_*) that look native.
    FocusParser,
    AwsCurParser,
    AwsCurLegacyParser,
    AwsCurParquetParser,
    GcpBigQueryParser,
    GcpCsvParser,
    AzureCostDetailsParser,
)
PARSERS_BY_NAME: dict[str, type[Parser]] = {parser.name: parser for parser in PARSERS}

__all__ = ["ANY_PROVIDER", "PARSERS", "PARSERS_BY_NAME"]
