//! The command line: `graphrun validate | graph | plan | apply | plugins`.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

use crate::engine::{self, dag, Mode, Reporter, RunOptions, Selection};
use crate::output::report::{self, Recorder};
use crate::output::{graph, plural, Human, JsonLines};
use crate::playbook::{self, Playbook};
use crate::plugins::Registry;
use crate::transport::{Connections, Transport};

/// Exit code for invalid input (nothing was touched).
pub const EXIT_INVALID: i32 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "graphrun",
    version,
    about = "Runs a TOML playbook as a DAG of (step, host) nodes, concurrently, over SSH"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug)]
struct Input {
    /// The playbook (TOML).
    playbook: PathBuf,
    /// A separate inventory file ([defaults], [hosts.*], [groups.*]).
    #[arg(long, short = 'i')]
    inventory: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    input: Input,
    /// Only these hosts or groups (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    limit: Vec<String>,
    /// Only these steps (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Hosts worked on at once (like Ansible's forks).
    #[arg(long, default_value_t = 64)]
    parallel: usize,
    /// Nodes in flight on one host (they pipeline through its shell).
    #[arg(long, default_value_t = 16)]
    per_host: usize,
    /// Stop starting nodes after the first failure.
    #[arg(long)]
    fail_fast: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    output: OutputFormat,
    /// Also write the run as a self-contained HTML report (timeline, ops, recap) to this file,
    /// and its events beside it (NAME.events.jsonl).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a playbook without connecting to anything.
    Validate {
        #[command(flatten)]
        input: Input,
    },
    /// Print the DAG of (step, host) nodes.
    Graph {
        #[command(flatten)]
        input: Input,
        /// text, dot (Graphviz), mermaid, or svg (drawn by Graphviz's `dot`).
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
        /// Draw every (step, host) node instead of the steps.
        #[arg(long)]
        hosts: bool,
    },
    /// Show what apply would change: runs only read-only checks.
    Plan {
        #[command(flatten)]
        run: RunArgs,
    },
    /// Make the hosts match the playbook; resumes an unfinished run.
    Apply {
        #[command(flatten)]
        run: RunArgs,
        /// Ignore the state of earlier runs.
        #[arg(long)]
        fresh: bool,
        /// Show what each file op changes, as a unified diff (`plan` always does).
        #[arg(long)]
        diff: bool,
    },
    /// Draw a past run as a self-contained HTML report (timeline, ops, recap).
    Report {
        /// A state file (`.graphrun/<playbook>/state.json`: its newest run) or an events file
        /// (`--output json` lines, `runs/<run id>/events.jsonl`).
        input: PathBuf,
        /// Where to write the page (the events go beside it, NAME.events.jsonl).
        #[arg(long, short = 'o', default_value = "report.html")]
        to: PathBuf,
    },
    /// List plugins, or show one plugin's parameters.
    Plugins {
        /// A plugin name.
        name: Option<String>,
        /// Also load the custom plugins this playbook names.
        #[arg(long)]
        playbook: Option<PathBuf>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum OutputFormat {
    Human,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum GraphFormat {
    Text,
    Dot,
    Mermaid,
    Svg,
}

/// Runs the command line; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { EXIT_INVALID } else { 0 };
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(dispatch(cli.command))
}

async fn dispatch(command: Command) -> i32 {
    let mut registry = Registry::builtin();
    match command {
        Command::Validate { input } => match load(&input, &mut registry) {
            Ok(playbook) => {
                let nodes: usize = playbook.steps.iter().map(|s| s.hosts.len()).sum();
                println!(
                    "{}: valid ({}, {}, {})",
                    input.playbook.display(),
                    plural(playbook.steps.len(), "step"),
                    plural(playbook.hosts.len(), "host"),
                    plural(nodes, "node")
                );
                0
            }
            Err(code) => code,
        },
        Command::Graph {
            input,
            format,
            hosts,
        } => match load(&input, &mut registry) {
            Ok(playbook) => match dag::Dag::build(&playbook, &Selection::default()) {
                Ok(dag) => {
                    let format = match format {
                        GraphFormat::Text => graph::GraphFormat::Text,
                        GraphFormat::Dot => graph::GraphFormat::Dot,
                        GraphFormat::Mermaid => graph::GraphFormat::Mermaid,
                        GraphFormat::Svg => graph::GraphFormat::Svg,
                    };
                    match graph::render(&playbook, &dag, format, hosts) {
                        Ok(picture) => {
                            print!("{picture}");
                            0
                        }
                        Err(message) => {
                            eprintln!("error: {message}");
                            1
                        }
                    }
                }
                Err(err) => usage_error(&err),
            },
            Err(code) => code,
        },
        Command::Plan { run } => run_playbook(run, Mode::Plan, false, false, registry).await,
        Command::Apply { run, fresh, diff } => {
            run_playbook(run, Mode::Apply, fresh, diff, registry).await
        }
        Command::Report { input, to } => match report::read_events(&input) {
            Ok(events) => write_report(&to, &events),
            Err(message) => usage_error(&message),
        },
        Command::Plugins { name, playbook } => {
            if let Some(path) = playbook {
                let input = Input {
                    playbook: path,
                    inventory: None,
                };
                if let Err(code) = load(&input, &mut registry) {
                    return code;
                }
            }
            show_plugins(&registry, name.as_deref())
        }
    }
}

fn load(input: &Input, registry: &mut Registry) -> Result<Playbook, i32> {
    playbook::load(&input.playbook, input.inventory.as_deref(), registry).map_err(|diagnostics| {
        for diagnostic in &diagnostics {
            eprintln!("{diagnostic}");
        }
        eprintln!(
            "{} error{} in {}: nothing was run",
            diagnostics.len(),
            if diagnostics.len() == 1 { "" } else { "s" },
            input.playbook.display()
        );
        EXIT_INVALID
    })
}

fn usage_error(message: &str) -> i32 {
    eprintln!("error: {message}");
    EXIT_INVALID
}

async fn run_playbook(
    args: RunArgs,
    mode: Mode,
    fresh: bool,
    diff: bool,
    mut registry: Registry,
) -> i32 {
    let playbook = match load(&args.input, &mut registry) {
        Ok(playbook) => playbook,
        Err(code) => return code,
    };
    for host in Connections::unchecked_hosts(&playbook.hosts) {
        eprintln!("warning: host key checking is off for {host}: anyone on the network path can impersonate it");
    }
    let output: Arc<dyn Reporter> = match args.output {
        OutputFormat::Human => Arc::new(Human::new()),
        OutputFormat::Json => Arc::new(JsonLines),
    };
    let recorder = Arc::new(Recorder::new(output, args.report.is_some()));
    let options = RunOptions {
        mode,
        parallel: args.parallel,
        per_host: args.per_host,
        fail_fast: args.fail_fast,
        fresh,
        diff,
        selection: Selection {
            limit: args.limit,
            only: args.only,
        },
    };
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    match engine::execute(
        playbook,
        Arc::new(registry),
        Transport::Real,
        options,
        recorder.clone(),
        interrupt,
    )
    .await
    {
        Ok(summary) => match &args.report {
            Some(path) => match write_report(path, &recorder.events()) {
                0 => summary.exit_code,
                failed => summary.exit_code.max(failed),
            },
            None => summary.exit_code,
        },
        Err(message) => usage_error(&message),
    }
}

/// Writes the report page and its events; 0, or 1 when they cannot be written.
fn write_report(path: &std::path::Path, events: &[serde_json::Value]) -> i32 {
    match report::write(path, events) {
        Ok(events_file) => {
            eprintln!(
                "report: {} (events: {})",
                path.display(),
                events_file.display()
            );
            0
        }
        Err(message) => {
            eprintln!("error: {message}");
            1
        }
    }
}

fn show_plugins(registry: &Registry, name: Option<&str>) -> i32 {
    let Some(name) = name else {
        for entry in registry.entries() {
            println!(
                "{:<16} {:<10} {}  [{}]",
                entry.info.name, entry.info.version, entry.info.summary, entry.origin
            );
        }
        return 0;
    };
    let Some(entry) = registry.get(name) else {
        return usage_error(&format!(
            "no plugin `{name}` (`graphrun plugins` lists them)"
        ));
    };
    let info = &entry.info;
    println!(
        "{} {} [{}]\n{}\n\nparameters:",
        info.name, info.version, entry.origin, info.summary
    );
    for param in &info.params {
        let required = if param.required { " (required)" } else { "" };
        let default = param
            .default
            .as_ref()
            .map(|d| format!(" [default: {d}]"))
            .unwrap_or_default();
        println!(
            "  {:<12} {}{required}{default}\n      {}",
            param.name,
            param.kind.describe(),
            param.doc
        );
    }
    if !info.outputs.is_empty() {
        println!("\noutputs: {}", info.outputs.join(", "));
    }
    0
}
