//! The `faultline` binary: parse the command line, run the command, exit
//! with its documented code. Everything else lives in the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = faultline::cli::Cli::parse();
    let code = faultline::app::execute(cli);
    std::process::ExitCode::from(code.code())
}
