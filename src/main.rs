//! The `etlpool` binary: parse options, run, map the outcome to an exit code.

use clap::Parser;

fn main() {
    let cli = etlpool::cli::Cli::parse();
    std::process::exit(etlpool::cli::run(cli).code());
}
