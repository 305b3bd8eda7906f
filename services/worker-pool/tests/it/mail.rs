//! Mail end to end: `enqueue_mail` in a transaction → outbox-relay → worker-pool (the
//! default router) → a real SMTP server on loopback.

use std::time::Duration;

use kloyst_config::Env;
use kloyst_http::service::Service;
use kloyst_mail::smtp_sink::SmtpSink;
use kloyst_mail::{enqueue_mail, SendMail};
use kloyst_queue::DeadLetter;
use kloyst_testkit::{eventually, RunningService, TestStores};
use outbox_relay::OutboxRelay;
use worker_pool::WorkerPool;

use crate::jobs_queue;

const WAIT: Duration = Duration::from_secs(15);

/// The relay and the worker-pool as deployed, with mail going to `sink` and retries that
/// take milliseconds instead of seconds.
struct Pipeline {
    relay: RunningService,
    worker: RunningService,
}

impl Pipeline {
    async fn start(stores: &TestStores, sink: &SmtpSink) -> Self {
        let env: Env = stores
            .env()
            .with("SMTP_URL", sink.url())
            .with("MAIL_FROM", "Kloyst <no-reply@kloyst.test>")
            .with("JOB_MAX_ATTEMPTS", "2")
            .with("JOB_BACKOFF_BASE", "20ms")
            .with("JOB_BACKOFF_MAX", "100ms");
        let worker = RunningService::start::<WorkerPool>(&env).await;
        let relay = RunningService::start::<OutboxRelay>(&env).await;
        Self { relay, worker }
    }

    async fn stop(self) {
        self.relay.stop().await.unwrap();
        self.worker.stop().await.unwrap();
    }
}

fn mail(to: &str, code: &str) -> SendMail {
    SendMail {
        to: to.into(),
        subject: "Your Kloyst verification code".into(),
        text: format!("Your Kloyst code is {code}.\r\nIt expires in 5 minutes.\r\n"),
        category: "otp".into(),
    }
}

