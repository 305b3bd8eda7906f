//! `meta-sim`: Meta's WhatsApp Cloud API and Razorpay's Orders API on
//! `127.0.0.1:${SIM_PORT:-3100}`.

use std::process::ExitCode;

use kloyst_config::sections::TelemetrySettings;
use kloyst_config::Env;
use meta_sim::{RazorpaySimSettings, SimSettings};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("meta-sim: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let env = Env::from_process();
    let telemetry = TelemetrySettings::from_env(&env).map_err(|e| e.to_string())?;
    let _guard =
        kloyst_telemetry::init_tracing("meta-sim", &telemetry).map_err(|e| e.to_string())?;
    let settings = SimSettings::from_env(&env).map_err(|e| e.to_string())?;
    let razorpay = RazorpaySimSettings::from_env(&env).map_err(|e| e.to_string())?;
    let host = env.optional("SIM_BIND").unwrap_or("127.0.0.1").to_owned();
    let port: u16 = env.parse_or("SIM_PORT", 3100).map_err(|e| e.to_string())?;
    let listener = TcpListener::bind((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot bind {host}:{port}: {e}"))?;

    let shutdown = CancellationToken::new();
    let on_signal = async {
        tokio::select! {
            () = wait_for_signal() => {
                tracing::info!("shutdown signal received");
                shutdown.cancel();
            }
            () = shutdown.cancelled() => {}
        }
    };
    let serving = async {
        let result =
            meta_sim::serve_with_razorpay(settings, razorpay, listener, shutdown.clone()).await;
        shutdown.cancel();
        result
    };
    let (result, ()) = tokio::join!(serving, on_signal);
    result.map_err(|e| e.to_string())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
