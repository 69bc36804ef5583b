//! The `graphrun` command.

fn main() {
    std::process::exit(graphrun::cli::main());
}
