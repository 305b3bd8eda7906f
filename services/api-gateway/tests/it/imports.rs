//! `/v1/contacts/bulk` and `/v1/contacts/imports` over real HTTP.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::client::{token, Api, Response};

impl Api {
    async fn upload(
        &self,
        token: &str,
        query: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Response {
        let response = self
            .http
            .post(self.service.url(&format!("/v1/contacts/bulk{query}")))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Response {
            status,
            headers,
            body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        }
    }
}

#[tokio::test]
async fn a_json_body_is_imported_inline_row_by_row() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let rows = json!([
        {"mobile": "+91 98765 43210", "attributes": {"name": "Asha"}},
        {"mobile": "garbage"},
        {"mobile": "9876543210", "attributes": {"city": "Pune"}}
    ]);
    let answer = api
        .post("/v1/contacts/bulk?default_country=IN", Some(&admin), rows)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["created"].as_array().unwrap().len(), 1);
    assert_eq!(answer.body["duplicates"][0]["row"], 2);
    assert_eq!(answer.body["rejected"][0]["row"], 1);
    assert_eq!(answer.body["rejected"][0]["reason"], "NOT_A_NUMBER");

    // A wrong type names the row and the field.
    let wrong = api
        .post(
            "/v1/contacts/bulk",
            Some(&admin),
            json!([{"mobile": "9876543210"}, {"mobile": 98765}]),
        )
        .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.body
    );
    assert!(
        wrong.body["errors"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("[1].mobile"),
        "{}",
        wrong.body
    );
    // vendor_id is not a thing a request may say.
    let smuggled = api
        .post(
            "/v1/contacts/bulk?vendor_id=00000000-0000-0000-0000-000000000000",
            Some(&admin),
            json!([]),
        )
        .await;
    assert_eq!(smuggled.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_csv_upload_is_answered_202_with_its_job_and_the_job_can_be_followed() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let csv = "\u{feff}Name;Phone;City\r\nAsha;+91 98765 43210;Pune\r\nBad;12;X\r\n";
    let answer = api
        .upload(
            &admin,
            "?file_name=leads.csv",
            "text/csv; charset=utf-8",
            csv.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let id = answer.body["id"].as_str().unwrap().to_owned();
    assert_eq!(answer.body["state"], "QUEUED");
    assert_eq!(
        answer.headers["location"].to_str().unwrap(),
        format!("/v1/contacts/imports/{id}")
    );
    let job = api.get(&format!("/v1/contacts/imports/{id}"), &admin).await;
    assert_eq!(job.status, StatusCode::OK);
    assert_eq!(job.body["file_name"], "leads.csv");
    let listed = api.get("/v1/contacts/imports", &admin).await;
    assert_eq!(listed.body["data"][0]["id"], id.as_str());
    let rejections = api
        .get(&format!("/v1/contacts/imports/{id}/rejections"), &admin)
        .await;
    assert_eq!(rejections.status, StatusCode::OK);
    assert_eq!(rejections.body["data"], json!([]), "not run yet");

    // Another vendor's job is a 404, like a missing one.
    let other = token(&api.onboard("owner@other.test", "Other").await);
    for path in [
        format!("/v1/contacts/imports/{id}"),
        format!("/v1/contacts/imports/{id}/rejections"),
    ] {
        assert_eq!(
            api.get(&path, &other).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_multipart_form_upload_takes_its_file_part() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let boundary = "kloyst-test-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"team.csv\"\r\n\
         Content-Type: text/csv\r\n\r\nmobile,name\n+91 98765 43210,Asha\n\r\n--{boundary}--\r\n"
    );
    let answer = api
        .upload(
            &admin,
            "?default_country=IN",
            &format!("multipart/form-data; boundary={boundary}"),
            body.into_bytes(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    assert_eq!(answer.body["file_name"], "team.csv");
    let no_file = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\ny\r\n--{boundary}--\r\n"
    );
    let refused = api
        .upload(
            &admin,
            "",
            &format!("multipart/form-data; boundary={boundary}"),
            no_file.into_bytes(),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
}

#[tokio::test]
async fn bad_uploads_get_clear_4xx_answers() {
    let stores = kloyst_testkit::TestStores::new().await;
    let api = Api::start_with(stores, |env| env.with("IMPORT_MAX_BYTES", "2000")).await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "text/csv",
            b"name,city\nAsha,Pune\n".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "csv_no_number_column",
        ),
        (
            "text/csv",
            Vec::new(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "csv_no_header",
        ),
        (
            "text/csv",
            vec![0, 159, 146, 150, 0, 0, 1],
            StatusCode::UNPROCESSABLE_ENTITY,
            "csv_binary",
        ),
        (
            "text/csv",
            "mobile\n9876543210\n".repeat(200).into_bytes(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            "application/xml",
            b"<x/>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let answer = api.upload(&admin, "", content_type, body).await;
        assert_eq!(answer.status, status, "{code}: {}", answer.body);
        let found = answer.body["code"] == code
            || answer.body["errors"]
                .as_array()
                .is_some_and(|e| e.iter().any(|f| f["code"] == code));
        assert!(found, "{code}: {}", answer.body);
    }
    let unknown = api
        .upload(
            &admin,
            "?default_country=ZZ",
            "text/csv",
            b"mobile\n1\n".to_vec(),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.body["errors"][0]["field"], "default_country");
    // Nothing of the refused uploads was kept.
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM import_jobs")
        .fetch_one(&api.stores.pg)
        .await
        .unwrap();
    assert_eq!(jobs, 0);
}

#[tokio::test]
async fn rejected_rows_download_as_a_csv_to_fix_and_upload_again() {
    let api = Api::start().await;
    let admin = token(&api.onboard("owner@acme.test", "Acme").await);
    let csv = "mobile,name\n9876543210,Asha\n12,\"Short, \"\"really\"\"\"\nabc,Letters\n";
    let answer = api
        .upload(
            &admin,
            "?default_country=IN",
            "text/csv",
            csv.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::ACCEPTED, "{}", answer.body);
    let id: uuid::Uuid = answer.body["id"].as_str().unwrap().parse().unwrap();
    // The worker-pool's runner, in process.
    let runner = kloyst_contacts::ImportRunner::new(
        api.stores.pg.clone(),
        "test-worker",
        kloyst_contacts::ImportRunnerSettings {
            concurrency: 1,
            lease: std::time::Duration::from_secs(30),
            poll_interval: std::time::Duration::from_secs(1),
        },
    );
    let outcome = runner
        .run(id, &tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(outcome, kloyst_contacts::RunOutcome::Completed);
    let job = api.get(&format!("/v1/contacts/imports/{id}"), &admin).await;
    assert_eq!(job.body["state"], "COMPLETED");
    assert_eq!(job.body["rows_rejected"], 2);

    let response = api
        .http
        .get(
            api.service
                .url(&format!("/v1/contacts/imports/{id}/rejections?format=csv")),
        )
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = response.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "row,raw,reason,message");
    assert!(lines[1].starts_with("2,\"12\",\"TOO_SHORT\""), "{text}");
    assert!(lines[2].starts_with("3,\"abc\",\"NOT_A_NUMBER\""), "{text}");
    assert_eq!(lines.len(), 3, "{text}");
    // JSON pages, one row at a time.
    let page = api
        .get(
            &format!("/v1/contacts/imports/{id}/rejections?limit=1"),
            &admin,
        )
        .await;
    assert_eq!(page.body["data"][0]["row"], 2);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let next = api
        .get(
            &format!("/v1/contacts/imports/{id}/rejections?limit=1&cursor={cursor}"),
            &admin,
        )
        .await;
    assert_eq!(next.body["data"][0]["row"], 3);
    assert_eq!(next.body["next_cursor"], Value::Null);
}
