"""FOCUS cost rules per provider, in one place, so finance can read and check them.

Every parser calls these functions; nothing else decides BilledCost, EffectiveCost or
ChargeCategory. Each rule has a test in tests/attribution/test_ingest_mapping.py.

AWS (CUR 2.0 and legacy CUR; column names as in CUR 2.0 / Athena)
------------------------------------------------------------------
BilledCost is `line_item_unblended_cost` for every line item type, so the sum over a period equals
the invoice. EffectiveCost follows AWS's published amortization, the CASE expression of the
"amortized cost" queries in the AWS CUR Query Library (AWS Well-Architected Labs,
"300_CUR_Queries", and the CUR user guide pages on Savings Plans and reservation columns:
docs.aws.amazon.com/cur/latest/userguide/cur-sp.html, .../reservation-columns.html):

    line item type            EffectiveCost                                        ChargeCategory
    Usage                     unblended                                            Usage
    DiscountedUsage           reservation_effective_cost                           Usage
    SavingsPlanCoveredUsage   savings_plan_savings_plan_effective_cost             Usage
    SavingsPlanNegation       0 (it cancels the covered usage's on-demand charge)  Usage
    SavingsPlanUpfrontFee     0 (amortized into covered usage)                     Purchase
    SavingsPlanRecurringFee   savings_plan_total_commitment_to_date
                              - savings_plan_used_commitment (the unused part)     Purchase
    RIFee                     reservation_unused_amortized_upfront_fee_for_billing_period
                              + reservation_unused_recurring_fee (the unused part) Purchase
    Fee with a reservation    0 (an RI's upfront payment: amortized into covered  Purchase
      or savings plan ARN       usage and the RIFee's unused part)
    Fee (other)               unblended                                            Purchase
    Tax                       unblended                                            Tax
    Credit, Refund            unblended                                            Credit
    anything else             unblended (BundledDiscount, EdpDiscount, ...)       Adjustment

FOCUS 1.2 requires EffectiveCost = 0 on a Purchase (EffectiveCost-C-005: the purchase reaches
EffectiveCost through the usage it covers) and shows an unused commitment as a Usage charge with
CommitmentDiscountStatus "Unused" (the spec's zero-utilization example). CUR carries the unused
part of a reservation or savings plan on the recurring fee line itself, so a RIFee or
SavingsPlanRecurringFee whose unused part is not 0 is that Usage charge (status Unused, BilledCost the
fee as invoiced, EffectiveCost the unused part); with nothing unused it stays a Purchase with
EffectiveCost 0. An upfront reservation payment is a `Fee` line carrying the reservation ARN: the
purchase of a commitment, so its EffectiveCost is 0 as well (its amount reaches EffectiveCost through
reservation_effective_cost on the DiscountedUsage it covers and through the RIFee's unused upfront
part); a Fee without a commitment ARN (a support or registration fee) keeps its unblended cost.
For the recurring fees totals are unchanged (only the category differs); an upfront fee's amount
leaves EffectiveCost, where the usage it covers already counts it. InvoiceId is
`bill_invoice_id` ("Estimated" or empty until the invoice is issued -> null).

Google Cloud (BigQuery detailed/standard export)
-----------------------------------------------
BilledCost = EffectiveCost = cost + sum(credits.amount) (credits are negative). ListCost =
cost_at_list when the export has it. One line item per export row, so row counts reconcile; the
credits stay inside the row. ChargeCategory from cost_type: regular -> Usage, tax -> Tax,
adjustment -> Adjustment, rounding_error -> Adjustment; a row with `adjustment_info` (Google's
correction of earlier usage) has ChargeClass Correction.

A committed use discount is billed as an hourly fee row of its own (sku.description "Commitment
v1: ...", "Commitment - dollar based v1: ..."; the detailed export names the commitment in
`subscription.instance_id`), and the usage it covers carries a credit that offsets its cost. The
fee row stays a Usage charge with the fee as BilledCost and EffectiveCost (FOCUS requires
EffectiveCost 0 on a Purchase, and no other row carries the fee's amount: the covered usage nets to
0), with ChargeFrequency Recurring and the commitment's CommitmentDiscount* columns; it consumes none
of the commitment itself (CommitmentDiscountQuantity 0, status Used), the covered usage rows carry
what is consumed. Totals are unchanged.

Azure (cost details, EA and MCA, actual and amortized datasets)
---------------------------------------------------------------
Cost column by schema: costInBillingCurrency / CostInBillingCurrency (MCA, EA v2), Cost (EA),
PreTaxCost (legacy pay-as-you-go). Rules from Microsoft's "Convert Cost Management data to FOCUS"
(learn.microsoft.com/cloud-computing/finops/focus/convert):

    BilledCost     = cost, except 0 for commitment usage (ChargeType Usage with PricingModel
                     Reservation or SavingsPlan) and unused commitment (UnusedReservation,
                     UnusedSavingsPlan): those amounts are amortizations of a purchase that is
                     billed on its own row.
    EffectiveCost  = cost, except 0 for commitment purchases and refunds (ChargeType Purchase or
                     Refund with PricingModel Reservation or SavingsPlan): their cost reaches
                     EffectiveCost through the amortized usage and unused rows.
    ChargeCategory = Usage, Purchase, Credit, Tax as is; UnusedReservation/UnusedSavingsPlan ->
                     Usage; Refund -> Purchase (ChargeClass Correction); anything else Adjustment.

How the actual and amortized files of one period are combined is described in
attribution/ingest/formats/azure_cost_details.py (pairing in SQL; totals preserved exactly).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from attribution.choices import ChargeCategory

ZERO = Decimal("0.0000000000")

# --- AWS ------------------------------------------------------------------------------------------

AWS_USAGE_TYPES = frozenset({"Usage", "DiscountedUsage", "SavingsPlanCoveredUsage", "SavingsPlanNegation"})


def aws_charge_category(line_item_type: str) -> str:
    if line_item_type in AWS_USAGE_TYPES:
        return ChargeCategory.USAGE
    if line_item_type.endswith("Fee"):
        return ChargeCategory.PURCHASE
    if line_item_type == "Tax":
        return ChargeCategory.TAX
    if line_item_type in ("Credit", "Refund"):
        return ChargeCategory.CREDIT
    return ChargeCategory.ADJUSTMENT


# EffectiveCost per line item type, as the other money columns that make it up: (sign, column).
# A type not listed keeps its unblended cost; an empty tuple means zero. Both the row and the
# batch (pyarrow) paths read this table, so there is one rule.
AWS_EFFECTIVE_COST_TERMS: dict[str, tuple[tuple[int, str], ...]] = {
    "SavingsPlanCoveredUsage": ((1, "savings_plan_savings_plan_effective_cost"),),
    "DiscountedUsage": ((1, "reservation_effective_cost"),),
    "SavingsPlanNegation": (),
    "SavingsPlanUpfrontFee": (),
    "SavingsPlanRecurringFee": (
        (1, "savings_plan_total_commitment_to_date"),
        (-1, "savings_plan_used_commitment"),
    ),
    "RIFee": (
        (1, "reservation_unused_amortized_upfront_fee_for_billing_period"),
        (1, "reservation_unused_recurring_fee"),
    ),
}


# A `Fee` line that names one of these commitments is its upfront purchase (see the table above).
AWS_COMMITMENT_ARN_COLUMNS = ("reservation_reservation_a_r_n", "savings_plan_savings_plan_a_r_n")


def aws_is_commitment_upfront_fee(*, line_item_type: str, commitment_arn: str) -> bool:
    """An upfront commitment payment (RI upfront fee): a Purchase with EffectiveCost 0 in FOCUS."""
    return line_item_type == "Fee" and bool(commitment_arn.strip())


def aws_effective_cost(
    *,
    line_item_type: str,
    unblended_cost: Decimal,
    amount: Callable[[str], Decimal],
    commitment_arn: str = "",
) -> Decimal:
    """EffectiveCost of one CUR line item; `amount(column)` reads another money column of the row
    (CUR 2.0 names), so only the columns a rule needs are read. `commitment_arn` is the row's
    reservation or savings plan ARN (an upfront RI fee has one)."""
    if aws_is_commitment_upfront_fee(line_item_type=line_item_type, commitment_arn=commitment_arn):
        return ZERO
    terms = AWS_EFFECTIVE_COST_TERMS.get(line_item_type)
    if terms is None:
        return unblended_cost
    total = ZERO
    for sign, column in terms:
        total = total + amount(column) if sign > 0 else total - amount(column)
    return total


def aws_effective_cost_batch(*, line_item_type, unblended_cost, amount, commitment_arn=None):
    """The same rule over pyarrow arrays: `amount(column)` returns (decimal array, unreadable mask),
    `commitment_arn` the rows' reservation or savings plan ARN (string array, or None).
    Returns (EffectiveCost array, mask of rows whose needed column was unreadable)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    effective = unblended_cost
    if commitment_arn is not None:
        upfront = pc.and_(
            pc.equal(line_item_type, "Fee"), pc.not_equal(pc.utf8_trim_whitespace(commitment_arn), "")
        )
        effective = pc.if_else(upfront, pa.scalar(0, unblended_cost.type), effective)
    unreadable = pa.array([False] * len(unblended_cost))
    for kind, terms in AWS_EFFECTIVE_COST_TERMS.items():
        rows = pc.equal(line_item_type, kind)
        if not pc.any(rows).as_py():
            continue
        total = pa.repeat(pa.scalar(0, unblended_cost.type), len(unblended_cost))
        for sign, column in terms:
            values, bad = amount(column)
            total = pc.add(total, values) if sign > 0 else pc.subtract(total, values)
            total = pc.cast(total, unblended_cost.type)
            unreadable = pc.or_(unreadable, pc.and_(rows, bad))
        effective = pc.if_else(rows, total, effective)
    return effective, unreadable


