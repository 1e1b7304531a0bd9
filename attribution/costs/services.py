"""Unit economics: effective (amortized) cost per unit of usage, per day × model × deployment.

For each (day, deployment, model, currency), the cost is the EffectiveCost that allocation put on
the deployment that day — every team's share, idle and unallocated lines of that deployment
included, because that is what serving the traffic really cost — and the usage is the gateway
usage of the deployment that day (UsageDaily, or UsageRecord when the rollup is not there yet).

One cost, two token prices: a deployment's cost is not billed per input and output token
separately, so it is split with an output:input price ratio r. With I input and O output tokens,
the input price p satisfies p·I + r·p·O = cost, so
    cost per 1M input tokens  = cost × 1e6 / (I + r·O)
    cost per 1M output tokens = r × cost per 1M input tokens
r is the deployment's own price card ratio (its latest `1m_output_tokens` / `1m_input_tokens`
cards valid on that day) when it has both; otherwise the setting
INFERENSYS_UNIT_COST_OUTPUT_INPUT_RATIO (default 1: every token costs the same). Each row records
the ratio it used and its source (price_card, setting, override); pages show it beside the figures.
Cost per 1k requests = cost × 1000 / requests (the whole cost; it is another view of the same
money, not a third share of it).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction

DEFAULT_OUTPUT_INPUT_RATIO = Decimal(1)


def output_input_ratio_default() -> Decimal:
    return Decimal(str(getattr(settings, "UNIT_COST_OUTPUT_INPUT_RATIO", DEFAULT_OUTPUT_INPUT_RATIO)))


def unit_costs_rebuild(*, days: list[dt.date], output_input_ratio: Decimal | None = None) -> int:
    """Replace the UnitCost rows of `days` (all deployments) from AllocatedCost and usage.

    `output_input_ratio` overrides both the price cards and the setting. Returns rows written.
    """
    days = sorted(set(days))
    if not days:
        return 0
    first = dt.datetime.combine(days[0], dt.time(), tzinfo=dt.UTC)
    after_last = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    params = {
        "days": days,
        "first": first,
        "after_last": after_last,
        "default_ratio": output_input_ratio_default(),
        "override_ratio": output_input_ratio,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM attribution_unitcost WHERE day = ANY(%(days)s)", params)
        cursor.execute(
            """
            WITH cost AS (
                SELECT ac.day, ac.deployment_id, COALESCE(ac.model_id, d.model_id) AS model_id,
                       d.provider, ac.billing_currency AS currency, SUM(ac.effective_cost) AS effective_cost
                FROM attribution_allocatedcost ac
                JOIN attribution_deployment d ON d.id = ac.deployment_id
                WHERE ac.day = ANY(%(days)s)
                GROUP BY 1, 2, 3, 4, 5
            ), rolled_days AS (
                SELECT DISTINCT day FROM attribution_usagedaily WHERE day = ANY(%(days)s)
            ), usage AS (
                SELECT day, deployment_id, model_id, SUM(requests) AS requests,
                       SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens
                FROM attribution_usagedaily WHERE day = ANY(%(days)s)
                GROUP BY 1, 2, 3
                UNION ALL
                SELECT (bucket_start AT TIME ZONE 'UTC')::date, deployment_id, model_id, SUM(requests),
                       SUM(input_tokens), SUM(output_tokens)
                FROM attribution_usagerecord
                WHERE bucket_start >= %(first)s AND bucket_start < %(after_last)s
                  AND (bucket_start AT TIME ZONE 'UTC')::date = ANY(%(days)s)
                  AND (bucket_start AT TIME ZONE 'UTC')::date NOT IN (SELECT day FROM rolled_days)
                GROUP BY 1, 2, 3
            ), cards AS (
                SELECT c.day, c.deployment_id,
                       (SELECT price FROM attribution_pricecard p WHERE p.deployment_id = c.deployment_id
                          AND p.unit = '1m_output_tokens' AND p.valid_from <= c.day
                          ORDER BY p.valid_from DESC LIMIT 1)
                       / NULLIF((SELECT price FROM attribution_pricecard p
                                 WHERE p.deployment_id = c.deployment_id
                                   AND p.unit = '1m_input_tokens' AND p.valid_from <= c.day
                                 ORDER BY p.valid_from DESC LIMIT 1), 0) AS ratio
                FROM (SELECT DISTINCT day, deployment_id FROM cost) c
            ), joined AS (
                -- weighted_tokens = I + r·O: the denominator of the input-token price.
                SELECT cost.*, cards.ratio AS card_ratio, COALESCE(u.requests, 0) AS requests,
                       COALESCE(u.input_tokens, 0) AS input_tokens,
                       COALESCE(u.output_tokens, 0) AS output_tokens,
                       COALESCE(%(override_ratio)s::numeric, cards.ratio,
                                %(default_ratio)s::numeric) AS ratio,
                       COALESCE(u.input_tokens, 0) + COALESCE(%(override_ratio)s::numeric, cards.ratio,
                           %(default_ratio)s::numeric) * COALESCE(u.output_tokens, 0) AS weighted_tokens
                FROM cost
                LEFT JOIN usage u USING (day, deployment_id, model_id)
                LEFT JOIN cards USING (day, deployment_id)
            )
            INSERT INTO attribution_unitcost (
                day, model_id, deployment_id, provider, currency, effective_cost, requests,
                input_tokens, output_tokens, cost_per_1m_input_tokens, cost_per_1m_output_tokens,
                cost_per_1k_requests, output_input_ratio, ratio_source)
            SELECT day, model_id, deployment_id, provider, currency, effective_cost, requests,
                   input_tokens, output_tokens,
                   round(effective_cost * 1000000 / NULLIF(weighted_tokens, 0), 10),
                   round(ratio * effective_cost * 1000000 / NULLIF(weighted_tokens, 0), 10),
                   round(effective_cost * 1000 / NULLIF(requests, 0), 10),
                   round(ratio, 12),
                   CASE WHEN %(override_ratio)s::numeric IS NOT NULL THEN 'override'
                        WHEN card_ratio IS NOT NULL THEN 'price_card' ELSE 'setting' END
            FROM joined
            """,
            params,
        )
        return cursor.rowcount
