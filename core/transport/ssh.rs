//! How a host's shells are started: the local `sh`, or `sh` on the host in a session over
//! its master connection.
//!
//! graphrun drives the system's `ssh` for the master connection (see `master.rs`), so
//! `~/.ssh/config`, ssh-agent and ProxyJump apply as they do on the command line.

use std::path::Path;
use std::time::Duration;

use tokio::process::Command;

use crate::playbook::{Connection, ConnectionKind, Host, HostKeyChecking};

/// The command that starts a shell on this machine (a host with `connection = "local"`).
pub fn local_shell(connection: &Connection) -> Command {
    let shell = remote_shell(connection);
    let mut command = Command::new(&shell[0]);
    command.args(&shell[1..]);
    command
}

/// The command that starts a shell in a session on the host: fixed words, no user value among
/// them (the remote login shell parses them, then gives its process to the shell: `exec`).
pub fn session_shell(connection: &Connection) -> String {
    format!("exec {}", remote_shell(connection).join(" "))
}

/// The line a new shell reads before anything else: the sudo password, read by `sudo -S`
/// from stdin and never placed on a command line.
pub fn first_line(connection: &Connection) -> Option<String> {
    connection
        .become_root
        .then(|| connection.become_password.clone())
        .flatten()
}

/// The master connection to the host: authenticates once, then serves sessions on the
/// control socket `control` until it is stopped (no background fork, no ControlPersist: it
/// lives exactly as long as the run).
pub fn master_command(host: &Host, control: &Path) -> Command {
    let mut command = Command::new("ssh");
    command
        .args(ssh_args(host))
        .args([
            "-N",
            "-o",
            "ControlMaster=yes",
            "-o",
            "ControlPersist=no",
            "-S",
        ])
        .arg(control)
        .arg("--")
        .arg(&host.address);
    command
}

/// Prints the command line that reaches the host, with `-v`. It holds no secret: a sudo
/// password goes to each shell's stdin.
pub fn show_command(host: &Host, command: &Command) {
    if crate::output::style::verbose() {
        eprintln!("{}: {:?}", host.name, command.as_std());
    }
}

/// `sh`, or `sh` under sudo: `-n` fails at once when a password would be needed (no hang);
/// with a password, `-S` reads it from the first line of stdin.
fn remote_shell(connection: &Connection) -> Vec<String> {
    let words: &[&str] = match (connection.become_root, &connection.become_password) {
        (false, _) => &["sh"],
        (true, _) if connection.kind == ConnectionKind::Local && running_as_root() => &["sh"],
        (true, None) => &["sudo", "-n", "-H", "sh"],
        (true, Some(_)) => &["sudo", "-S", "-p", "", "-H", "sh"],
    };
    words.iter().map(|w| w.to_string()).collect()
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Options for one host's connection.
fn ssh_args(host: &Host) -> Vec<String> {
    let mut args = common_args(&host.connection);
    let connection = &host.connection;
    if let Some(user) = &connection.user {
        args.extend(["-o".into(), format!("User={user}")]);
    }
    if let Some(port) = connection.port {
        args.extend(["-o".into(), format!("Port={port}")]);
    }
    if let Some(jump) = &connection.jump {
        args.extend([
            "-o".into(),
            format!("ProxyCommand={}", proxy_command(connection, jump)),
        ]);
    }
    args
}

/// Reaches the host through a bastion with `ssh -W`. Unlike `-J`, this carries graphrun's own
/// options (key, known_hosts, host key policy, timeouts) to the bastion connection too.
fn proxy_command(connection: &Connection, jump: &str) -> String {
    let (user, rest) = jump
        .rsplit_once('@')
        .map_or((None, jump), |(u, r)| (Some(u), r));
    let (address, port) = match rest.rsplit_once(':') {
        Some((address, port)) if port.parse::<u16>().is_ok() => (address, Some(port)),
        _ => (rest, None),
    };
    let mut words = vec!["ssh".to_string()];
    words.extend(common_args(connection));
    if let Some(user) = user {
        words.extend(["-l".into(), user.into()]);
    }
    if let Some(port) = port {
        words.extend(["-p".into(), port.into()]);
    }
    words.extend(["-W".into(), "%h:%p".into(), "--".into(), address.into()]);
    // ssh runs the proxy command with a shell: every word is quoted.
    graphrun_plugin_api::shell::join(&words)
}

/// Options shared by the host connection and its bastion.
fn common_args(connection: &Connection) -> Vec<String> {
    let seconds = connection
        .connect_timeout
        .max(Duration::from_secs(1))
        .as_secs();
    let mut args: Vec<String> = vec![
        "-T".into(),
        "-o".into(),
        "BatchMode=yes".into(),
        "-o".into(),
        format!("ConnectTimeout={seconds}"),
        // A dead peer (power loss, partition) is noticed within about the connect timeout.
        "-o".into(),
        format!("ServerAliveInterval={}", (seconds / 3).max(1)),
        "-o".into(),
        "ServerAliveCountMax=3".into(),
        "-o".into(),
        "LogLevel=ERROR".into(),
    ];
    let mut option = |text: String| {
        args.push("-o".into());
        args.push(text);
    };
    match connection.host_key_checking {
        HostKeyChecking::Strict => option("StrictHostKeyChecking=yes".into()),
        HostKeyChecking::AcceptNew => option("StrictHostKeyChecking=accept-new".into()),
        HostKeyChecking::Off => {
            option("StrictHostKeyChecking=no".into());
            option("UserKnownHostsFile=/dev/null".into());
        }
    }
    if connection.host_key_checking != HostKeyChecking::Off {
        if let Some(file) = &connection.known_hosts_file {
            option(format!("UserKnownHostsFile={}", file.display()));
        }
    }
    if let Some(identity) = &connection.identity_file {
        option(format!("IdentityFile={}", identity.display()));
        option("IdentitiesOnly=yes".into());
    }
    args
}

/// Turns ssh's last words into a message that says what to do.
pub fn explain_failure(host: &Host, message: &str) -> String {
    let known_hosts = host
        .connection
        .known_hosts_file
        .as_ref()
        .map_or("~/.ssh/known_hosts".to_string(), |p| {
            p.display().to_string()
        });
    if message.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || message.contains("Host key verification failed")
    {
        if message.contains("HAS CHANGED")
            || host.connection.host_key_checking != HostKeyChecking::Strict
        {
            return format!(
                "host key of {} has CHANGED; refusing to connect (this can be an attack). If the host was reinstalled, \
                 remove the old key with `ssh-keygen -R {} -f {known_hosts}` and run again",
                host.address, host.address
            );
        }
        return format!(
            "host key of {} is not in {known_hosts} and host_key_checking = \"strict\": add it (ssh-keyscan) or use \"accept-new\"",
            host.address
        );
    }
    if message.contains("a password is required") || message.contains("incorrect password") {
        return format!(
            "sudo on {} needs a password: set become_password = {{ env = \"VARIABLE\" }} for this host, or allow NOPASSWD ({message})",
            host.name
        );
    }
    message.to_string()
}

/// Whether retrying the connection could help (refused, timed out) or not (keys, auth, sudo).
pub fn is_permanent(message: &str) -> bool {
    [
        "Host key verification failed",
        "HAS CHANGED",
        "Permission denied",
        "password is required",
        "incorrect password",
        "sudo:",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}