async fn enqueue_committed(stores: &TestStores, mail: &SendMail) {
    let mut tx = stores.pg.begin().await.unwrap();
    enqueue_mail(&mut tx, mail, None, Some("req-mail".into()))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn wait_for_dead_letters(stores: &TestStores, count: usize) -> Vec<DeadLetter> {
    let queue = jobs_queue(stores);
    eventually(WAIT, || {
        let queue = queue.clone();
        async move {
            queue
                .dead_letters(10)
                .await
                .ok()
                .filter(|d| d.len() >= count)
        }
    })
    .await
    .expect("dead-lettered")
}

#[tokio::test]
async fn a_committed_mail_reaches_the_smtp_server_exactly_once() {
    let stores = TestStores::new().await;
    let sink = SmtpSink::start().await.unwrap();
    let pipeline = Pipeline::start(&stores, &sink).await;

    enqueue_committed(&stores, &mail("asha@example.com", "271828")).await;

    let mails = sink.wait_for_mails(1, WAIT).await;
    assert_eq!(mails.len(), 1, "delivered");
    assert_eq!(mails[0].rcpt_to, ["asha@example.com"]);
    assert_eq!(mails[0].mail_from, "no-reply@kloyst.test");
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("Your Kloyst verification code")
    );
    assert_eq!(
        mails[0].body().trim_end(),
        "Your Kloyst code is 271828.\r\nIt expires in 5 minutes."
    );

    pipeline.stop().await;
    assert_eq!(sink.mails().len(), 1, "sent once");
    assert_eq!(sink.rcpt_attempts("asha@example.com"), 1);
    assert!(jobs_queue(&stores)
        .dead_letters(10)
        .await
        .unwrap()
        .is_empty());
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn a_rolled_back_transaction_sends_nothing() {
    let stores = TestStores::new().await;
    let sink = SmtpSink::start().await.unwrap();
    let pipeline = Pipeline::start(&stores, &sink).await;

    let mut tx = stores.pg.begin().await.unwrap();
    enqueue_mail(&mut tx, &mail("ghost@example.com", "000000"), None, None)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    // A mail committed after it: once it has arrived, the rolled-back one would have too.
    enqueue_committed(&stores, &mail("marker@example.com", "111111")).await;

    let mails = sink.wait_for_mails(1, WAIT).await;
    pipeline.stop().await;
    let recipients: Vec<_> = sink.mails().into_iter().flat_map(|m| m.rcpt_to).collect();
    assert_eq!(recipients, ["marker@example.com"], "{mails:?}");
    assert_eq!(sink.rcpt_attempts("ghost@example.com"), 0);
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn a_550_is_dead_lettered_at_once_with_the_smtp_reply() {
    let stores = TestStores::new().await;
    let sink = SmtpSink::start().await.unwrap();
    sink.reject("gone@example.com");
    let pipeline = Pipeline::start(&stores, &sink).await;

    enqueue_committed(&stores, &mail("gone@example.com", "314159")).await;

    let dead = wait_for_dead_letters(&stores, 1).await;
    pipeline.stop().await;
    assert_eq!(dead.len(), 1);
    let error = &dead[0].error;
    assert!(error.contains("SMTP server rejected the mail"), "{error}");
    assert!(error.contains("550"), "{error}");
    assert!(error.contains("g***@example.com"), "{error}");
    assert!(!error.contains("gone@example.com"), "{error}");
    let message = dead[0].message.as_ref().unwrap();
    assert_eq!(message.kind, "mail.send");
    assert_eq!(message.attempt, 1, "not retried");
    assert_eq!(sink.rcpt_attempts("gone@example.com"), 1);
    assert!(sink.mails().is_empty());
    stores.cleanup_redis().await;
}

#[tokio::test]
async fn a_451_is_retried_and_dead_lettered_only_after_the_last_attempt() {
    let stores = TestStores::new().await;
    let sink = SmtpSink::start().await.unwrap();
    sink.defer("greylisted@example.com", 1);
    sink.defer("full@example.com", u32::MAX);
    let pipeline = Pipeline::start(&stores, &sink).await;

    enqueue_committed(&stores, &mail("greylisted@example.com", "161803")).await;
    enqueue_committed(&stores, &mail("full@example.com", "141421")).await;

    // Deferred once: the second attempt delivers it.
    let mails = sink.wait_for_mails(1, WAIT).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].rcpt_to, ["greylisted@example.com"]);
    assert_eq!(sink.rcpt_attempts("greylisted@example.com"), 2);

    // Deferred every time: dead-lettered after JOB_MAX_ATTEMPTS (2) with the last reply.
    let dead = wait_for_dead_letters(&stores, 1).await;
    pipeline.stop().await;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].error.contains("451"), "{}", dead[0].error);
    assert!(
        dead[0].error.contains("SMTP server deferred the mail"),
        "{}",
        dead[0].error
    );
    assert_eq!(dead[0].message.as_ref().map(|m| m.attempt), Some(2));
    assert_eq!(sink.rcpt_attempts("full@example.com"), 2);
    assert_eq!(sink.mails().len(), 1);
    stores.cleanup_redis().await;
}

#[test]
fn the_default_router_runs_mail_and_refuses_an_unusable_smtp_url() {
    let env = Env::from_pairs([
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/unused"),
        ("REDIS_URL", "redis://127.0.0.1:6379"),
        ("JOB_BACKOFF_BASE", "250ms"),
        ("JOB_BACKOFF_MAX", "2s"),
    ]);
    let config = WorkerPool::from_env(&env).unwrap();
    assert_eq!(config.queue.backoff_base, Duration::from_millis(250));
    assert_eq!(config.queue.backoff_max, Duration::from_secs(2));
    assert!(
        config.mail.smtp_url.is_none(),
        "development: mails are logged"
    );
    let router = worker_pool::default_router(&config).unwrap();
    assert!(router.kinds().any(|kind| *kind == "mail.send"));

    let bad = WorkerPool::from_env(&env.with("SMTP_URL", "http://user:hunter2@mail.example.com"))
        .unwrap();
    let error = worker_pool::default_router(&bad).err().unwrap().to_string();
    assert!(error.contains("SMTP_URL"), "{error}");
    assert!(!error.contains("hunter2"), "{error}");
}
