//! The command line: `graphrun validate | graph | plan | apply | report | plugins | cache |
//! completions | man`.

mod cache;
mod show;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

use crate::engine::{self, dag, Mode, Reporter, RunOptions, Selection};
use crate::output::report::{self, Recorder};
use crate::output::style::{self, ColorChoice, Paint};
use crate::output::{graph, plural, Human, JsonLines};
use crate::playbook::{self, Diagnostic, Playbook, Severity};
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
    /// Colour: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, global = true, default_value_t = ColorChoice::Auto)]
    color: ColorChoice,
    /// Say more: each op's shell text and each ssh command line (secrets redacted).
    #[arg(long, short, global = true, conflicts_with = "quiet")]
    verbose: bool,
    /// Say less: no progress or per-node lines; problems, failures and the recap only.
    #[arg(long, short, global = true)]
    quiet: bool,
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
struct SelectionArgs {
    /// Only these hosts or groups (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    limit: Vec<String>,
    /// Only these steps (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

impl From<SelectionArgs> for Selection {
    fn from(args: SelectionArgs) -> Self {
        Selection {
            limit: args.limit,
            only: args.only,
        }
    }
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    input: Input,
    #[command(flatten)]
    selection: SelectionArgs,
    /// Keep state, run logs and fetched files here instead of `.graphrun/<playbook>/` next to
    /// the playbook (for read-only playbook folders).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Hosts worked on at once (like Ansible's forks).
    #[arg(long, default_value_t = 64)]
    parallel: usize,
    /// Nodes running at once on one host (each in a shell of its own).
    #[arg(long, default_value_t = 4)]
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
        #[command(flatten)]
        selection: SelectionArgs,
    },
    /// Show what apply would change: runs only read-only checks.
    Plan {
        #[command(flatten)]
        run: RunArgs,
        /// Exit 0 when nothing would change, 2 when changes are pending, 1 on failure.
        #[arg(long)]
        detailed_exitcode: bool,
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
        /// Change nothing: the same as `plan` (as `ansible-playbook --check`).
        #[arg(long, conflicts_with = "fresh")]
        check: bool,
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
    /// Look after the artifact cache on this machine.
    Cache {
        #[command(subcommand)]
        action: CacheAction,
    },
    /// Print a shell completion script (e.g. `graphrun completions bash > /etc/bash_completion.d/graphrun`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff; e.g. `graphrun man | man -l -`).
    Man,
}

#[derive(Subcommand, Debug)]
enum CacheAction {
    /// Remove the cached artifacts no run has used for a while, and downloads an interrupted
    /// run left behind (every use of a file keeps it).
    Prune {
        /// How long a file may go unused (e.g. 30d, 12h).
        #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
        unused_for: std::time::Duration,
        /// The cache folder, when a playbook's `[artifacts] cache` names another one than
        /// `~/.cache/graphrun/artifacts`.
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
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
    style::configure(cli.color, i8::from(cli.verbose) - i8::from(cli.quiet));
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
            Ok(playbook) if style::quiet() => {
                print_diagnostics(&playbook.warnings);
                0
            }
            Ok(playbook) => {
                print_diagnostics(&playbook.warnings);
                let nodes: usize = playbook.steps.iter().map(|s| s.hosts.len()).sum();
                show::out(&format!(
                    "{}: valid ({}, {}, {})\n",
                    input.playbook.display(),
                    plural(playbook.steps.len(), "step"),
                    plural(playbook.hosts.len(), "host"),
                    plural(nodes, "node")
                ))
            }
            Err(code) => code,
        },
        Command::Graph {
            input,
            format,
            hosts,
            selection,
        } => match load(&input, &mut registry) {
            Ok(playbook) => match dag::Dag::build(&playbook, &selection.into()) {
                Ok(dag) => {
                    print_diagnostics(&playbook.warnings);
                    let format = match format {
                        GraphFormat::Text => graph::GraphFormat::Text,
                        GraphFormat::Dot => graph::GraphFormat::Dot,
                        GraphFormat::Mermaid => graph::GraphFormat::Mermaid,
                        GraphFormat::Svg => graph::GraphFormat::Svg,
                    };
                    match graph::render(&playbook, &dag, format, hosts) {
                        Ok(picture) => show::out(&picture),
                        Err(message) => {
                            eprintln!("{} {message}", paint_level(Severity::Error));
                            1
                        }
                    }
                }
                Err(err) => usage_error(&err),
            },
            Err(code) => code,
        },
        Command::Plan {
            run,
            detailed_exitcode,
        } => run_playbook(run, Mode::Plan, false, false, registry, detailed_exitcode).await,
        Command::Apply {
            run,
            check: true,
            diff,
            ..
        } => run_playbook(run, Mode::Plan, false, diff, registry, false).await,
        Command::Apply {
            run, fresh, diff, ..
        } => run_playbook(run, Mode::Apply, fresh, diff, registry, false).await,
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
            show::plugins(&registry, name.as_deref())
        }
        Command::Cache {
            action:
                CacheAction::Prune {
                    unused_for,
                    cache: root,
                    dry_run,
                },
        } => cache::prune(root.as_deref(), unused_for, dry_run),
        Command::Completions { shell } => show::completions::<Cli>(shell),
        Command::Man => show::man::<Cli>(),
    }
}