AWS_RECURRING_COMMITMENT_FEES = frozenset({"RIFee", "SavingsPlanRecurringFee"})


def aws_is_unused_commitment(*, line_item_type: str, effective_cost: Decimal) -> bool:
    """A recurring commitment fee that carries unused commitment: a Usage charge in FOCUS."""
    return line_item_type in AWS_RECURRING_COMMITMENT_FEES and effective_cost != 0


# FOCUS 1.2 conditional columns from CUR (ListUnitPrice = pricing_public_on_demand_rate; the rest here).
# ContractedUnitPrice is the price before commitment discounts: CUR's unblended rate is that price on
# plain and savings-plan-covered usage (the plan's discount is on the SavingsPlanNegation line); on
# reservation-discounted usage it is the reservation rate (0), so those rows keep no contracted price.
AWS_CONTRACTED_RATE_TYPES = frozenset({"Usage", "SavingsPlanCoveredUsage"})
# Reservations are commitments of instance hours: CommitmentDiscountQuantity in Hours, the hours
# used (DiscountedUsage), left unused (an RIFee with unused reservation, a Usage charge in FOCUS) or
# reserved for the period (a fully used RIFee, the recurring purchase).
AWS_RESERVATION_UNIT = "Hours"
AWS_COMMITMENT_QUANTITY_COLUMNS = {
    "DiscountedUsage": "line_item_usage_amount",
    "RIFee unused": "reservation_unused_quantity",
    "RIFee": "reservation_total_reserved_units",
}
AWS_SKU_PRICE_DETAIL_COLUMNS = {
    "x_PricingTerm": "pricing_term",
    "x_OfferingClass": "pricing_offering_class",
    "x_PurchaseOption": "pricing_purchase_option",
    "x_LeaseContractLength": "pricing_lease_contract_length",
}


