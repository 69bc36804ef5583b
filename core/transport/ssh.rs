//! How a host's shell is started: the local `sh`, or `sh` on the host through OpenSSH.
//!
//! graphrun drives the system's `ssh`, so `~/.ssh/config`, ssh-agent, ProxyJump and the user's
//! own ControlMaster settings all apply as they do on the command line. One ssh process per
//! host carries every op of the run (see `shell.rs`).

use std::time::Duration;

use tokio::process::Command;

use crate::playbook::{Connection, ConnectionKind, Host, HostKeyChecking};

/// The command that starts the host's shell, and the line to write before anything else
/// (the sudo password, read by `sudo -S` from stdin and never placed on a command line).
pub fn shell_command(host: &Host) -> (Command, Option<String>) {
    let connection = &host.connection;
    let shell = remote_shell(connection);
    let command = match connection.kind {
        ConnectionKind::Local => {
            let mut command = Command::new(&shell[0]);
            command.args(&shell[1..]);
            command
        }
        ConnectionKind::Ssh => {
            let mut command = Command::new("ssh");
            command.args(ssh_args(host));
            // ssh joins the remote words with spaces and the remote login shell parses them;
            // these words are fixed text, no user value among them.
            command.arg("--").arg(&host.address).args(&shell);
            command
        }
    };
    let first_line = connection
        .become_root
        .then(|| connection.become_password.clone())
        .flatten();
    (command, first_line)
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
