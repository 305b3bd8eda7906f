/// Why the simulator could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid behaviour: {0}")]
    InvalidBehaviour(String),
    #[error("could not build the webhook HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
}