# Savings plans are commitments of spend: CommitmentDiscountQuantity in the billing currency (the
# spec's unit for spend-based commitments), the amount of the commitment each row accounts for.
AWS_SAVINGS_PLAN_TYPES = frozenset(
    {"SavingsPlanCoveredUsage", "SavingsPlanNegation", "SavingsPlanRecurringFee", "SavingsPlanUpfrontFee"}
)


# Purchases of a commitment, whose list and contracted price is the fee's own rate.
AWS_COMMITMENT_FEES = AWS_RECURRING_COMMITMENT_FEES | {"SavingsPlanUpfrontFee"}


def aws_savings_plan_quantity(
    *,
    line_item_type: str,
    unused: bool,
    effective_cost: Decimal,
    unblended_cost: Decimal,
    commitment: Decimal | None,
) -> Decimal | None:
    """CommitmentDiscountQuantity of a savings plan row, in the billing currency:
    covered usage, the commitment it used (savings_plan_savings_plan_effective_cost, its
    EffectiveCost); a recurring fee with unused commitment (a Usage charge, status Unused), the unused
    amount (its EffectiveCost); a fully used recurring fee (the purchase), the commitment of its charge
    period (`commitment` = savings_plan_total_commitment_to_date); an upfront fee, the amount paid;
    the negation line, 0 (its covered usage row already counts what was used)."""
    if line_item_type == "SavingsPlanCoveredUsage" or (
        line_item_type == "SavingsPlanRecurringFee" and unused
    ):
        return effective_cost
    if line_item_type == "SavingsPlanRecurringFee":
        return commitment
    if line_item_type == "SavingsPlanNegation":
        return ZERO
    if line_item_type == "SavingsPlanUpfrontFee":
        return unblended_cost
    return None


