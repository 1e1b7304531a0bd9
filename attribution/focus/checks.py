"""FOCUS 1.2 rules the FinOps Foundation's validator cannot evaluate, checked in SQL on the view.

`focus-validator` 2.2.1 (rules 1.2.0.1) compiles a condition "X is not 'V'" as
`X IS NOT NULL AND X <> 'V'` (CheckNotValueGenerator). ChargeClass is null on every regular charge
(FOCUS: it is "Correction" or null) and CommitmentDiscountStatus is null on every row without a
commitment discount, so each rule conditioned on "ChargeClass is not Correction" or
"CommitmentDiscountStatus is not Unused" is checked on corrections or commitment rows only and
passes on any other data. RULES below restates each of them with the condition the spec means
(`IS DISTINCT FROM`, which is true for null), as a predicate that is true on a violating row of
focus_line_items. `make conformance` runs them after the validator (bin/focus_conformance.py).

Tolerance: the nullability rules have none. The product rules ("the product of A and
PricingQuantity MUST match B") use the validator's own comparison for those rules when it does
evaluate them (ColumnByColumnEqualsColumnValueGenerator): |A x PricingQuantity - B| <= 1e-9 x
max(|B|, 1). The spec says "match" without a rounding allowance; the relative 1e-9 only absorbs
the last digits of the view's 10-decimal unit prices, never a cent.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection

NOT_CORRECTION = "\"ChargeClass\" IS DISTINCT FROM 'Correction'"
USAGE_OR_PURCHASE = "\"ChargeCategory\" IN ('Usage', 'Purchase')"
PRODUCT_TOLERANCE = "1e-9"
# A commitment's sums per billing period: to the cent (half a cent either way), as totals reconcile.
COMMITMENT_TOLERANCE = "0.005"


@dataclass(frozen=True)
class Rule:
    id: str
    spec: str  # the rule's words (rules 1.2.0.1 MustSatisfy)
    violation: str  # SQL: true on a row of focus_line_items that breaks the rule
    tolerance: str = "none"
    also: tuple[str, ...] = ()  # validator rules that say the same (or only group this one)


def not_null_on_priced(rule_id: str) -> Rule:
    """The rule '<column> MUST NOT be null when ChargeCategory is "Usage" or "Purchase" and ChargeClass
    is not "Correction".' (the column is the rule's own)."""
    column = rule_id.split("-", 1)[0]
    return Rule(
        rule_id,
        f'{column} MUST NOT be null when ChargeCategory is "Usage" or "Purchase" and ChargeClass is not '
        '"Correction".',
        f'"{column}" IS NULL AND {USAGE_OR_PURCHASE} AND {NOT_CORRECTION}',
    )


def product_matches(rule_id: str, unit_price: str, cost: str, also: str) -> Rule:
    """ "The product of <unit_price> and PricingQuantity MUST match the <cost> when ... and ChargeClass
    is not "Correction"."; violated where both are present and the product misses the cost."""
    return Rule(
        rule_id,
        f"The product of {unit_price} and PricingQuantity MUST match the {cost} when {unit_price} is not "
        f'null, PricingQuantity is not null, and ChargeClass is not "Correction" ({also} says the same).',
        f'"{unit_price}" IS NOT NULL AND "PricingQuantity" IS NOT NULL AND {NOT_CORRECTION} AND '
        f'abs("{unit_price}" * "PricingQuantity" - "{cost}") '
        f'> {PRODUCT_TOLERANCE} * greatest(abs("{cost}"), 1)',
        tolerance=f"{PRODUCT_TOLERANCE} x max(|{cost}|, 1)",
        also=(also,),
    )


RULES: tuple[Rule, ...] = (
    not_null_on_priced("ListUnitPrice-C-005-C"),
    product_matches("ListCost-C-009-C", "ListUnitPrice", "ListCost", also="ListUnitPrice-C-010-C"),
    not_null_on_priced("ContractedUnitPrice-C-006-C"),
    product_matches(
        "ContractedUnitPrice-C-011-C", "ContractedUnitPrice", "ContractedCost", also="ContractedCost-C-009-C"
    ),
    Rule(
        "CommitmentDiscountQuantity-C-005-C",
        'When ChargeCategory is "Usage" or "Purchase" and CommitmentDiscountId is not null (C-004), '
        'CommitmentDiscountQuantity MUST NOT be null when ChargeClass is not "Correction".',
        f'"CommitmentDiscountQuantity" IS NULL AND "CommitmentDiscountId" IS NOT NULL '
        f"AND {USAGE_OR_PURCHASE} AND {NOT_CORRECTION}",
    ),
    not_null_on_priced("PricingQuantity-C-005-C"),
    not_null_on_priced("PricingCategory-C-004-C"),
    not_null_on_priced("SkuId-C-005-C"),
    not_null_on_priced("SkuPriceId-C-005-C"),
    not_null_on_priced("PricingCurrencyListUnitPrice-C-005-C"),
    not_null_on_priced("PricingCurrencyContractedUnitPrice-C-005-C"),
    Rule(
        "ConsumedQuantity-C-006-C",
        'When ChargeCategory is "Usage" and CommitmentDiscountStatus is not "Unused" (C-005), '
        'ConsumedQuantity MUST NOT be null when ChargeClass is not "Correction".',
        '"ConsumedQuantity" IS NULL AND "ChargeCategory" = \'Usage\' '
        f"AND \"CommitmentDiscountStatus\" IS DISTINCT FROM 'Unused' AND {NOT_CORRECTION}",
        also=("ConsumedQuantity-C-005-C",),
    ),
)


