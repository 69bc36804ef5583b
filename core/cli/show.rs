//! What the command line prints besides runs: plugin documentation, completions, the manual,
//! all through [`out`], which treats a closed pipe (`graphrun graph … | head -1`) as a
//! normal end.

use std::io::Write;

use clap::CommandFactory;

use super::usage_error;
use crate::playbook::diagnostic::closest;
use crate::plugins::Registry;

/// Writes `text` to stdout; exit code 0 also when the reader went away.
pub(super) fn out(text: &str) -> i32 {
    out_bytes(text.as_bytes())
}

fn out_bytes(bytes: &[u8]) -> i32 {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => 0,
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(err) => {
            eprintln!("error: cannot write to stdout: {err}");
            1
        }
    }
}

/// `graphrun plugins [NAME]`.
pub(super) fn plugins(registry: &Registry, name: Option<&str>) -> i32 {
    let Some(name) = name else {
        let mut text = String::new();
        for entry in registry.entries() {
            text.push_str(&format!(
                "{:<16} {:<10} {}  [{}]\n",
                entry.info.name, entry.info.version, entry.info.summary, entry.origin
            ));
        }
        return out(&text);
    };
    let Some(entry) = registry.get(name) else {
        let hint = match closest(name, registry.names()) {
            Some(best) => format!("did you mean `{best}`? "),
            None => String::new(),
        };
        return usage_error(&format!(
            "no plugin `{name}` ({hint}`graphrun plugins` lists them)"
        ));
    };
    let info = &entry.info;
    let mut text = format!(
        "{} {} [{}]\n{}\n\nparameters:\n",
        info.name, info.version, entry.origin, info.summary
    );
    for param in &info.params {
        let required = if param.required { " (required)" } else { "" };
        let default = param
            .default
            .as_ref()
            .map(|d| format!(" [default: {d}]"))
            .unwrap_or_default();
        text.push_str(&format!(
            "  {:<12} {}{required}{default}\n      {}\n",
            param.name,
            param.kind.describe(),
            param.doc
        ));
    }
    if !info.outputs.is_empty() {
        text.push_str(&format!("\noutputs: {}\n", info.outputs.join(", ")));
    }
    out(&text)
}

/// `graphrun completions SHELL`.
pub(super) fn completions<C: CommandFactory>(shell: clap_complete::Shell) -> i32 {
    let mut command = C::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "graphrun", &mut script);
    out_bytes(&script)
}

/// `graphrun man`: the manual page, in roff.
pub(super) fn man<C: CommandFactory>() -> i32 {
    let mut page = Vec::new();
    match clap_mangen::Man::new(C::command()).render(&mut page) {
        Ok(()) => out_bytes(&page),
        Err(err) => {
            eprintln!("error: cannot render the manual: {err}");
            1
        }
    }
}
