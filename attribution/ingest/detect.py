"""Format detection from a file's head (decompressed): the CSV header or the first JSON record.

Rules, first match wins (see formats/__init__.py for the order):
- aws-cur2:           CSV header has `bill_billing_period_start_date` and `line_item_unblended_cost`
- aws-cur-legacy:     CSV header has `bill/BillingPeriodStartDate` and `lineItem/UnblendedCost`
- gcp-bigquery:       first line is a JSON object with `billing_account_id` and `cost`
- azure-cost-details: CSV header (BOM and localized "Name (EnglishName)" allowed) has a cost column
                      (CostInBillingCurrency/Cost/PreTaxCost), a date column (Date/UsageDateTime) and
                      an Azure column (MeterCategory, MeterId, ChargeType, SubscriptionId/Guid)
"""

from __future__ import annotations

from pathlib import Path

from attribution.ingest.errors import UnknownFormatError
from attribution.ingest.formats import PARSERS, PARSERS_BY_NAME
from attribution.ingest.formats.base import Parser
from attribution.ingest.sources import read_head


def format_detect(path: str | Path) -> type[Parser]:
    try:
        head = read_head(path)
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise UnknownFormatError(f"cannot read the file ({error})", path=str(path)) from None
    for parser in PARSERS:
        if parser.sniff(head):
            return parser
    first_line = head.splitlines()[0][:120] if head else "(empty file)"
    raise UnknownFormatError(
        f"unrecognised billing export format; first line: {first_line!r}. Supported: "
        + ", ".join(PARSERS_BY_NAME),
        path=str(path),
        line=1,
    )


def parser_get(name: str) -> type[Parser]:
    try:
        return PARSERS_BY_NAME[name]
    except KeyError:
        raise UnknownFormatError(
            f"unknown format {name!r}; choose one of {', '.join(PARSERS_BY_NAME)}"
        ) from None
