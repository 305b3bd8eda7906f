//! The vendor profile (company, billing and tax details, phone and time defaults), always
//! the caller's own: the vendor id comes from the principal, never from input.

use kloyst_audit::{Actor, RequestMeta};
use kloyst_core::FieldError;
use serde_json::json;

use super::{audit, begin_for, require_admin, Identity};
use crate::error::{IdentityError, Internal};
use crate::input::VendorPatch;
use crate::model::{Principal, VendorProfile};
use crate::repo::vendors::{self, ProfileChanges, VendorRow};
use crate::validate::{self, Fields, Rule};

impl Identity {
    /// Any role may read its vendor's profile, in one round trip: the session check (a revoked
    /// session is `TokenInvalid`, 401), RLS and the read in one call.
    pub async fn vendor_profile(&self, who: &Principal) -> Result<VendorProfile, IdentityError> {
        let row = vendors::get_as_user(self.pg(), who).await?;
        profile(row.ok_or(IdentityError::NotFound("vendor"))?)
    }

    /// ADMIN only. Every field is validated and every invalid one reported (one field
    /// error each); absent fields are left unchanged. The audit row names the changed
    /// fields, not their values.
    pub async fn update_vendor_profile(
        &self,
        who: &Principal,
        patch: VendorPatch,
        meta: &RequestMeta,
    ) -> Result<VendorProfile, IdentityError> {
        require_admin(who)?;
        let mut fields = Fields::default();
        let mut changes = ProfileChanges {
            company_name: check(
                &mut fields,
                "company_name",
                patch.company_name.as_deref(),
                |v| validate::display_name(v, 200),
            ),
            billing_email: check(
                &mut fields,
                "billing_email",
                patch.billing_email.as_deref(),
                validate::email,
            ),
            billing_address: None,
            gstin: check(
                &mut fields,
                "gstin",
                patch.gstin.as_deref(),
                validate::gstin,
            ),
            default_country: check(
                &mut fields,
                "default_country",
                patch.default_country.as_deref(),
                validate::country,
            ),
            time_zone: check(
                &mut fields,
                "time_zone",
                patch.time_zone.as_deref(),
                validate::time_zone,
            ),
        };
        if let Some(address) = &patch.billing_address {
            if let Some(clean) = validate::billing_address(&mut fields, "billing_address", address)
            {
                changes.billing_address = Some(
                    serde_json::to_value(clean)
                        .map_err(|e| Internal::Corrupt(format!("billing address: {e}")))?,
                );
            }
        }

        let vendor = who.vendor_id;
        let mut tx = begin_for(self.pg(), who).await?;
        // The shape was checked above; whether the zone exists, PostgreSQL knows best.
        if let Some(zone) = &changes.time_zone {
            if !vendors::time_zone_exists(&mut tx, zone).await? {
                fields.push(FieldError::new(
                    "time_zone",
                    "invalid_time_zone",
                    "not a known IANA time zone",
                ));
            }
        }
        fields.finish()?;

        let changed: Vec<&str> = [
            ("company_name", changes.company_name.is_some()),
            ("billing_email", changes.billing_email.is_some()),
            ("billing_address", changes.billing_address.is_some()),
            ("gstin", changes.gstin.is_some()),
            ("default_country", changes.default_country.is_some()),
            ("time_zone", changes.time_zone.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        let row = if changed.is_empty() {
            vendors::get(&mut tx, vendor).await?
        } else {
            vendors::update_profile(&mut tx, vendor, &changes).await?
        }
        .ok_or(IdentityError::NotFound("vendor"))?;
        if !changed.is_empty() {
            audit(
                &mut tx,
                meta,
                Some(vendor),
                Actor::User(who.user_id),
                "vendor.profile_updated",
                Some(("vendor", vendor.to_string())),
                json!({ "fields": changed }),
            )
            .await?;
        }
        tx.commit().await?;
        profile(row)
    }
}

/// Checks a field that was given; records its error and yields `None` otherwise.
fn check(
    fields: &mut Fields,
    name: &str,
    value: Option<&str>,
    rule: impl Fn(&str) -> Result<String, Rule>,
) -> Option<String> {
    value.and_then(|v| fields.take(name, rule(v)))
}

fn profile(row: VendorRow) -> Result<VendorProfile, IdentityError> {
    row.profile().map_err(|e| {
        IdentityError::Internal(Internal::Corrupt(format!("vendors.billing_address: {e}")))
    })
}
