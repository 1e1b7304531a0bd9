"""Lease grants commit without waiting for the WAL flush (see the comment in the function)."""

from django.db import migrations

CREATE = r"""
CREATE OR REPLACE FUNCTION governance_lease_grant(
    p_pool bigint, p_holder text, p_requested numeric, p_renew bigint, p_used numeric,
    p_limit numeric, p_blocked boolean, p_now timestamptz, p_expires timestamptz
) RETURNS TABLE (lease_id bigint, granted numeric, remaining numeric)
LANGUAGE plpgsql AS $$
DECLARE
    pool governance_leasepool%ROWTYPE;
    released numeric := 0;
    renewed numeric := 0;
    grant_amount numeric := 0;
    new_id bigint;
BEGIN
    -- The commit does not wait for the WAL flush (this transaction only): grants of one pool are
    -- serial, so a flush per grant would cap them at the disk's flush rate. A crash can forget the
    -- grants of the last moments; they are bounded by the lease size and expire with their leases.
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT * INTO pool FROM governance_leasepool WHERE id = p_pool FOR UPDATE;
    WITH expired AS (
        UPDATE governance_lease SET closed_at = p_now
        WHERE pool_id = p_pool AND closed_at IS NULL AND expires_at <= p_now
        RETURNING governance_lease.granted
    ) SELECT COALESCE(SUM(expired.granted), 0) INTO released FROM expired;
    IF p_renew IS NOT NULL THEN
        WITH closing AS (
            UPDATE governance_lease SET closed_at = p_now, used = p_used
            WHERE id = p_renew AND pool_id = p_pool AND closed_at IS NULL
            RETURNING governance_lease.granted
        ) SELECT COALESCE(SUM(closing.granted), 0) INTO renewed FROM closing;
        pool.consumed := pool.consumed + COALESCE(p_used, 0);
    END IF;
    pool.outstanding := pool.outstanding - released - renewed;
    IF p_blocked THEN
        grant_amount := 0;
    ELSIF p_limit IS NULL THEN
        grant_amount := p_requested;
    ELSE
        grant_amount := GREATEST(0, LEAST(p_requested,
            p_limit - GREATEST(pool.spend_known, pool.consumed) - pool.outstanding));
    END IF;
    IF p_requested > 0 THEN
        INSERT INTO governance_lease (pool_id, holder, requested, granted, used, expires_at, closed_at, created_at)
        VALUES (p_pool, p_holder, p_requested, grant_amount, NULL, p_expires, NULL, p_now)
        RETURNING id INTO new_id;
        pool.outstanding := pool.outstanding + grant_amount;
        pool.granted_total := pool.granted_total + grant_amount;
    END IF;
    UPDATE governance_leasepool
    SET outstanding = pool.outstanding, consumed = pool.consumed, granted_total = pool.granted_total,
        updated_at = p_now
    WHERE id = p_pool;
    RETURN QUERY SELECT new_id, grant_amount,
        CASE WHEN p_limit IS NULL THEN NULL
             ELSE p_limit - GREATEST(pool.spend_known, pool.consumed) - pool.outstanding END;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("governance", "0005_budget_lease_grant_function")]

    # Reverting keeps the function (0004 drops it when reverted further).
    operations = [migrations.RunSQL(CREATE, migrations.RunSQL.noop)]
