// mimalloc: request handling allocates small buffers per request; glibc's malloc cost a fifth
// of a service's CPU under load (perf, webhook intake), mimalloc's thread-local free lists far less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    kloyst_http::service::main::<worker_pool::WorkerPool>()
}
