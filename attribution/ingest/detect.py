"""Format detection. Binary formats are recognised by their magic bytes before any text is read;
text formats from their head (decompressed): the CSV header or the first JSON record.

Rules, first match wins (see formats/__init__.py for the order):
- Parquet (`PAR1` magic), offered to the parsers with `sniff_parquet(column names)`:
  - focus:            columns BilledCost, ChargePeriodStart, BillingPeriodStart (any case)
  - aws-cur-parquet:  columns line_item_unblended_cost and bill_billing_period_start_date (legacy
                      Athena layout and CUR 2.0 / Data Exports)
- Text (plain or gzip):
  - focus:              CSV header with BilledCost, ChargePeriodStart, BillingPeriodStart (any case)
  - aws-cur2:           CSV header has `bill_billing_period_start_date` and `line_item_unblended_cost`
  - aws-cur-legacy:     CSV header has `bill/BillingPeriodStartDate` and `lineItem/UnblendedCost`
  - gcp-bigquery:       first line is a JSON object with `billing_account_id` and `cost`
  - gcp-csv:            CSV header with billing_account_id, cost, usage_start_time, invoice.month
  - azure-cost-details: CSV header (BOM and localized "Name (EnglishName)" allowed) has a cost column
                        (CostInBillingCurrency/Cost/PreTaxCost), a date column (Date/UsageDateTime) and
                        an Azure column (MeterCategory, MeterId, ChargeType, SubscriptionId/Guid)
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from attribution.ingest.errors import IngestError, UnknownFormatError
from attribution.ingest.formats import PARSERS, PARSERS_BY_NAME
from attribution.ingest.formats.base import Parser
from attribution.ingest.formats.parquet import is_parquet, parquet_columns
from attribution.ingest.sources import Source, as_source, is_gzip, read_head


def _parquet_detect(source: Source) -> type[Parser]:
    path = source.name
    names = parquet_columns(source)  # IngestError when the footer is corrupt or missing.
    for parser in PARSERS:
        sniff_parquet = getattr(parser, "sniff_parquet", None)
        if sniff_parquet is not None and sniff_parquet(names):
            return parser
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    raise UnknownFormatError(
        f"unrecognised Parquet schema ({len(names)} columns: {shown}). Supported Parquet formats: "
        + ", ".join(p.name for p in PARSERS if getattr(p, "sniff_parquet", None)),
        path=str(path),
    )


def format_detect(source: Source | str | Path) -> type[Parser]:
    """The parser of a file or remote object. Reads its head only (and a Parquet footer)."""
    source = as_source(source)
    path = source.name
    try:
        size = source.size
    except OSError as error:
        raise UnknownFormatError(f"cannot read the file ({error.strerror})", path=str(path)) from None
    if size == 0:
        raise UnknownFormatError(
            "the file is empty (0 bytes); even an export without rows has a header line", path=str(path)
        )
    if is_parquet(source):
        return _parquet_detect(source)
    try:
        head = read_head(source)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise IngestError(f"the gzip file is truncated or corrupt ({error})", path=str(path)) from None
    except UnicodeDecodeError:
        kind = "gzip content" if is_gzip(source) else "file"
        raise UnknownFormatError(
            f"the {kind} is not UTF-8 text nor a Parquet file; not a billing export", path=str(path)
        ) from None
    except OSError as error:
        raise UnknownFormatError(f"cannot read the file ({error})", path=str(path)) from None
    if not head.strip():
        raise UnknownFormatError(
            "the file has no header line (empty after decompression)", path=str(path), line=1
        )
    for parser in PARSERS:
        if parser.sniff(head):
            return parser
    first_line = head.splitlines()[0][:120]
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
