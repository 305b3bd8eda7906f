-- Identity and tenancy: vendors (tenants), users, refresh tokens, API keys, WhatsApp accounts.

CREATE TABLE vendors (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    company_name     text NULL CHECK (length(company_name) <= 200),
    plan_type        text NOT NULL DEFAULT 'SHARED' CHECK (plan_type IN ('SHARED', 'DEDICATED')),
    status           text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'SUSPENDED', 'CLOSED')),
    settings         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    -- billing profile
    billing_email    text NULL CHECK (billing_email = lower(billing_email) AND billing_email LIKE '%_@_%'
                                      AND length(billing_email) <= 254),
    billing_address  jsonb NULL CHECK (jsonb_typeof(billing_address) = 'object'),
    gstin            text NULL CHECK (gstin ~ '^[0-9]{2}[A-Z]{5}[0-9]{4}[A-Z][1-9A-Z]Z[0-9A-Z]$'),
    -- phone parsing and display
    default_country  text NOT NULL DEFAULT 'IN' CHECK (default_country ~ '^[A-Z]{2}$'),
    time_zone        text NOT NULL DEFAULT 'Asia/Kolkata' CHECK (length(time_zone) BETWEEN 1 AND 64),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE vendors IS 'Tenants. Never deleted (trigger vendors_no_delete; set status CLOSED instead).';
COMMENT ON COLUMN vendors.gstin IS 'Indian GSTIN (15 chars, upper case). The overdraft limit lives on wallets.overdraft_limit.';
CREATE TRIGGER vendors_set_updated_at BEFORE UPDATE ON vendors
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
-- Vendors are never deleted (close them with status CLOSED). This is the RESTRICT guarantee for
-- the high-volume tenant tables that carry vendor_id without a per-row foreign key check
-- (contacts, campaign_recipients, message_logs, the audit tables).
CREATE TRIGGER vendors_no_delete BEFORE DELETE ON vendors
    FOR EACH ROW EXECUTE FUNCTION forbid_change('vendors are never deleted (set status = CLOSED)');
CREATE TRIGGER vendors_no_truncate BEFORE TRUNCATE ON vendors
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change('vendors are never deleted (set status = CLOSED)');

CREATE TABLE users (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vendor_id           uuid NULL REFERENCES vendors (id) ON DELETE RESTRICT,
    email               text NOT NULL CHECK (email = lower(email) AND email LIKE '%_@_%' AND length(email) <= 254),
    password_hash       text NULL CHECK (length(password_hash) BETWEEN 1 AND 512), -- argon2id PHC string
    name                text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    role                text NOT NULL DEFAULT 'ADMIN' CHECK (role IN ('ADMIN', 'STAFF')),
    status              text NOT NULL DEFAULT 'PENDING_VERIFICATION'
                        CHECK (status IN ('PENDING_VERIFICATION', 'ACTIVE', 'DISABLED', 'INVITED')),
    -- company name given at registration, used when verify-otp creates the vendor
    signup_company_name text NULL CHECK (length(signup_company_name) <= 200),
    email_verified_at   timestamptz NULL,
    invited_by          uuid NULL REFERENCES users (id) ON DELETE RESTRICT,
    invited_at          timestamptz NULL,
    last_login_at       timestamptz NULL,
    disabled_at         timestamptz NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_vendor_id_id_key UNIQUE (vendor_id, id),
    -- only a registration awaiting its OTP has no vendor
    CONSTRAINT users_vendor_required CHECK (status = 'PENDING_VERIFICATION' OR vendor_id IS NOT NULL),
    -- an invitee sets the password when accepting (and may be disabled before that)
    CONSTRAINT users_password_required CHECK (status IN ('INVITED', 'DISABLED') OR password_hash IS NOT NULL)
);
COMMENT ON COLUMN users.email IS 'Stored lower-cased (lower-case it in Rust before insert and lookup); unique across all vendors.';
CREATE INDEX users_vendor_created_idx ON users (vendor_id, created_at DESC, id DESC);
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- A vendor always keeps at least one ACTIVE ADMIN. The vendor row is locked first, so two
-- concurrent demotions of the last two admins serialise and the second one fails.
CREATE FUNCTION users_keep_an_active_admin() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM 1 FROM vendors WHERE id = OLD.vendor_id FOR UPDATE;
    IF NOT EXISTS (SELECT 1 FROM users
                   WHERE vendor_id = OLD.vendor_id AND role = 'ADMIN' AND status = 'ACTIVE') THEN
        RAISE EXCEPTION 'vendor % would be left without an active ADMIN', OLD.vendor_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'users_last_active_admin';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_last_active_admin
    AFTER UPDATE OF role, status, vendor_id ON users
    FOR EACH ROW
    WHEN (OLD.role = 'ADMIN' AND OLD.status = 'ACTIVE' AND OLD.vendor_id IS NOT NULL
          AND (NEW.role <> 'ADMIN' OR NEW.status <> 'ACTIVE' OR NEW.vendor_id IS DISTINCT FROM OLD.vendor_id))
    EXECUTE FUNCTION users_keep_an_active_admin();