# Rules the validator evaluates on more rows than the spec's condition names (quirks in
# bin/focus_conformance.py, not failed there), restated here with that condition.
QUIRK_RULES: tuple[Rule, ...] = (
    Rule(
        "EffectiveCost-C-005-C",
        'EffectiveCost MUST be 0 when ChargeCategory is "Purchase" and the purchase is intended to cover '
        "future eligible charges (a commitment purchase: CommitmentDiscountId is not null). The validator "
        "checks every Purchase, so a support or registration fee, which keeps its cost, fails there.",
        '"ChargeCategory" = \'Purchase\' AND "CommitmentDiscountId" IS NOT NULL AND "EffectiveCost" <> 0',
    ),
)
CHECKED_RULES: tuple[Rule, ...] = RULES + QUIRK_RULES


@dataclass(frozen=True)
class CommitmentRule:
    """A rule on the sums of a commitment's charges, checked per CommitmentDiscountId and billing
    period; a violation is one (commitment, billing period) whose sums differ."""

    id: str
    spec: str
    left: str  # SQL aggregate over the commitment's rows of one billing period
    right: str
    tolerance: str = COMMITMENT_TOLERANCE


# EffectiveCost-C-012-C (rules 1.2.0.1, under C-011 "Charges for a given CommitmentDiscountId"):
# the validator marks it Dynamic and never evaluates it. The spec's sums run over a commitment's
# charges; a dataset holds a window of them, so the check compares them per billing period, on the
# billing periods the dataset holds whole (its charges reach the period's end): the recurring
# payments (a Purchase per period, AWS RIFee, Google Cloud's hourly fee) and their amortization
# (the Usage rows, used and unused) fall in the same period. A commitment paid upfront before the
# dataset or amortized over its term rather than per period (Azure's monthly payments) meets the sums
# over its term only: listed in KNOWN_BREAKS with that reason.
COMMITMENT_RULES: tuple[CommitmentRule, ...] = (
    CommitmentRule(
        "EffectiveCost-C-012-C",
        "For the charges of a given CommitmentDiscountId, the sum of EffectiveCost where ChargeCategory is "
        '"Usage" MUST equal the sum of BilledCost where ChargeCategory is "Purchase".',
        'sum("EffectiveCost") FILTER (WHERE "ChargeCategory" = \'Usage\')',
        'sum("BilledCost") FILTER (WHERE "ChargeCategory" = \'Purchase\')',
    ),
    CommitmentRule(
        "EffectiveCost-C-013-C",
        "For the charges of a given CommitmentDiscountId, the sum of EffectiveCost where ChargeCategory is "
        '"Usage" MUST equal that sum where CommitmentDiscountStatus is "Used" plus that sum where it is '
        '"Unused".',
        'sum("EffectiveCost") FILTER (WHERE "ChargeCategory" = \'Usage\')',
        'sum("EffectiveCost") FILTER (WHERE "ChargeCategory" = \'Usage\' '
        "AND \"CommitmentDiscountStatus\" IN ('Used', 'Unused'))",
    ),
)
RULE_IDS = (
    frozenset(rule.id for rule in RULES)
    | {alias for rule in RULES for alias in rule.also}
    | {rule.id for rule in COMMITMENT_RULES}
)
# Columns that are null on regular rows, so a "<column> is not '<value>'" condition never holds there.
NULLABLE_CONDITION_COLUMNS = frozenset({"ChargeClass", "CommitmentDiscountStatus"})


