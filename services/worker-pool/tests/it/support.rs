//! Shared by the worker-pool tests.

use kloyst_core::{UserId, VendorId};
use kloyst_identity::{Principal, Role};
use kloyst_testkit::TestStores;
use uuid::Uuid;

/// A new vendor with one ACTIVE admin, written as the owner would (no mail, no OTP).
pub async fn admin_of_new_vendor(stores: &TestStores) -> Principal {
    let vendor: Uuid =
        sqlx::query_scalar("INSERT INTO vendors (name) VALUES ('Acme') RETURNING id")
            .fetch_one(&stores.pg)
            .await
            .unwrap();
    let user: Uuid = sqlx::query_scalar(
        "INSERT INTO users (vendor_id, email, password_hash, name, role, status) \
         VALUES ($1, 'owner@acme.test', 'x', 'Owner', 'ADMIN', 'ACTIVE') RETURNING id",
    )
    .bind(vendor)
    .fetch_one(&stores.pg)
    .await
    .unwrap();
    Principal {
        user_id: UserId::from_uuid(user),
        vendor_id: VendorId::from_uuid(vendor),
        role: Role::Admin,
    }
}
