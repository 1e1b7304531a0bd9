# ruff: noqa: E501, S608  (SQL text, matched line by line against 0022's view)
"""focus_line_items: a commitment's recurring fee that an export bills as usage is shown as two
FOCUS charges, its Purchase and the usage of what it bought (FOCUS 1.2 EffectiveCost-C-012).

FOCUS wants, for each CommitmentDiscountId, the EffectiveCost of its Usage rows to add up to the
BilledCost of its Purchase rows, and EffectiveCost 0 on a Purchase (EffectiveCost-C-005). Two
exports bill a commitment's fee on one line that is both: Google Cloud's hourly committed use
discount fee ("Commitment v1: ...", what the commitment costs that hour, used or not) and an AWS
`RIFee`/`SavingsPlanRecurringFee` that carries unused commitment (billed: the fee; amortized: the
unused part). The stored line stays as the export says (a Usage charge with ChargeFrequency
Recurring and a commitment id); the view shows it as the specification's own scenarios do
(FOCUS_Spec commitment_discount_usage/purchase scenarios):

- the Purchase (half 1): ChargeCategory Purchase, ChargeFrequency Recurring, BilledCost the fee,
  EffectiveCost 0, the line's PricingQuantity, prices, ListCost and ContractedCost (no
  ConsumedQuantity: a purchase consumes nothing); its
  CommitmentDiscountQuantity is what the fee buys (the billed amount for a spend-based commitment,
  the pricing quantity for a usage-based one) and its status null;
- the usage of the commitment (half 2): ChargeCategory Usage, ChargeFrequency Usage-Based,
  BilledCost 0, EffectiveCost the line's (the unused part for AWS, the whole hourly fee for Google
  Cloud), the line's CommitmentDiscountStatus and quantity, PricingQuantity/ConsumedQuantity 0 and
  ListCost/ContractedCost 0 (the purchase half carries them, so no amount or quantity is counted
  twice).

Both halves keep the line's x_LineItemId and x_SourceLine. Summed over the view, BilledCost,
EffectiveCost, ListCost and ContractedCost are what they were: only the rows are two.
"""

import importlib

from django.db import migrations

_previous = importlib.import_module("attribution.migrations.0022_focus_conditional_columns")

# A stored usage line that is a commitment's recurring fee with an amount: shown as two halves.
FEE_SPLIT = (
    "li.charge_category = 'Usage' AND li.commitment_discount_id <> '' "
    "AND li.charge_frequency = 'Recurring' AND li.billed_cost <> 0"
)
_SPEND = (
    "(li.commitment_discount_category = 'Spend' OR (li.commitment_discount_category = '' "
    "AND li.commitment_discount_id ~* 'savings ?plan'))"
)


def _swap(sql: str, old: str, new: str) -> str:
    if sql.count(old) != 1:
        raise ValueError(f"0029: expected one {old!r} in the 0022 view")
    return sql.replace(old, new)


