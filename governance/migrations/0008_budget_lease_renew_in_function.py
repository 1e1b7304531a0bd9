"""A budget lease renewal in the same single round trip: the function checks the renewed lease
(that it exists, is this holder's and belongs to this period's pool) instead of a separate read
before it. It answers `renew_status` so that the caller can refuse (unknown) or take the slow path
(a lease of another pool) without anything having been written."""

from django.db import migrations

OLD_SIGNATURE = "bigint, timestamptz, text, numeric, bigint, numeric, timestamptz, timestamptz"

CREATE = r"""
CREATE FUNCTION governance_budget_lease_grant(
    p_budget bigint, p_window_start timestamptz, p_holder text, p_requested numeric, p_renew bigint,
    p_used numeric, p_now timestamptz, p_expires timestamptz
) RETURNS TABLE (
    pool_id bigint, lease_id bigint, granted numeric, remaining numeric, hard_limit numeric,
    blocked boolean, reason text, window_end timestamptz, renew_status text
)
LANGUAGE plpgsql AS $$
DECLARE
    v_pool bigint;
    v_window_end timestamptz;
    v_renew_pool bigint;
    v_limit numeric;
    v_reason text;
    v_grant record;
BEGIN
    SELECT p.id, p.window_end INTO v_pool, v_window_end FROM governance_leasepool p
    WHERE p.budget_id = p_budget AND p.window_start = p_window_start;
    IF v_pool IS NULL THEN
        RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::numeric, NULL::numeric, NULL::numeric,
            false, NULL::text, NULL::timestamptz, ''::text;
        RETURN;
    END IF;
    IF p_renew IS NOT NULL THEN
        -- Only the holder may return its lease. Checked before the pool is locked, and nothing is
        -- written when the check fails: the caller answers 400 (unknown) or returns the lease to
        -- its own pool on the slow path (a lease of an earlier period).
        SELECT l.pool_id INTO v_renew_pool FROM governance_lease l
        WHERE l.id = p_renew AND l.holder = p_holder;
        IF v_renew_pool IS NULL OR v_renew_pool <> v_pool THEN
            RETURN QUERY SELECT v_pool, NULL::bigint, NULL::numeric, NULL::numeric, NULL::numeric,
                false, NULL::text, v_window_end,
                CASE WHEN v_renew_pool IS NULL THEN 'unknown' ELSE 'other_pool' END;
            RETURN;
        END IF;
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
        v_reason IS NOT NULL, COALESCE(v_reason, ''), v_window_end, ''::text;
END
$$;
"""

# The return type changes, so CREATE OR REPLACE cannot be used: drop and create. Reverting restores
# 0005's function (its migration text is the source of truth for it).
FORWARD = f"DROP FUNCTION IF EXISTS governance_budget_lease_grant({OLD_SIGNATURE});\n{CREATE}"


def _backward_sql() -> str:
    from importlib import import_module

    previous = import_module("governance.migrations.0005_budget_lease_grant_function")
    return f"DROP FUNCTION IF EXISTS governance_budget_lease_grant({OLD_SIGNATURE});\n{previous.CREATE}"


class Migration(migrations.Migration):
    dependencies = [("governance", "0007_role_permissions")]

    operations = [migrations.RunSQL(FORWARD, _backward_sql())]
