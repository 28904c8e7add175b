//! The `etlpool` binary: parse options, run, map the outcome to an exit code.

fn main() {
    let cli = etlpool::cli::parse();
    std::process::exit(etlpool::cli::run(cli).code());
}
