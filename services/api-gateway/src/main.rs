fn main() -> std::process::ExitCode {
    kloyst_http::service::main::<api_gateway::ApiGateway>()
}
