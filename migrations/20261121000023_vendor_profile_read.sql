-- GET /v1/vendor/me in one prepared round trip: the session check, the tenant settings of
-- kloyst_db::begin_as_user (read-only, role kloyst_tenant, app.vendor_id — all transaction-local,
-- so nothing outlives the call's implicit transaction on a pooled connection) and the read,
-- with its plans cached by PL/pgSQL. RLS applies to the read: it runs as kloyst_tenant.
CREATE FUNCTION app_vendor_profile(p_vendor UUID, p_user UUID, p_role TEXT) RETURNS SETOF vendors
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM app_assert_session(p_vendor, p_user, p_role);
    PERFORM set_config('transaction_read_only', 'on', true),
            set_config('role', 'kloyst_tenant', true),
            set_config('app.vendor_id', p_vendor::text, true);
    RETURN QUERY SELECT * FROM vendors WHERE id = p_vendor;
END
$$;