-- Opaque refresh tokens, stored as SHA-256 of the token. Rotated on every use; presenting a
-- token whose used_at is set revokes its whole family (theft detection).
CREATE TABLE refresh_tokens (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        uuid NOT NULL,
    vendor_id      uuid NOT NULL,
    family_id      uuid NOT NULL,
    token_hash     bytea NOT NULL CHECK (octet_length(token_hash) = 32),
    issued_at      timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz NULL,
    replaced_by    uuid NULL REFERENCES refresh_tokens (id) ON DELETE SET NULL,
    revoked_at     timestamptz NULL,
    revoke_reason  text NULL CHECK (revoke_reason IN ('LOGOUT', 'REUSE_DETECTED', 'USER_DISABLED', 'PASSWORD_CHANGED', 'ADMIN')),
    user_agent     text NULL CHECK (length(user_agent) <= 512),
    ip             inet NULL,
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT refresh_tokens_user_fkey FOREIGN KEY (vendor_id, user_id)
        REFERENCES users (vendor_id, id) ON DELETE CASCADE,
    CHECK (expires_at > issued_at),
    CHECK (revoked_at IS NULL OR revoke_reason IS NOT NULL)
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

-- Vendor API keys for integrations: shown once, stored as SHA-256, looked up by hash.
CREATE TABLE api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vendor_id     uuid NOT NULL REFERENCES vendors (id) ON DELETE RESTRICT,
    name          text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    prefix        text NOT NULL CHECK (prefix ~ '^[A-Za-z0-9_]{4,32}$'),
    key_hash      bytea NOT NULL CHECK (octet_length(key_hash) = 32),
    scopes        text[] NOT NULL DEFAULT '{}' CHECK (array_position(scopes, NULL) IS NULL),
    created_by    uuid NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz NULL,
    expires_at    timestamptz NULL,
    revoked_at    timestamptz NULL,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_prefix_key UNIQUE (prefix),
    CONSTRAINT api_keys_created_by_fkey FOREIGN KEY (vendor_id, created_by)
        REFERENCES users (vendor_id, id) ON DELETE RESTRICT
);
CREATE INDEX api_keys_vendor_created_idx ON api_keys (vendor_id, created_at DESC, id DESC);
CREATE TRIGGER api_keys_set_updated_at BEFORE UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- WhatsApp Business Accounts. vendor_id NULL = Kloyst's own shared WABA (Shared WABA model);
-- a DEDICATED vendor may have its own. The system-user token is AES-GCM encrypted with
-- DATA_ENCRYPTION_KEY (key version kept for rotation); the tenant role cannot read it.
CREATE TABLE waba_accounts (
    id                          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    vendor_id                   uuid NULL REFERENCES vendors (id) ON DELETE RESTRICT,
    waba_id                     text NOT NULL CHECK (length(waba_id) BETWEEN 1 AND 64),   -- Meta id (digits in production)
    name                        text NULL CHECK (length(name) <= 200),
    business_id                 text NULL CHECK (length(business_id) BETWEEN 1 AND 64),
    currency                    text NULL CHECK (currency ~ '^[A-Z]{3}$'),
    time_zone                   text NULL,
    system_user_token_encrypted bytea NULL,
    system_user_token_nonce     bytea NULL CHECK (octet_length(system_user_token_nonce) = 12),
    token_key_version           smallint NOT NULL DEFAULT 1 CHECK (token_key_version > 0),
    token_expires_at            timestamptz NULL,
    status                      text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'DISABLED', 'TOKEN_EXPIRED')),
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT waba_accounts_waba_id_key UNIQUE (waba_id),
    CHECK ((system_user_token_encrypted IS NULL) = (system_user_token_nonce IS NULL))
);
CREATE INDEX waba_accounts_vendor_idx ON waba_accounts (vendor_id);
CREATE TRIGGER waba_accounts_set_updated_at BEFORE UPDATE ON waba_accounts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Sending phone numbers of a WABA (Meta's phone_number_id); the send rate is per number.
CREATE TABLE phone_numbers (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    waba_account_id       uuid NOT NULL REFERENCES waba_accounts (id) ON DELETE RESTRICT,
    vendor_id             uuid NULL REFERENCES vendors (id) ON DELETE RESTRICT,
    phone_number_id       text NOT NULL CHECK (length(phone_number_id) BETWEEN 1 AND 64),   -- Meta id
    display_phone_number  text NULL CHECK (length(display_phone_number) <= 32),
    verified_name         text NULL,
    quality_rating        text NULL,
    messaging_limit_tier  text NULL,
    send_rate_per_sec     integer NOT NULL DEFAULT 80 CHECK (send_rate_per_sec > 0),
    is_default            boolean NOT NULL DEFAULT false,
    status                text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'DISABLED')),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT phone_numbers_phone_number_id_key UNIQUE (phone_number_id)
);
-- at most one default number per owner (NULL owner = the shared WABA)
CREATE UNIQUE INDEX phone_numbers_one_default_idx
    ON phone_numbers ((coalesce(vendor_id, '00000000-0000-0000-0000-000000000000'::uuid))) WHERE is_default;
