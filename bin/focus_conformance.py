"""`make conformance`: the FinOps Foundation's FOCUS validator on what focus_line_items serves.

Run by bin/conformance (which picks the database and builds the validator's own Python 3.12 venv).
For the demo data of each cloud and for each real sample export in ../shared/data/billing, it
ingests through the production path into a scratch database, exports the view to typed Parquet
(attribution/focus/export.py) and runs `focus-validator --validate-version 1.2.0.1
--block-download --applicability-criteria ...` on it (APPLICABILITY_CRITERIA: the features whose
conditional columns the view fills, so their rules are checked too). It exits 1 when any rule
fails, except the validator quirks listed in QUIRKS with the reason each is not a defect of the
data, and the SHOULD rules in RECOMMENDATIONS, which it reports.

    bin/focus_conformance.py --validator-python PATH --out DIR [--samples DIR] [--days N] [--keep]
    bin/focus_conformance.py --prepare-database --server URL --database NAME

The second form (run by bin/conformance first) recreates the scratch database NAME on the Postgres
server URL and prints its DATABASE_URL; when no server answers at URL it recreates NAME on the
embedded Postgres under .data/postgres instead (config/embedded_db.py, as bin/test falls back to it)
and prints an empty line: with DATABASE_URL unset the settings use that server.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VALIDATE_VERSION = "1.2.0.1"
# Rules the validator fails although the data meets the spec: rule id -> why.
QUIRKS: dict[str, str] = {
    "BilledCost-C-005-C": (
        "compares ProviderName with InvoiceIssuerName as text to decide whether a row was invoiced by "
        'a marketplace reseller; a cloud that both provides and invoices ("AWS" and '
        '"Amazon Web Services, Inc.") is not a reseller.'
    ),
    "InvoiceId-C-004-C": (
        "'MUST be null when the charge is not associated with an invoice' is checked on every row "
        "(the condition cannot be evaluated), so any invoiced row fails it; with C-005 below no "
        "dataset with rows passes both."
    ),
    "InvoiceId-C-005-C": (
        "'MUST NOT be null when the charge is associated with an invoice' is checked on every row, so "
        "rows not yet invoiced (estimated months, GCP exports, which carry no invoice id) fail it."
    ),
    "CommitmentDiscountStatus-C-004-C": (
        "'MUST NOT be null when CommitmentDiscountId is not null and ChargeCategory is Usage' is coded "
        "with the condition 'CommitmentDiscountId is null' (rules 1.2.0.1), so it fails every row that "
        "has no commitment discount, where the spec wants the status null."
    ),
    "EffectiveCost-C-005-C": (
        "'MUST be 0 when ChargeCategory is Purchase and the purchase is intended to cover future "
        "eligible charges' is coded with the condition 'ChargeCategory is Purchase' alone, so a "
        "purchase that covers no future charges (an AWS Support fee, a registration fee) fails it "
        "while it rightly keeps its cost as EffectiveCost (zeroing it would drop that cost from every "
        "amortized total). attribution/focus/checks.py checks the rule as the spec words it, on "
        "commitment purchases (CommitmentDiscountId set), and make conformance fails on that."
    ),
    "CapacityReservationStatus-C-004-C": (
        "'MUST NOT be null when CapacityReservationId is not null and ChargeCategory is Usage' has a "
        "condition the validator does not read (an 'AND' key instead of a CheckFunction), so it is "
        "checked on every row, including all rows without a capacity reservation."
    ),
}

# The features the view's data has, so the validator also checks the conditional columns that
# belong to them (without criteria it skips every rule that names one): list and negotiated prices,
# pricing currency, commitment discounts, capacity reservations, unit pricing, account types.
APPLICABILITY_CRITERIA = (
    "PUBLIC_PRICE_LIST_SUPPORTED",
    "NEGOTIATED_PRICING_SUPPORTED",
    "PRICING_BILLING_CURRENCY_DIFFERENCES_SUPPORTED",
    "COMMITMENT_DISCOUNT_SUPPORTED",
    "CAPACITY_RESERVATION_SUPPORTED",
    "UNIT_PRICING_SUPPORTED",
    "MULTIPLE_BILLING_ACCOUNT_TYPES_SUPPORTED",
    "MULTIPLE_SUB_ACCOUNT_TYPES_SUPPORTED",
)
# SHOULD rules a dataset may miss when its export lacks the data (reported, not failed): rule -> why.
RECOMMENDATIONS: dict[str, str] = {
    "SkuMeter-C-005-C": (
        "'SkuMeter SHOULD NOT be null when SkuId is not null': the FOCUS spec's own scenario files carry "
        "a SkuId but no SkuMeter, and the view shows what an export says rather than invent a meter."
    ),
}

# A result line: "❌ ListCost-C-003-M: FAIL  (violations=3, msg=...)".
_FAILED = re.compile(r"(?P<rule>[A-Za-z]+-[A-Z]-\d{3}-[A-Z]): FAIL\b")


def _server_answers(server: str) -> bool:
    import psycopg

    try:
        psycopg.connect(server + "/postgres", connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


def _database_recreate(name: str, **connect: object) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(dbname="postgres", autocommit=True, **connect) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def database_prepare(*, server: str, name: str, data_dir: Path) -> str:
    """Recreate the scratch database; its DATABASE_URL, or "" when it is on the embedded server."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", name):
        raise SystemExit(f"CONFORMANCE_DATABASE_NAME {name!r}: use letters, digits and _ (at most 63).")
    if _server_answers(server):
        _database_recreate(name, conninfo=server + "/postgres")
        return f"{server}/{name}"
    from config.embedded_db import ensure_embedded_postgres

    embedded = ensure_embedded_postgres(data_dir, "postgres")
    _database_recreate(name, host=embedded["HOST"], port=int(embedded["PORT"]), user="postgres")
    return ""


