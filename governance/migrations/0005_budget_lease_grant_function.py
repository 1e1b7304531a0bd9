"""A budget lease in one statement: the pool of the period, the budget's block limit and whether a
block is in force are read inside the database and the grant made by governance_lease_grant, so a
lease request costs one round trip once its pool exists."""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION governance_budget_lease_grant(
    p_budget bigint, p_window_start timestamptz, p_holder text, p_requested numeric, p_renew bigint,
    p_used numeric, p_now timestamptz, p_expires timestamptz
) RETURNS TABLE (
    pool_id bigint, lease_id bigint, granted numeric, remaining numeric, hard_limit numeric,
    blocked boolean, reason text, window_end timestamptz
)
LANGUAGE plpgsql AS $$
DECLARE
    v_pool bigint;
    v_window_end timestamptz;
    v_limit numeric;
    v_reason text;
    v_grant record;
BEGIN
    SELECT p.id, p.window_end INTO v_pool, v_window_end FROM governance_leasepool p
    WHERE p.budget_id = p_budget AND p.window_start = p_window_start;
    IF v_pool IS NULL THEN
        RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::numeric, NULL::numeric, NULL::numeric,
            false, NULL::text, NULL::timestamptz;
        RETURN;
    END IF;
    -- The lowest block threshold on actual spend (a percent of the amount, to the cent, or an amount).
    SELECT MIN(COALESCE(t.amount, round(b.amount * t.percent / 100, 2))) INTO v_limit
    FROM governance_budgetthreshold t JOIN governance_budget b ON b.id = t.budget_id
    WHERE t.budget_id = p_budget AND t.basis = 'actual' AND COALESCE(NULLIF(t.action, ''), b.action) = 'block';
    SELECT e.reason INTO v_reason FROM governance_budgetenforcement e
    WHERE e.budget_id = p_budget AND e.lifted_at IS NULL AND e.action = 'block'
    ORDER BY e.applied_at LIMIT 1;
    SELECT * INTO v_grant FROM governance_lease_grant(
        v_pool, p_holder, p_requested, p_renew, p_used, v_limit, v_reason IS NOT NULL, p_now, p_expires
    );
    RETURN QUERY SELECT v_pool, v_grant.lease_id, v_grant.granted, v_grant.remaining, v_limit,
        v_reason IS NOT NULL, COALESCE(v_reason, ''), v_window_end;
END
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS governance_budget_lease_grant(
    bigint, timestamptz, text, numeric, bigint, numeric, timestamptz, timestamptz
);
"""


class Migration(migrations.Migration):
    dependencies = [("governance", "0004_lease_grant_function")]

    operations = [migrations.RunSQL(CREATE, DROP)]