CREATE INDEX phone_numbers_waba_idx ON phone_numbers (waba_account_id);
CREATE TRIGGER phone_numbers_set_updated_at BEFORE UPDATE ON phone_numbers
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Row-level security -------------------------------------------------------------------------

ALTER TABLE vendors ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON vendors FOR ALL TO kloyst_tenant
    USING (id = app_current_vendor_id()) WITH CHECK (id = app_current_vendor_id());
GRANT SELECT ON vendors TO kloyst_tenant;
-- the profile fields a vendor ADMIN may change (PATCH /v1/vendor/me); not plan_type / status
GRANT UPDATE (name, company_name, settings, billing_email, billing_address, gstin, default_country, time_zone)
    ON vendors TO kloyst_tenant;

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT, UPDATE ON users TO kloyst_tenant;

ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON refresh_tokens FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT, UPDATE ON refresh_tokens TO kloyst_tenant;

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON api_keys FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT, INSERT, UPDATE ON api_keys TO kloyst_tenant;

ALTER TABLE waba_accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON waba_accounts FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
-- no access to the encrypted token columns
GRANT SELECT (id, vendor_id, waba_id, name, business_id, currency, time_zone, token_expires_at, status,
              created_at, updated_at)
    ON waba_accounts TO kloyst_tenant;

ALTER TABLE phone_numbers ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON phone_numbers FOR ALL TO kloyst_tenant
    USING (vendor_id = app_current_vendor_id()) WITH CHECK (vendor_id = app_current_vendor_id());
GRANT SELECT ON phone_numbers TO kloyst_tenant;