def _django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()


def demo_ingest(*, days: int, end_date: str, workdir: Path) -> list[tuple[str, list[str]]]:
    """The demo company's exports of all three clouds, ingested; one export per cloud."""
    from django.core.management import call_command

    exports = workdir / "exports"
    call_command("demo_seed", verbosity=0)
    call_command("demo_exports", days=days, out=str(exports), seed=42, end_date=end_date, verbosity=0)
    call_command("ingest_exports", str(exports), verbosity=0)
    return [(f"demo-{cloud}", [f"{cloud}-prod"]) for cloud in ("aws", "gcp", "azure")]


def samples_ingest(*, samples: Path) -> list[tuple[str, list[str]]]:
    """Every real sample export (files the detector refuses are not exports), one account each."""
    from attribution.ingest import services
    from attribution.ingest.detect import format_detect
    from attribution.ingest.errors import IngestError

    providers = {"aws": "aws", "azure": "azure", "gcp": "gcp", "focus": "oci"}
    exported = []
    for index, path in enumerate(
        sorted(p for p in samples.rglob("*") if p.is_file() and p.name != "README.md")
    ):
        name = str(path.relative_to(samples))
        try:
            format_detect(path)
        except IngestError:
            continue
        slug = f"sample-{index}"
        account = services.cloud_account_get_or_create(slug=slug, provider=providers[name.split("/")[0]])
        for run in services.ingest_runs_create(account=account, paths=[path]):
            services.ingest_run_execute(run_id=run.pk)
        exported.append((f"sample {name}", [slug]))
    return exported


