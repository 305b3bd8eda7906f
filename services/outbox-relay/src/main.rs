fn main() -> std::process::ExitCode {
    kloyst_http::service::main::<outbox_relay::OutboxRelay>()
}