def unevaluated_rules(model: dict) -> set[str]:
    """The rules of a validator rules file (model-1.2.0.1.json) whose condition compares a column of
    NULLABLE_CONDITION_COLUMNS with a value by CheckNotValue: the rules RULES must cover."""

    def compares(node: object) -> bool:
        if not isinstance(node, dict):
            return False
        if (
            node.get("CheckFunction") == "CheckNotValue"
            and node.get("Value") is not None
            and node.get("ColumnName") in NULLABLE_CONDITION_COLUMNS
        ):
            return True
        return any(compares(item) for item in node.get("Items") or ())

    return {
        rule_id
        for rule_id, rule in model["ModelRules"].items()
        if rule.get("Status", "Active") == "Active"
        and compares((rule.get("ValidationCriteria") or {}).get("Condition"))
    }


def focus_rule_violations(*, account_slugs: list[str] | None = None, view: str = "focus_line_items") -> dict:
    """{rule id: rows of the view (of the given accounts, or all) that break it}, broken rules only."""
    counts = ", ".join(f"count(*) FILTER (WHERE {rule.violation})" for rule in CHECKED_RULES)
    where, params = "", []
    if account_slugs:
        where, params = ' WHERE "x_Account" = ANY(%s)', [account_slugs]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts} FROM {view}{where}", params)  # noqa: S608
        found = cursor.fetchone()
    broken = {rule.id: count for rule, count in zip(CHECKED_RULES, found, strict=True) if count}
    for rule in COMMITMENT_RULES:
        if count := len(commitment_rule_differences(rule.id, account_slugs=account_slugs, view=view)):
            broken[rule.id] = count
    return broken


