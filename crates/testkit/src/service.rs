//! Running a Kloyst service the way `main` does, in the test's process or as the real binary.

use std::process::Stdio;
use std::time::Duration;

use kloyst_config::Env;
use kloyst_http::service::Service;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A service started in-process on a free port; stopped (gracefully) when dropped.
pub struct RunningService {
    pub base_url: String,
    pub shutdown: CancellationToken,
    pub task: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl RunningService {
    /// Loads `S`'s configuration from `env` and runs it on `127.0.0.1:0`. Returns once the
    /// listener is bound, so requests can be sent at once (no sleeping).
    pub async fn start<S: Service>(env: &Env) -> Self {
        let config = S::from_env(env).expect("test configuration is complete");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base_url = format!("http://{}", listener.local_addr().expect("address"));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                config
                    .run(listener, shutdown)
                    .await
                    .map_err(|e| e.to_string())
            }
        });
        Self {
            base_url,
            shutdown,
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Cancels and waits for a clean exit.
    pub async fn stop(mut self) -> Result<(), String> {
        self.shutdown.cancel();
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        match tokio::time::timeout(Duration::from_secs(15), task).await {
            Ok(Ok(result)) => result,
            Ok(Err(join)) => Err(join.to_string()),
            Err(_) => Err("service did not stop within 15 s".into()),
        }
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A free loopback port (bound and released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A service binary (`env!("CARGO_BIN_EXE_<name>")`) started as a child process with
/// exactly `vars` as its configuration.
pub fn spawn_binary(path: &str, vars: &[(&str, String)]) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(path);
    command
        // Outside the checkout, so a developer's .env (read by dotenvy from the working
        // directory and its parents) cannot add configuration the test did not give.
        .current_dir(std::env::temp_dir())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in vars {
        command.env(key, value);
    }
    command.spawn().expect("spawn the service binary")
}

/// Polls `url` until it answers 200.
pub async fn wait_until_ready(url: &str, timeout: Duration) -> bool {
    let client = reqwest::Client::new();
    crate::eventually(timeout, || {
        let request = client.get(url).send();
        async move {
            match request.await {
                Ok(response) if response.status().is_success() => Some(()),
                _ => None,
            }
        }
    })
    .await
    .is_some()
}

/// Sends a signal to a child process by pid (`kill -s NAME`), as an orchestrator would.
pub async fn signal(child: &tokio::process::Child, name: &str) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-s", name, &pid.to_string()])
            .status()
            .await;
    }
}
