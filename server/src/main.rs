//! `loopwork`: the server binary. All the work is in the library (`loopwork_server::cli`).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    loopwork_server::cli::run().await
}