def aws_derived_prices(
    *,
    line_item_type: str,
    list_unit_price: Decimal | None,
    contracted_unit_price: Decimal | None,
    list_cost: Decimal | None,
    unblended_cost: Decimal,
    unblended_rate: Decimal | None,
    usage_amount: Decimal | None,
) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    """(ListUnitPrice, ContractedUnitPrice, ContractedCost). The costs decide: a rate CUR states is
    kept where it gives its cost back (ListUnitPrice x usage = pricing_public_on_demand_cost; on Usage
    and SavingsPlanCoveredUsage, unblended rate x usage = unblended cost), else the price the cost
    implies replaces it, or stands in for a rate CUR leaves empty (conditional.unit_price_for_cost;
    CUR rounds its rates, and some exports state a rate that is not the one their cost was charged
    at). Where CUR gives no rate:

    - ListUnitPrice without pricing_public_on_demand_rate: pricing_public_on_demand_cost over the
      usage amount; a commitment fee (RIFee, SavingsPlanRecurringFee, SavingsPlanUpfrontFee) has no
      public cost, its list price is the fee's own rate (its ListCost is the fee as billed).
    - ContractedUnitPrice of a commitment fee: the fee's rate (ContractedCost = the fee).
    - Reservation-covered usage (DiscountedUsage): its unblended rate is the reservation's, after the
      commitment discount; the price before it is the on-demand one, so ContractedCost is the public
      on-demand cost and ContractedUnitPrice the public rate (or that cost over the usage amount).
      CUR carries no negotiated rate for covered usage (an EDP discount shows on its own lines).
    - The SavingsPlanNegation line: its rate is the on-demand rate it cancels (line_item_unblended_rate,
      else the list price); its ContractedCost is that price x its usage amount (0 when the line carries
      no usage), not the negated amount, which only moves the covered usage's cost to the plan.
    A price derived from a cost is kept only when it reproduces that cost
    (conditional.unit_price_from_cost); ContractedCost None means the view's rule (the billed cost)."""
    from attribution.focus.conditional import unit_price_for_cost, unit_price_from_cost

    commitment_fee = line_item_type in AWS_COMMITMENT_FEES
    if list_cost is not None:
        list_unit_price = unit_price_for_cost((list_unit_price,), cost=list_cost, quantity=usage_amount)
    elif list_unit_price is None and commitment_fee:
        list_unit_price = unit_price_from_cost(unblended_cost, usage_amount)
    contracted_cost = None
    if line_item_type in AWS_CONTRACTED_RATE_TYPES:
        contracted_unit_price = unit_price_for_cost(
            (contracted_unit_price,), cost=unblended_cost, quantity=usage_amount
        )
    elif contracted_unit_price is None:
        if commitment_fee:
            contracted_unit_price = unit_price_from_cost(unblended_cost, usage_amount)
        elif line_item_type == "DiscountedUsage" and list_cost is not None:
            contracted_cost = list_cost
            contracted_unit_price = unit_price_for_cost(
                (list_unit_price,), cost=list_cost, quantity=usage_amount
            )
        elif line_item_type == "SavingsPlanNegation":
            rate = unblended_rate if unblended_rate is not None and unblended_rate >= 0 else list_unit_price
            if rate is not None and usage_amount is not None:
                contracted_unit_price = rate
                contracted_cost = (rate * usage_amount).quantize(ZERO)
    return list_unit_price, contracted_unit_price, contracted_cost


