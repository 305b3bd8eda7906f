//! Vendors, users and templates for the tests. Vendors and users are inserted directly;
//! everything under test goes through the crate's public API.

use kloyst_core::{UserId, VendorId};
use kloyst_identity::{Principal, RequestMeta, Role};
use kloyst_templates::model::{TemplateInput, TemplateView};
use kloyst_templates::Templates;
use kloyst_testkit::TestStores;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

pub async fn setup() -> (TestStores, Templates) {
    let stores = TestStores::new().await;
    let templates = Templates::new(stores.pg.clone());
    (stores, templates)
}

/// A new vendor with an active user of `role`; the user's principal.
pub async fn new_vendor(pg: &PgPool, role: Role) -> Principal {
    let vendor: Uuid =
        sqlx::query_scalar("INSERT INTO vendors (name) VALUES ('Acme') RETURNING id")
            .fetch_one(pg)
            .await
            .unwrap();
    // Every vendor keeps an ADMIN; a STAFF user is added beside it.
    let admin = new_user(pg, vendor, Role::Admin).await;
    match role {
        Role::Admin => admin,
        Role::Staff => new_user(pg, vendor, Role::Staff).await,
    }
}

async fn new_user(pg: &PgPool, vendor: Uuid, role: Role) -> Principal {
    let user: Uuid = sqlx::query_scalar(
        "INSERT INTO users (vendor_id, email, password_hash, name, role, status, email_verified_at)
         VALUES ($1, $2, 'not-a-real-hash', 'Asha Rao', $3, 'ACTIVE', now()) RETURNING id",
    )
    .bind(vendor)
    .bind(format!("user-{}@example.com", Uuid::new_v4().simple()))
    .bind(role.as_str())
    .fetch_one(pg)
    .await
    .unwrap();
    Principal {
        user_id: UserId::from_uuid(user),
        vendor_id: VendorId::from_uuid(vendor),
        role,
    }
}

pub fn meta() -> RequestMeta {
    RequestMeta {
        request_id: Some(format!("req-{}", Uuid::new_v4().simple())),
        ip: None,
        user_agent: Some("kloyst-templates-tests".to_owned()),
    }
}

/// A valid UTILITY template named `name` with a two-placeholder body.
pub fn input(name: &str) -> TemplateInput {
    TemplateInput {
        name: name.to_owned(),
        language: "en_US".to_owned(),
        category: "UTILITY".to_owned(),
        components: vec![
            json!({ "type": "HEADER", "format": "TEXT", "text": "Your order" }),
            json!({
                "type": "BODY",
                "text": "Hi {{1}}, your order {{2}} has shipped. Thank you!",
                "example": { "body_text": [["Asha", "A-1001"]] }
            }),
            json!({ "type": "FOOTER", "text": "Kloyst demo shop" }),
        ],
        parameter_format: None,
    }
}

pub async fn create(templates: &Templates, who: &Principal, name: &str) -> TemplateView {
    templates.create(who, input(name), &meta()).await.unwrap()
}

/// One column of a template, read as the system.
pub async fn column<T>(pg: &PgPool, id: Uuid, column: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    sqlx::query_scalar(&format!("SELECT {column} FROM templates WHERE id = $1"))
        .bind(id)
        .fetch_one(pg)
        .await
        .unwrap()
}

/// The audit-log rows of an action on a template, oldest first, as JSON.
pub async fn audit_rows(pg: &PgPool, action: &str, template: Uuid) -> Vec<Value> {
    sqlx::query_scalar(
        "SELECT to_jsonb(a) FROM audit_log a WHERE action = $1 AND target_id = $2 ORDER BY id",
    )
    .bind(action)
    .bind(template.to_string())
    .fetch_all(pg)
    .await
    .unwrap()
}
