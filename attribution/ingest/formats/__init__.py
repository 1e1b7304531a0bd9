"""Format registry. To add a format: write a Parser subclass in a module here and list it below.

Order matters for detection: the first parser whose `sniff` accepts a file's head wins.
"""

from __future__ import annotations

from attribution.ingest.formats.aws_cur import AwsCurLegacyParser, AwsCurParser
from attribution.ingest.formats.azure_cost_details import AzureCostDetailsParser
from attribution.ingest.formats.base import Parser
from attribution.ingest.formats.gcp_bigquery import GcpBigQueryParser

PARSERS: tuple[type[Parser], ...] = (
    AwsCurParser,
    AwsCurLegacyParser,
    GcpBigQueryParser,
    AzureCostDetailsParser,
)
PARSERS_BY_NAME: dict[str, type[Parser]] = {parser.name: parser for parser in PARSERS}
