-- When a contact's consent (opted_out) was last decided, so that keywords delivered out of
-- order resolve by Meta's timestamp: a STOP sent at t=10 but processed after a START sent at
-- t=20 is stale and leaves the contact opted in.
--
-- Inbound keywords write it explicitly (Meta's timestamp, also when the state stays the same:
-- a START to an opted-in contact still outdates an earlier STOP). Any other change of
-- opted_out (API, admin, import) gets the write time from the triggers below, so an old
-- keyword never overrides a newer decision made elsewhere.
ALTER TABLE contacts ADD COLUMN opt_state_at timestamptz NULL;
COMMENT ON COLUMN contacts.opt_state_at IS
    'When opted_out was last decided: Meta''s timestamp for inbound keywords, the write time otherwise. NULL = never decided. A keyword not newer than this is ignored.';

CREATE FUNCTION contacts_stamp_opt_state() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.opt_state_at := now();
    RETURN NEW;
END
$$;
-- WHEN clauses keep the function off the import path (imports never change opted_out).
CREATE TRIGGER contacts_stamp_opt_state_insert BEFORE INSERT ON contacts
    FOR EACH ROW WHEN (NEW.opted_out AND NEW.opt_state_at IS NULL)
    EXECUTE FUNCTION contacts_stamp_opt_state();
CREATE TRIGGER contacts_stamp_opt_state_update BEFORE UPDATE OF opted_out ON contacts
    FOR EACH ROW WHEN (NEW.opted_out IS DISTINCT FROM OLD.opted_out
                       AND NEW.opt_state_at IS NOT DISTINCT FROM OLD.opt_state_at)
    EXECUTE FUNCTION contacts_stamp_opt_state();