# Line item types whose prices aws_derived_prices may fill.
AWS_DERIVED_PRICE_TYPES = AWS_COMMITMENT_FEES | {"SavingsPlanNegation", "DiscountedUsage"}


def aws_commitment_quantity_column(*, line_item_type: str, unused: bool) -> str:
    """The CUR column holding CommitmentDiscountQuantity of a reservation row ("" for none)."""
    if line_item_type == "RIFee" and unused:
        return AWS_COMMITMENT_QUANTITY_COLUMNS["RIFee unused"]
    return AWS_COMMITMENT_QUANTITY_COLUMNS.get(line_item_type, "")


def aws_sku_price_details(text: Callable[[str], str]) -> str:
    from attribution.focus.conditional import price_details

    return price_details({key: text(column) for key, column in AWS_SKU_PRICE_DETAIL_COLUMNS.items()})


def aws_invoice_id(value: str | None) -> str:
    value = (value or "").strip()
    return "" if value.lower() in ("", "estimated") else value


def aws_charge_frequency(line_item_type: str) -> str:
    if line_item_type in AWS_USAGE_TYPES:
        return "Usage-Based"
    if line_item_type in ("RIFee", "SavingsPlanRecurringFee"):
        return "Recurring"
    if line_item_type in ("Fee", "SavingsPlanUpfrontFee"):
        return "One-Time"
    return ""


# --- Google Cloud ---------------------------------------------------------------------------------

_GCP_COST_TYPES = {
    "regular": ChargeCategory.USAGE,
    "tax": ChargeCategory.TAX,
    "adjustment": ChargeCategory.ADJUSTMENT,
    "rounding_error": ChargeCategory.ADJUSTMENT,
}


def gcp_charge_category(cost_type: str) -> str:
    return _GCP_COST_TYPES.get((cost_type or "regular").strip().lower(), ChargeCategory.ADJUSTMENT)


def gcp_billed_cost(*, cost: Decimal, credit_amounts: list[Decimal]) -> Decimal:
    return cost + sum(credit_amounts, ZERO)


# Committed use discounts reach a usage row as a credit (Cloud Billing export, `credits.type`):
# resource-based CUDs (COMMITTED_USAGE_DISCOUNT) commit to an amount of usage, spend-based CUDs
# (COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE in the legacy model, FEE_UTILIZATION_OFFSET in the model of
# July 2025) to an amount of spend. The row's FOCUS CommitmentDiscount* columns come from that credit.
GCP_COMMITMENT_CREDIT_TYPES = {
    "COMMITTED_USAGE_DISCOUNT": "Usage",
    "COMMITTED_USAGE_DISCOUNT_DOLLAR_BASE": "Spend",
    "FEE_UTILIZATION_OFFSET": "Spend",
}
GCP_COMMITMENT_TYPE = "Committed Use Discount"


