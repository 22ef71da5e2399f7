//! The `distkv` binary.

fn main() -> std::process::ExitCode {
    distkv_cli::app::main()
}
