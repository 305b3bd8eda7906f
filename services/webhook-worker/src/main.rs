fn main() -> std::process::ExitCode {
    kloyst_http::service::main::<webhook_worker::WebhookWorker>()
}
