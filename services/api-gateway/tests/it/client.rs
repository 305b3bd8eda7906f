//! A small typed client over the real HTTP API, and the onboarding steps tests repeat.

use api_gateway::ApiGateway;
use kloyst_config::Env;
use kloyst_testkit::{RunningService, TestStores};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub struct Api {
    pub service: RunningService,
    pub http: reqwest::Client,
    pub stores: TestStores,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Api {
    pub async fn start() -> Self {
        let stores = TestStores::new().await;
        Self::start_with(stores, |env| env).await
    }

    /// With configuration adjusted (short OTP TTLs, low limits, …).
    pub async fn start_with(stores: TestStores, adjust: impl FnOnce(Env) -> Env) -> Self {
        let env = adjust(stores.env());
        let service = RunningService::start::<ApiGateway>(&env).await;
        Self {
            service,
            http: reqwest::Client::new(),
            stores,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.http.request(method, self.service.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        answer(request).await
    }

    /// A POST that creates money or messages: `body` (none: no body at all) and an
    /// `Idempotency-Key` when given. `bearer` is an access token or an API key.
    pub async fn post_keyed(
        &self,
        path: &str,
        bearer: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> Response {
        let mut request = self.http.post(self.service.url(path)).bearer_auth(bearer);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        answer(request).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Response {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    /// The newest mail queued for `to` (through the outbox), as its text.
    pub async fn last_mail_text(&self, to: &str) -> String {
        sqlx::query_scalar::<_, String>(
            "SELECT payload->>'text' FROM outbox_events
              WHERE kind = 'mail.send' AND payload->>'to' = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(to)
        .fetch_one(&self.stores.pg)
        .await
        .unwrap()
    }

    /// The 6-digit code in the newest mail to `to`.
    pub async fn last_code(&self, to: &str) -> String {
        let text = self.last_mail_text(to).await;
        six_digits(&text).unwrap_or_else(|| panic!("no 6-digit code in: {text}"))
    }

    /// register → code from the mail → verify: an ADMIN of a new vendor. Returns the tokens.
    pub async fn onboard(&self, email: &str, company: &str) -> Value {
        let registered = self
            .post(
                "/v1/auth/register",
                None,
                json!({ "email": email, "password": "correct horse battery staple", "name": "Owner", "company_name": company }),
            )
            .await;
        assert_eq!(
            registered.status,
            StatusCode::ACCEPTED,
            "{}",
            registered.body
        );
        let code = self.last_code(email).await;
        let verified = self
            .post(
                "/v1/auth/verify-otp",
                None,
                json!({ "email": email, "otp": code }),
            )
            .await;
        assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
        verified.body
    }

    /// An ADMIN invites `email` as `role`; the invitee accepts. Returns the invitee's tokens
    /// and user id.
    pub async fn add_member(&self, admin_token: &str, email: &str, role: &str) -> (Value, String) {
        let invited = self
            .post(
                "/v1/users",
                Some(admin_token),
                json!({ "email": email, "role": role }),
            )
            .await;
        assert_eq!(invited.status, StatusCode::CREATED, "{}", invited.body);
        let code = self.last_code(email).await;
        let accepted = self
            .post(
                "/v1/auth/accept-invite",
                None,
                json!({ "email": email, "otp": code, "password": "another long passphrase" }),
            )
            .await;
        assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
        (
            accepted.body,
            invited.body["id"].as_str().unwrap().to_owned(),
        )
    }
}

pub fn token(tokens: &Value) -> String {
    tokens["access_token"].as_str().unwrap().to_owned()
}

fn six_digits(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(5)).find_map(|i| {
        let window = &bytes[i..i + 6];
        let before_ok = i == 0 || !bytes[i - 1].is_ascii_digit();
        let after_ok = bytes.get(i + 6).is_none_or(|b| !b.is_ascii_digit());
        (window.iter().all(u8::is_ascii_digit) && before_ok && after_ok)
            .then(|| String::from_utf8_lossy(window).into_owned())
    })
}

/// Sends `request` and reads the answer; an empty body is `null`, a body that is not JSON a
/// string.
async fn answer(request: reqwest::RequestBuilder) -> Response {
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Response {
        status,
        headers,
        body,
    }
}