def validator_site_packages(validator_python: Path) -> str:
    return subprocess.run(
        [
            str(validator_python),
            "-c",
            "import focus_validator, pathlib; print(pathlib.Path(focus_validator.__file__).parent.parent)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def rules_not_covered(validator_python: Path) -> set[str]:
    """Rules the validator cannot evaluate (attribution/focus/checks.py) that our checks miss: a
    newer rules file may add some."""
    import json

    from attribution.focus.checks import RULE_IDS, unevaluated_rules

    model = Path(validator_site_packages(validator_python)) / "focus_validator" / "rules"
    model = model / f"model-{VALIDATE_VERSION}.json"
    return unevaluated_rules(json.loads(model.read_text())) - RULE_IDS


def validate(*, validator_python: Path, parquet: Path) -> tuple[list[str], str]:
    """Failed rule ids (quirks included) and the validator's whole output."""
    site_packages = validator_site_packages(validator_python)
    # The validator opens currency_codes.csv by a relative path: run it from its site-packages.
    result = subprocess.run(
        [str(validator_python), "-m", "focus_validator.main", "--data-file", str(parquet.resolve()),
         "--validate-version", VALIDATE_VERSION, "--block-download", "--output-type", "console",
         "--show-violations", "--applicability-criteria", ",".join(APPLICABILITY_CRITERIA)],
        capture_output=True, text=True, cwd=site_packages,
    )  # fmt: skip
    output = result.stdout + result.stderr
    # A composite rule that fails "- failed child rules" fails only because a child did; the child
    # is reported on its own line, so counting it once is enough (and a quirk's parent is no defect).
    failed = [
        match["rule"]
        for line in output.splitlines()
        if "child rules" not in line and (match := _FAILED.search(line))
    ]
    if "=== Validation Results ===" not in output:
        raise RuntimeError(f"focus-validator did not run (exit {result.returncode}):\n{output[-3000:]}")
    return sorted(set(failed)), output


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prepare-database", action="store_true")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="inferensys_conformance")
    parser.add_argument("--validator-python", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / ".data" / "conformance")
    # CI lays shared/ beside the clone; INFERENSYS_SHARED_DATA names it elsewhere (as for the tests).
    shared = Path(os.environ.get("INFERENSYS_SHARED_DATA") or ROOT.parent / "shared" / "data")
    parser.add_argument("--samples", type=Path, default=shared / "billing")
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--end-date", default="2026-11-28")
    parser.add_argument("--only", default="", help="Only exports whose label contains this text.")
    parser.add_argument(
        "--checks-only",
        action="store_true",
        help="Only our SQL checks (attribution/focus/checks.py), no validator.",
    )
    args = parser.parse_args()
    if args.prepare_database:
        data_dir = Path(os.environ.get("INFERENSYS_DATA_DIR") or ROOT / ".data")
        print(database_prepare(server=args.server, name=args.database, data_dir=data_dir))
        return 0
    if args.validator_python is None and not args.checks_only:
        parser.error("--validator-python is required")
    # Absolute but not resolved: the venv's python is a symlink, and resolving it leaves the venv.
    if args.validator_python is not None:
        args.validator_python = Path(os.path.abspath(args.validator_python))
    if not args.samples.is_dir():
        print(
            f"No samples at {args.samples} (expected ../shared/data/billing beside the clone).",
            file=sys.stderr,
        )
        return 2
    _django_setup()
    from django.core.management import call_command

    from attribution.focus.checks import KNOWN_BREAKS, focus_rule_examples, known_break
    from attribution.focus.export import focus_export_parquet

    if not args.checks_only and (missing := rules_not_covered(args.validator_python)):
        print(
            f"Rules the validator cannot evaluate and attribution/focus/checks.py misses: {sorted(missing)}"
        )
        return 1
    call_command("migrate", verbosity=0)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as workdir:
        exports = demo_ingest(days=args.days, end_date=args.end_date, workdir=Path(workdir))
    exports += samples_ingest(samples=args.samples)
    problems = 0
    used_known: set[tuple[str, str]] = set()
    for label, slugs in exports:
        if args.only and args.only not in label:
            continue
        parquet = args.out / (re.sub(r"[^A-Za-z0-9.]+", "_", label).strip("_") + ".parquet")
        rows = focus_export_parquet(path=parquet, account_slugs=slugs)
        if not rows:
            print(f"SKIP {label}: no rows (every row of the sample is rejected on ingest)", flush=True)
            continue
        real: list[str] = []
        note = ""
        if not args.checks_only:
            failed, output = validate(validator_python=args.validator_python, parquet=parquet)
            (parquet.with_suffix(".txt")).write_text(output)
            real = [rule for rule in failed if rule not in QUIRKS and rule not in RECOMMENDATIONS]
            quirks = [rule for rule in failed if rule in QUIRKS]
            unmet = [rule for rule in failed if rule in RECOMMENDATIONS]
            note = f" (quirks: {', '.join(quirks)})" if quirks else ""
            note += f" (recommendations not met: {', '.join(unmet)})" if unmet else ""
        broken, known = rule_checks(label=label, slugs=slugs)
        used_known.update(known)
        real += [
            f"{rule} [{count} rows, our check]"
            for rule, count in broken.items()
            if known_break(label, rule) not in known
        ]
        if known:
            note += (
                " (known, listed: "
                + ", ".join(f"{rule} {broken[rule]} rows" for _prefix, rule in sorted(known))
                + ")"
            )
        status = "FAIL" if real else "PASS"
        print(f"{status} {label}: {rows} rows, {len(real)} failed rules{note} {' '.join(real)}", flush=True)
        for rule in broken:
            if known_break(label, rule) not in known:
                for example in focus_rule_examples(rule, account_slugs=slugs, limit=2):
                    print(f"    {rule}: {example}", flush=True)
        problems += bool(real)
    for rule, reason in QUIRKS.items():
        print(f"quirk {rule}: {reason}")
    for rule, reason in RECOMMENDATIONS.items():
        print(f"recommendation {rule}: {reason}")
    for (prefix, rule), reason in KNOWN_BREAKS.items():
        state = "" if (prefix, rule) in used_known or args.only else " (matched nothing: remove the entry)"
        print(f"known {prefix} {rule}{state}: {reason}")
    print(f"conformance: {problems} export(s) with failed rules; reports in {args.out}")
    return 1 if problems else 0


def rule_checks(*, label: str, slugs: list[str]) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """Our checks of the rules the validator cannot evaluate: {rule: violating rows} and the
    KNOWN_BREAKS entries that cover some of them."""
    from attribution.focus.checks import focus_rule_violations, known_break

    broken = focus_rule_violations(account_slugs=slugs)
    known = {key for rule in broken if (key := known_break(label, rule)) is not None}
    return broken, known


if __name__ == "__main__":
    sys.exit(main())