def _view() -> str:
    sql = _previous.CREATE_VIEW
    priced, consumed, quantity = _previous._PRICED, _previous._CONSUMED, _previous._COMMITMENT_QUANTITY
    sql = _swap(
        sql,
        '    li.billed_cost                AS "BilledCost",\n    li.effective_cost             AS "EffectiveCost",',
        '    CASE WHEN half.h = 2 THEN 0 ELSE li.billed_cost END AS "BilledCost",\n'
        '    CASE WHEN half.h = 1 THEN 0 ELSE li.effective_cost END AS "EffectiveCost",',
    )
    sql = _swap(
        sql, "    COALESCE(li.list_cost,", "    CASE WHEN half.h = 2 THEN 0 ELSE COALESCE(li.list_cost,"
    )
    sql = _swap(
        sql,
        'ELSE li.billed_cost END)\n                                  AS "ListCost"',
        'ELSE li.billed_cost END) END\n                                  AS "ListCost"',
    )
    sql = _swap(
        sql,
        "    COALESCE(li.contracted_cost,",
        "    CASE WHEN half.h = 2 THEN 0 ELSE COALESCE(li.contracted_cost,",
    )
    sql = _swap(
        sql,
        '                  ELSE li.billed_cost END)\n                                  AS "ContractedCost"',
        '                  ELSE li.billed_cost END) END\n                                  AS "ContractedCost"',
    )
    sql = _swap(
        sql,
        '    li.charge_category            AS "ChargeCategory",',
        "    CASE WHEN half.h = 1 THEN 'Purchase' ELSE li.charge_category END AS \"ChargeCategory\",",
    )
    sql = _swap(
        sql,
        "    CASE WHEN li.charge_category = 'Purchase' AND li.charge_frequency IN ('', 'Usage-Based') THEN 'One-Time'",
        "    CASE WHEN half.h = 1 THEN 'Recurring' WHEN half.h = 2 THEN 'Usage-Based'\n"
        "         WHEN li.charge_category = 'Purchase' AND li.charge_frequency IN ('', 'Usage-Based') THEN 'One-Time'",
    )
    sql = _swap(
        sql,
        "    COALESCE(li.pricing_currency_effective_cost, CASE WHEN",
        "    CASE WHEN half.h = 1 THEN 0 ELSE COALESCE(li.pricing_currency_effective_cost, CASE WHEN",
    )
    sql = _swap(
        sql,
        'li.effective_cost END)\n                                    AS "PricingCurrencyEffectiveCost"',
        'li.effective_cost END) END\n                                    AS "PricingCurrencyEffectiveCost"',
    )
    sql = _swap(
        sql,
        f'    {priced}                       AS "PricingQuantity",',
        f'    CASE WHEN half.h = 2 THEN 0 ELSE {priced} END AS "PricingQuantity",',
    )
    sql = _swap(
        sql,
        f'    {consumed}                     AS "ConsumedQuantity",',
        f"    CASE WHEN half.h = 1 THEN NULL WHEN half.h = 2 AND ({consumed}) IS NOT NULL THEN 0\n"
        f'         ELSE {consumed} END AS "ConsumedQuantity",',
    )
    sql = _swap(
        sql,
        f"    CASE WHEN ({consumed}) IS NULL THEN NULL",
        f"    CASE WHEN half.h = 1 OR ({consumed}) IS NULL THEN NULL",
    )
    sql = _swap(
        sql,
        "    CASE WHEN li.commitment_discount_id = '' THEN NULL\n"
        "         WHEN li.commitment_discount_status <> ''",
        "    CASE WHEN li.commitment_discount_id = '' OR half.h = 1 THEN NULL\n"
        "         WHEN li.commitment_discount_status <> ''",
    )
    purchased = f"CASE WHEN {_SPEND} THEN li.billed_cost ELSE li.pricing_quantity END"
    sql = _swap(
        sql,
        f'    {quantity}          AS "CommitmentDiscountQuantity",',
        f"    CASE WHEN half.h = 1 AND li.commitment_discount_unit <> '' THEN {purchased} ELSE {quantity} END\n"
        '                                    AS "CommitmentDiscountQuantity",',
    )
    sql = _swap(
        sql,
        f"    CASE WHEN ({quantity}) IS NULL THEN NULL ELSE li.commitment_discount_unit END",
        f"    CASE WHEN half.h <> 1 AND ({quantity}) IS NULL THEN NULL\n"
        "         WHEN li.commitment_discount_unit = '' THEN NULL ELSE li.commitment_discount_unit END",
    )
    # 0: the line as stored; 1 and 2: the halves of a commitment fee billed as usage.
    sql = _swap(
        sql,
        "JOIN attribution_ingestrun run ON",
        "CROSS JOIN LATERAL (SELECT v.h FROM (VALUES (0), (1), (2)) v(h)\n"
        f"                    WHERE (v.h = 0) = NOT ({FEE_SPLIT})) half\n"
        "JOIN attribution_ingestrun run ON",
    )
    return sql


CREATE_VIEW = _view()
CREATE_VIEW_1_3 = _previous.CREATE_VIEW_1_3


class Migration(migrations.Migration):
    dependencies = [("attribution", "0028_overview_data_version_price_cards")]

    operations = [
        migrations.RunSQL(
            "DROP VIEW IF EXISTS focus_line_items_1_3; DROP VIEW IF EXISTS focus_line_items;"
            f"{CREATE_VIEW}; {CREATE_VIEW_1_3};",
            reverse_sql=(
                "DROP VIEW IF EXISTS focus_line_items_1_3; DROP VIEW IF EXISTS focus_line_items;"
                f"{_previous.CREATE_VIEW}; {_previous.CREATE_VIEW_1_3};"
            ),
        )
    ]