def commitment_rule_differences(
    rule_id: str,
    *,
    account_slugs: list[str] | None = None,
    view: str = "focus_line_items",
    limit: int | None = None,
) -> list[dict]:
    """The (commitment, billing period) pairs that break a COMMITMENT_RULES rule, on the billing
    periods the dataset holds whole, with both sums."""
    rule = next(rule for rule in COMMITMENT_RULES if rule.id == rule_id)
    where, params = "", []
    if account_slugs:
        where, params = ' AND "x_Account" = ANY(%s)', [account_slugs]
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT max("ChargePeriodEnd") FROM {view} WHERE TRUE{where}', params)  # noqa: S608
        (last_end,) = cursor.fetchone()
        if last_end is None:
            return []
        left, right = f"COALESCE({rule.left}, 0)", f"COALESCE({rule.right}, 0)"
        cursor.execute(
            f"""SELECT "CommitmentDiscountId" AS commitment, "BillingPeriodStart" AS billing_period,
                       "BillingCurrency" AS currency, {left} AS left_sum, {right} AS right_sum
                  FROM {view}
                 WHERE "CommitmentDiscountId" IS NOT NULL AND "BillingPeriodEnd" <= %s{where}
                 GROUP BY 1, 2, 3
                HAVING abs({left} - {right}) > {rule.tolerance}
                 ORDER BY 2, 1 {"LIMIT %s" if limit else ""}""",  # noqa: S608
            [last_end, *params, *([limit] if limit else [])],
        )
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def focus_rule_examples(
    rule_id: str, *, account_slugs: list[str] | None = None, limit: int = 3
) -> list[dict]:
    """A few rows that break the rule (the columns a reader needs to see why); for a rule on a
    commitment's sums, the commitments and billing periods with both sums."""
    if any(rule.id == rule_id for rule in COMMITMENT_RULES):
        return commitment_rule_differences(rule_id, account_slugs=account_slugs, limit=limit)
    rule = next(rule for rule in CHECKED_RULES if rule.id == rule_id)
    where, params = f"WHERE ({rule.violation})", []
    if account_slugs:
        where, params = where + ' AND "x_Account" = ANY(%s)', [account_slugs]
    columns = (
        '"x_Account", "x_SourceLine", "ChargeCategory", "ChargeDescription", "PricingCategory", '
        '"PricingQuantity", "PricingUnit", "ListUnitPrice", "ListCost", "ContractedUnitPrice", '
        '"ContractedCost", "BilledCost", "EffectiveCost", "CommitmentDiscountId", "CommitmentDiscountStatus"'
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM focus_line_items {where} LIMIT %s", [*params, limit])  # noqa: S608
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


# Datasets of `make conformance` (labels "demo-<cloud>" and "sample <path under billing/>") whose rows
# still break one of RULES, for a reason the mapping cannot mend without inventing data: (label
# prefix, rule id) -> why. bin/focus_conformance.py reports them with their row counts instead of
# failing; an entry that matches nothing is reported so it can be removed.
def _known(prefixes: tuple[str, ...], rules: tuple[str, ...], reason: str) -> dict[tuple[str, str], str]:
    return {(prefix, rule): reason for prefix in prefixes for rule in rules}


_NO_PRICE_ID = (
    "the export has no price identifier (Azure cost details have none; these AWS files leave "
    "pricing/RateCode empty or lack it; the 2018 CUR Parquet's pricing_rate_id is shared by several SKUs, "
    "so it is no SkuPriceId (SkuPriceId-C-008); the FOCUS scenario files omit SkuPriceId), and the view "
    "does not invent one"
)
# What a row without quantity, meter or price breaks.
_NOTHING_PRICED = (
    "ListUnitPrice-C-005-C", "PricingCurrencyListUnitPrice-C-005-C", "ContractedUnitPrice-C-006-C",
    "PricingCurrencyContractedUnitPrice-C-005-C", "PricingQuantity-C-005-C", "SkuId-C-005-C",
    "ConsumedQuantity-C-006-C",
)  # fmt: skip
_EMPTY_ROW = "the sample's only row has a date and nothing else (no meter, quantity, price or cost)"
_SCENARIOS = (
    "the FOCUS specification's own scenario files: they carry no ContractedUnitPrice, no SkuId/SkuPriceId, "
    "no PricingQuantity on their commitment rows, and one Usage row whose ListUnitPrice x PricingQuantity "
    "(3 x 0.333) is not its ListCost (3); the purchase scenarios hold a commitment's purchases without the "
    "usage they amortize into (EffectiveCost-C-012); the view keeps what a FOCUS export states"
)
KNOWN_BREAKS: dict[tuple[str, str], str] = {
    **_known(
        (
            "demo-azure",
            "sample azure/",
            "sample focus/",
            "sample aws/koku/",
            "sample aws/koku-cur-s3-layout/",
            "sample aws/legacy-cur-parquet/",
        ),
        ("SkuPriceId-C-005-C",),
        _NO_PRICE_ID,
    ),
    **_known(
        ("demo-aws",),
        ("SkuId-C-005-C", "SkuPriceId-C-005-C"),
        "savings plan recurring fee lines that carry unused commitment (shown as the Purchase and the "
        "Unused usage of it, migration 0029); the demo CUR gives them no product_sku or rate code",
    ),
    ("demo-azure", "EffectiveCost-C-012-C"): (
        "the demo's reservation is paid monthly (45,217.37 on the 1st) and amortized by the hour at 1/730 "
        "of a monthly payment, as Azure amortizes over the term: October's 744 hours carry 46,084.55; the "
        "sums meet over the reservation's term, not in each billing period"
    ),
    ("sample aws/legacy-cur-parquet/", "EffectiveCost-C-012-C"): (
        "partial-upfront reservations bought before October 2018: their covered usage's EffectiveCost "
        "includes the amortized upfront fee (reservation_amortized_upfront_fee_for_billing_period, 131.47 "
        "in the month) paid outside the file, whose Purchase the file cannot hold; the sums meet over "
        "the term"
    ),
    **_known(
        ("sample aws/legacy-cur-parquet/",),
        ("ContractedUnitPrice-C-006-C", "PricingCurrencyContractedUnitPrice-C-005-C"),
        "one RIFee row with unused hours whose cost CUR rounded (6.257779 for 530.320278 hours at 0.0118): "
        "no unit price gives the rounded cost back, and the view does not state one that misses it",
    ),
    ("demo-azure", "SkuId-C-005-C"): "the demo's reservation purchase row has no MeterId or PartNumber",
    **_known(("sample azure/opencost-billingexports/headersets_BOM.csv",), _NOTHING_PRICED, _EMPTY_ROW),
    **_known(
        (
            "sample azure/opencost-billingexports/values_MissingBrackets.csv",
            "sample azure/opencost-billingexports/values_VirtualMachine.csv",
        ),
        _NOTHING_PRICED,
        "OpenCost's test files for tag parsing: one row with costs but no quantity, meter or unit price",
    ),
    **_known(
        ("sample focus/focus-spec-scenarios/",),
        (
            "ContractedUnitPrice-C-006-C",
            "PricingCurrencyContractedUnitPrice-C-005-C",
            "SkuId-C-005-C",
            "PricingQuantity-C-005-C",
            "ListUnitPrice-C-005-C",
            "PricingCurrencyListUnitPrice-C-005-C",
            "ListCost-C-009-C",
            "EffectiveCost-C-012-C",
        ),
        _SCENARIOS,
    ),  # fmt: skip
}


def known_break(label: str, rule_id: str) -> tuple[str, str] | None:
    """The KNOWN_BREAKS entry that covers this dataset's broken rule, if any."""
    return next(
        ((prefix, rule) for prefix, rule in KNOWN_BREAKS if rule == rule_id and label.startswith(prefix)),
        None,
    )
