fn main() -> std::process::ExitCode {
    kloyst_http::service::main::<worker_pool::WorkerPool>()
}