def gcp_commitment_credit(credits: list[dict], *, amounts: list[Decimal]) -> dict | None:
    """The committed use discount credit of a row (the largest, if several), as
    {id, name, category, amount}; None when the row has none. Exports from before `credits.type`
    (July 2020) name a CUD credit "Committed Usage Discount: ..." / "Committed use discount: ...".
    `amounts` are the credits' parsed amounts, in the same order."""
    found = None
    for credit, amount in zip(credits, amounts, strict=True):
        kind = str(credit.get("type") or "").strip().upper()
        name = str(credit.get("full_name") or credit.get("name") or "").strip()
        category = GCP_COMMITMENT_CREDIT_TYPES.get(kind)
        if (
            category is None
            and not kind
            and name.lower().startswith(("committed usage discount", "committed use discount"))
        ):
            category = "Spend" if "dollar" in name.lower() else "Usage"
        if category is None or (found is not None and abs(amount) <= abs(found["amount"])):
            continue
        identifier = str(credit.get("id") or "").strip() or name
        found = {"id": identifier, "name": name or identifier, "category": category, "amount": amount}
    return found


def gcp_commitment_columns(
    commitment: dict | None,
    *,
    cost: Decimal,
    pricing_quantity: Decimal | None,
    pricing_unit: str,
    currency: str,
) -> dict:
    """FOCUS CommitmentDiscount* columns of a usage row covered by a committed use discount.

    CommitmentDiscountQuantity is what the row consumed of the commitment: for a resource-based CUD
    the covered part of the pricing quantity (pricing quantity x credit / cost; the whole quantity
    when the credit offsets the whole cost), in the pricing unit; for a spend-based CUD the amount
    of the credit, in the billing currency (the spec's unit for spend-based commitments).
    """
    if commitment is None:
        return {"commitment_discount_id": ""}
    columns = {
        "commitment_discount_id": commitment["id"],
        "commitment_discount_name": commitment["name"],
        "commitment_discount_category": commitment["category"],
        "commitment_discount_type": GCP_COMMITMENT_TYPE,
    }
    covered = abs(commitment["amount"])
    if commitment["category"] == "Spend":
        return columns | {"commitment_discount_quantity": covered, "commitment_discount_unit": currency}
    if pricing_quantity is None or not pricing_unit or cost <= 0:
        return columns
    share = min(covered / cost, Decimal(1))
    quantity = (pricing_quantity * share).quantize(ZERO)
    return columns | {"commitment_discount_quantity": quantity, "commitment_discount_unit": pricing_unit}


# Google rounds `cost` and `cost_at_list` to micro-units of the billing currency.
GCP_COST_HALF_MICRO = Decimal("0.0000005")
_UNIT_PRICE_PLACES = Decimal("0.0000000001")  # unit prices and quantities are stored with 10 places
GCP_COMMITMENT_FEE_PREFIX = "commitment"


def _half_last_place(value: Decimal) -> Decimal:
    """Half a unit in the last written place of a number the export may have rounded (0 for an
    integer): how far the value as written can be from the one Google priced."""
    exponent = value.as_tuple().exponent
    return Decimal(5).scaleb(exponent - 1) if isinstance(exponent, int) and exponent < 0 else Decimal(0)


