use kloyst_config::sections::{LogFormat, TelemetrySettings};
use tokio::task::JoinHandle;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_http=warn,hyper=warn,h2=warn";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid RUST_LOG filter: {0}")]
    Filter(String),
    #[error("could not set up the Loki layer: {0}")]
    Loki(String),
    #[error("a global subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps the Loki shipping task alive; dropping it stops shipping.
#[derive(Debug)]
pub struct TelemetryGuard {
    loki_task: Option<JoinHandle<()>>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(task) = self.loki_task.take() {
            task.abort();
        }
    }
}

/// Installs the global subscriber. Call once, early in `main`, inside the Tokio runtime
/// (the Loki layer ships logs from a background task).
pub fn init_tracing(
    service: &'static str,
    settings: &TelemetrySettings,
) -> Result<TelemetryGuard, TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(raw) if !raw.trim().is_empty() => {
            EnvFilter::try_new(raw).map_err(|e| TelemetryError::Filter(e.to_string()))?
        }
        _ => EnvFilter::new(DEFAULT_FILTER),
    };

    let fmt_layer = match settings.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_target(true)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer().with_target(true).boxed(),
    };

    let (loki_layer, loki_task) = match &settings.loki_url {
        None => (None, None),
        Some(url) => {
            let (layer, task) = tracing_loki::builder()
                .label("service", service)
                .and_then(|b| b.label("environment", settings.environment.as_str()))
                .and_then(|b| b.extra_field("pid", std::process::id().to_string()))
                .and_then(|b| b.build_url(url.clone()))
                .map_err(|e| TelemetryError::Loki(e.to_string()))?;
            (Some(layer), Some(tokio::spawn(task)))
        }
    };

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(loki_layer)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;

    tracing::info!(
        service,
        log.format = ?settings.log_format,
        loki = settings.loki_url.is_some(),
        "tracing initialised"
    );
    Ok(TelemetryGuard { loki_task })
}