fn load(input: &Input, registry: &mut Registry) -> Result<Playbook, i32> {
    match playbook::load(&input.playbook, input.inventory.as_deref(), registry) {
        Ok(playbook) => Ok(playbook),
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            eprintln!(
                "{} in {}: nothing was run",
                plural(diagnostics.len(), "error"),
                input.playbook.display()
            );
            Err(EXIT_INVALID)
        }
    }
}

fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for diagnostic in diagnostics {
        let text = diagnostic.to_string();
        // The level word is the first thing on the first line; only it is coloured.
        let rest = text.split_once(':').map_or(text.as_str(), |(_, rest)| rest);
        eprintln!("{}{rest}", paint_level(diagnostic.severity));
    }
}

/// `error:` or `warning:`, coloured when colour is on.
fn paint_level(severity: Severity) -> String {
    match severity {
        Severity::Error => style::paint("error:", Paint::Red),
        Severity::Warning => style::paint("warning:", Paint::Yellow),
    }
}

fn usage_error(message: &str) -> i32 {
    eprintln!("{} {message}", paint_level(Severity::Error));
    EXIT_INVALID
}

async fn run_playbook(
    args: RunArgs,
    mode: Mode,
    fresh: bool,
    diff: bool,
    mut registry: Registry,
    detailed_exitcode: bool,
) -> i32 {
    let playbook = match load(&args.input, &mut registry) {
        Ok(playbook) => playbook,
        Err(code) => return code,
    };
    if playbook.hosts.is_empty() {
        return usage_error(&format!(
            "{} has no hosts to run on: pass the inventory with --inventory FILE, or add [hosts.NAME] tables",
            args.input.playbook.display()
        ));
    }
    print_diagnostics(&playbook.warnings);
    if let Some(warning) = crate::limits::raise_for(playbook.hosts.len()) {
        eprintln!("{} {warning}", paint_level(Severity::Warning));
    }
    let selection: Selection = args.selection.into();
    // A bad --limit or --only is invalid input (exit 2); the run's own errors are not.
    if let Err(err) = dag::Dag::build(&playbook, &selection) {
        return usage_error(&err);
    }
    for host in Connections::unchecked_hosts(&playbook.hosts) {
        eprintln!(
            "{} host key checking is off for {host}: anyone on the network path can impersonate it",
            paint_level(Severity::Warning)
        );
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
        selection,
        state_dir: args.state_dir,
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
        Ok(summary) => {
            let exit_code = match &args.report {
                Some(path) => match write_report(path, &recorder.events()) {
                    0 => summary.exit_code,
                    failed => summary.exit_code.max(failed),
                },
                None => summary.exit_code,
            };
            let pending = summary.recap.values().any(|r| r.would_change > 0);
            if detailed_exitcode && exit_code == 0 && pending {
                2
            } else {
                exit_code
            }
        }
        Err(message) => {
            eprintln!("{} {message}", paint_level(Severity::Error));
            1
        }
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
            eprintln!("{} {message}", paint_level(Severity::Error));
            1
        }
    }
}