def gcp_unit_price(
    *,
    cost: Decimal | None,
    quantity: Decimal | None,
    stated: list[Decimal | None],
    unit_quantity: Decimal | None,
) -> tuple[Decimal | None, Decimal | None]:
    """(unit price, cost) of a Google Cloud row for FOCUS: the price of one pricing unit and the
    cost restated as that price x the quantity, so that unit price x PricingQuantity = cost.

    The export rounds the cost to micro-units (and may round usage.amount_in_pricing_units in its
    last place), so a stated price (`price.effective_price`, `price.list_price`: the price of
    `price.pricing_unit_quantity` units, or of one) gives the cost back only within that rounding.
    The first stated price that does is the row's price, and the cost becomes price x quantity
    (10 places; it differs from the rounded cost by less than half a micro-unit). A row whose stated
    price does not give its cost (usage across pricing tiers, a free tier partly used, no price in
    the export) gets the price its cost implies (cost / quantity, 10 places) when that price gives
    the cost back within the rounding. Else no price: (None, cost) as exported."""
    if cost is None:
        return None, None
    divisor = unit_quantity if unit_quantity is not None and unit_quantity > 0 else Decimal(1)
    candidates = []
    for price in stated:
        if price is None or price < 0:
            continue
        candidates.append((price / divisor).quantize(_UNIT_PRICE_PLACES))
        if divisor != 1:
            candidates.append(price.quantize(_UNIT_PRICE_PLACES))
    if quantity is None:
        return (candidates[0] if candidates else None), cost
    stored = quantity.quantize(_UNIT_PRICE_PLACES)
    if stored != 0:
        implied = (cost / stored).quantize(_UNIT_PRICE_PLACES)
        if implied >= 0:
            candidates.append(implied)
    rounding = max(_half_last_place(quantity), _UNIT_PRICE_PLACES / 2)
    for price in candidates:
        exact = price * stored
        if abs(exact - cost) <= GCP_COST_HALF_MICRO + price * rounding:
            return price, exact.quantize(_UNIT_PRICE_PLACES)
    return None, cost


def gcp_is_commitment_fee(*, cost_type: str, sku_description: str, subscription_id: str) -> bool:
    """A committed use discount's fee row (Google's own query for commitment fees:
    LOWER(sku.description) LIKE "commitment%"; the detailed export also names its subscription)."""
    if (cost_type or "regular").strip().lower() != "regular":
        return False
    return bool(subscription_id) or sku_description.strip().lower().startswith(GCP_COMMITMENT_FEE_PREFIX)


def gcp_commitment_fee_columns(
    *, subscription_id: str, sku_id: str, sku_description: str, project_id: str, region: str,
    pricing_unit: str, currency: str,
) -> dict:  # fmt: skip
    """CommitmentDiscount* columns of a commitment fee row. The id is the detailed export's
    `subscription.instance_id`; the standard export has none, and the fee row is identified by
    what Google bills it per: the project, the region and the fee SKU (one SKU per kind of
    commitment, region and term). Spend-based ("dollar based") fees are measured in the currency,
    resource-based ones in the pricing unit; the row consumes none of the commitment (0)."""
    spend = "dollar" in sku_description.lower() or "spend" in sku_description.lower()
    identifier = subscription_id or "/".join(part for part in (project_id, region, sku_id) if part)
    return {
        "commitment_discount_id": identifier,
        "commitment_discount_name": sku_description.strip() or identifier,
        "commitment_discount_category": "Spend" if spend else "Usage",
        "commitment_discount_type": GCP_COMMITMENT_TYPE,
        "commitment_discount_quantity": ZERO,
        "commitment_discount_unit": currency if spend else pricing_unit,
    }


_GCP_DYNAMIC_SKU = ("spot preemptible", "preemptible")


def gcp_pricing_category(*, cost_type: str, sku_description: str, covered: bool, fee: bool) -> str:
    """Committed for usage a committed use discount covers, Dynamic for Spot/preemptible VMs (Google
    sets and changes those prices), Standard for other usage and for commitment fees; "" (the
    view's rule) for tax, adjustments and rounding."""
    if (cost_type or "regular").strip().lower() != "regular":
        return ""
    if covered and not fee:
        return "Committed"
    description = sku_description.strip().lower()
    if any(word in description for word in _GCP_DYNAMIC_SKU):
        return "Dynamic"
    return "Standard"


