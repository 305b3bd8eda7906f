-- The "is this user still allowed in?" check, sent in the same message as the request's tenant
-- transaction's BEGIN (`kloyst_db::begin_as_user`), so an authenticated request costs no extra
-- round trip for it.
--
-- An access token is a signed claim of (user, vendor, role) valid for 15 minutes; the claim may
-- be stale: the user disabled, or their role changed, since it was issued. This refuses it with
-- SQLSTATE 28000 (invalid_authorization_specification), which the application maps to 401.
--
-- It runs before BEGIN, in the message's implicit transaction, as the application role: a
-- failure then leaves the connection idle, not inside an aborted transaction block that would
-- go back to the pool. It filters by the vendor itself, as RLS is not in force yet.
CREATE FUNCTION app_assert_session(p_vendor UUID, p_user UUID, p_role TEXT) RETURNS VOID
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM 1 FROM users
     WHERE id = p_user
       AND vendor_id = p_vendor
       AND status = 'ACTIVE'
       AND role = p_role;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the session''s user is no longer active in this vendor with this role'
            USING ERRCODE = 'invalid_authorization_specification';
    END IF;
END
$$;
