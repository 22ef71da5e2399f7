//! The `distkv-server` binary: `distkv server` as a program of its own.

fn main() -> std::process::ExitCode {
    distkv_cli::app::server_main()
}