def gcp_sku_price_id(*, sku_id: str, tier_start_amount: Decimal | None) -> str:
    """A Google SKU price is the SKU's price in one pricing tier: the SKU id, with the tier's start
    amount when it is not the first tier ("" without a SKU)."""
    if not sku_id:
        return ""
    if tier_start_amount is None or tier_start_amount == 0:
        return sku_id
    return f"{sku_id}/tier/{format(tier_start_amount.normalize(), 'f')}"


# --- Azure ----------------------------------------------------------------------------------------

_AZURE_COMMITMENT_MODELS = frozenset({"reservation", "savingsplan"})
AZURE_UNUSED_TYPES = frozenset({"unusedreservation", "unusedsavingsplan"})


def azure_is_commitment_purchase(*, charge_type: str, pricing_model: str) -> bool:
    return charge_type.lower() in ("purchase", "refund") and pricing_model.lower() in _AZURE_COMMITMENT_MODELS


def azure_is_amortized_commitment(*, charge_type: str, pricing_model: str) -> bool:
    """Commitment usage or unused commitment: an amortization, not a billed amount."""
    kind = charge_type.lower()
    if kind in AZURE_UNUSED_TYPES:
        return True
    return kind == "usage" and pricing_model.lower() in _AZURE_COMMITMENT_MODELS


def azure_costs(*, cost: Decimal, charge_type: str, pricing_model: str) -> tuple[Decimal, Decimal]:
    """(BilledCost, EffectiveCost) of one row when a period has one dataset (actual or amortized)."""
    billed = (
        ZERO if azure_is_amortized_commitment(charge_type=charge_type, pricing_model=pricing_model) else cost
    )
    effective = (
        ZERO if azure_is_commitment_purchase(charge_type=charge_type, pricing_model=pricing_model) else cost
    )
    return billed, effective


# A reservation bought for a term of months is paid at once (Frequency OneTime) or in equal monthly
# parts (Recurring): a year is 8,760 hours, so each month's payment buys 730 hours per unit.
AZURE_HOURS_PER_TERM_MONTH = Decimal(730)


def azure_reservation_purchase_hours(
    *, quantity: Decimal | None, unit: str, term: str, frequency: str
) -> Decimal | None:
    """CommitmentDiscountQuantity of a reservation purchase row: the hours it buys, not the export's
    Quantity (the number of reservations, 1 for one VM): Quantity x 730 for a monthly payment,
    Quantity x 730 x Term (months) for a one-time one. Only for reservations metered in hours (unit
    "1 Hour", "Hours"); a purchase in any other unit, or without a term, keeps its Quantity."""
    hourly = unit.strip().lower() in ("1 hour", "hour", "hours", "1 hours")
    if quantity is None or not hourly:
        return quantity
    months = Decimal(1)
    if frequency.strip().lower() == "onetime":
        try:
            months = Decimal(int(term.strip()))
        except ValueError:
            return quantity
    return quantity * AZURE_HOURS_PER_TERM_MONTH * months


def azure_charge_category(charge_type: str) -> str:
    kind = (charge_type or "Usage").strip().lower()
    if kind in ("usage", "unusedreservation", "unusedsavingsplan"):
        return ChargeCategory.USAGE
    if kind in ("purchase", "refund"):
        return ChargeCategory.PURCHASE
    if kind == "credit":
        return ChargeCategory.CREDIT
    if kind == "tax":
        return ChargeCategory.TAX
    return ChargeCategory.ADJUSTMENT


def azure_charge_class(charge_type: str) -> str:
    return "Correction" if (charge_type or "").strip().lower() == "refund" else ""


def azure_charge_frequency(frequency: str) -> str:
    return {"onetime": "One-Time", "recurring": "Recurring", "usagebased": "Usage-Based"}.get(
        (frequency or "").strip().lower(), ""
    )
