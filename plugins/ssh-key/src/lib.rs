//! The built-in `ssh_key` step, the walkthrough's "SSH key from master to all nodes" (what RKE1
//! logs in with): without `authorize`, an ed25519 key pair made on the host unless it exists,
//! its public key the step's output `public_key`; with `authorize = "{{ steps.ID.outputs.public_key }}"`,
//! that key added to a user's `authorized_keys` on each host.
//!
//! The private key never leaves its host: only the public key travels, as a step output.

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{
    Op, ParamKind, Params, Plan, PlanRequest, PlanResponse, Plugin, PluginError, PluginInfo, Run,
};
use graphrun_plugin_kit::params::{specs, Args, Param};

const PARAMS: &[Param] = &[
    Param::optional("path", ParamKind::String, "The private key on the host (`~/` is the home of the user ops run as); its public key is PATH.pub")
        .default_str("~/.ssh/id_ed25519"),
    Param::optional("authorize", ParamKind::String, "A public key (`ssh-ed25519 AAAA… comment`) to add to `user`'s authorized_keys instead of making a key"),
    Param::optional("user", ParamKind::String, "With `authorize`: whose authorized_keys (default: the login user, also under sudo)"),
];

/// Key types `authorize` accepts (OpenSSH's names).
const KEY_TYPES: [&str; 4] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
];

/// The `ssh_key` step.
#[derive(Debug, Default)]
pub struct SshKeyPlugin;

impl Plugin for SshKeyPlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "ssh_key".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Makes an SSH key pair on a host (output public_key), or authorizes a public key on hosts".into(),
            params: specs(PARAMS),
            outputs: vec!["public_key".into()],
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        check(&Args::new(PARAMS, params))
            .err()
            .into_iter()
            .collect()
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        let args = Args::new(PARAMS, &request.params);
        check(&args)?;
        let ops = match args.str("authorize")? {
            Some(key) => vec![authorize(key, args.str("user")?)],
            None => make(args.required_str("path")?),
        };
        Ok(Plan::ops(ops).into())
    }
}

fn check(args: &Args) -> Result<(), PluginError> {
    let path = args.required_str("path")?;
    if !(path.starts_with('/') || path.starts_with("~/") || args.is_unrendered("path")) {
        return Err(PluginError::param(
            "path",
            format!("`{path}` is neither absolute nor under `~/`"),
        ));
    }
    if args.has("user") && !args.has("authorize") {
        return Err(PluginError::param("user", "goes with `authorize`"));
    }
    let Some(key) = args
        .str("authorize")?
        .filter(|_| !args.is_unrendered("authorize"))
    else {
        return Ok(());
    };
    let words: Vec<&str> = key.split_whitespace().collect();
    let well_formed = key.lines().count() == 1
        && words.len() >= 2
        && KEY_TYPES.contains(&words[0])
        && words[1]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
    if well_formed {
        Ok(())
    } else if key.trim().is_empty() {
        Err(PluginError::param(
            "authorize",
            "is empty: the step that makes the key has not given one (in `plan`, before it ran, no key exists yet)",
        ))
    } else {
        Err(PluginError::param(
            "authorize",
            format!(
                "is not one OpenSSH public key line (`{} AAAA… comment`)",
                KEY_TYPES[0]
            ),
        ))
    }
}

/// A path for the shell: `~/x` becomes `"$HOME"/x` (quoting would keep the `~` literal).
fn shell_path(path: &str) -> String {
    match path.strip_prefix("~/") {
        Some(rest) => format!("\"$HOME\"/{}", quote(rest)),
        None => quote(path),
    }
}

/// The key pair unless the private key exists, then its public key as the output.
fn make(path: &str) -> Vec<Op> {
    let key = shell_path(path);
    vec![
        Op::command_unless(
            Run::Shell(format!(
                "mkdir -p -m 0700 \"$(dirname {key})\" && ssh-keygen -q -t ed25519 -N '' -C graphrun -f {key}"
            )),
            Run::Shell(format!("test -s {key}")),
        ),
        Op::check(Run::Shell(format!("cat {key}.pub"))).capturing("public_key"),
    ]
}

/// The key in `user`'s authorized_keys (directory 0700, file 0600, owned by the user) unless
/// it is there.
fn authorize(key: &str, user: Option<&str>) -> Op {
    let user = user.map_or_else(|| "\"${SUDO_USER:-$(id -un)}\"".to_string(), quote);
    let home = format!(
        "u={user}; h=$(getent passwd \"$u\" | cut -d: -f6); [ -n \"$h\" ] || {{ echo \"no user $u\" >&2; exit 1; }}"
    );
    let line = quote(key.trim());
    Op::command_unless(
        Run::Shell(format!(
            "{home}; install -d -m 0700 -o \"$u\" -g \"$(id -gn \"$u\")\" \"$h/.ssh\" \
             && echo {line} >> \"$h/.ssh/authorized_keys\" \
             && chown \"$u:\" \"$h/.ssh/authorized_keys\" && chmod 0600 \"$h/.ssh/authorized_keys\""
        )),
        Run::Shell(format!(
            "{home}; grep -qxF {line} \"$h/.ssh/authorized_keys\" 2>/dev/null"
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use graphrun_plugin_kit::testkit::{render, Request};
    use serde_json::json;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKa7 graphrun";

    #[test]
    fn makes_a_key_unless_it_exists_and_captures_the_public_key() {
        let plan = Request::new(json!({"path": "~/.ssh/id_ed25519"}))
            .plan(&SshKeyPlugin, |_| None)
            .unwrap();
        assert_eq!(
            render(&plan),
            "1. run `mkdir -p -m 0700 \"$(dirname \"$HOME\"/.ssh/id_ed25519)\" && ssh-keygen -q -t ed25519 -N '' -C graphrun -f \"$HOME\"/.ssh/id_ed25519` unless `test -s \"$HOME\"/.ssh/id_ed25519` succeeds\n\
             2. check `cat \"$HOME\"/.ssh/id_ed25519.pub` → output `public_key`\n"
        );
    }

    #[test]
    fn authorizes_a_key_for_the_login_user_or_a_named_one() {
        let plan = Request::new(json!({"authorize": KEY}))
            .plan(&SshKeyPlugin, |_| None)
            .unwrap();
        let text = render(&plan);
        assert!(text.contains("u=\"${SUDO_USER:-$(id -un)}\""), "{text}");
        assert!(text.contains(&format!("grep -qxF '{KEY}'")), "{text}");
        let plan = Request::new(json!({"authorize": KEY, "user": "rke"}))
            .plan(&SshKeyPlugin, |_| None)
            .unwrap();
        assert!(render(&plan).contains("u=rke;"));
    }

    #[test]
    fn refuses_what_is_not_a_public_key() {
        let validate = |value: serde_json::Value| {
            SshKeyPlugin.validate(&serde_json::from_value(value).unwrap())
        };
        for bad in [
            "",
            "AAAA only",
            "ssh-ed25519 AAAA\nssh-rsa BBBB",
            "ssh-ed25519 $(id)",
        ] {
            let errors = validate(json!({"authorize": bad}));
            assert_eq!(errors[0].param.as_deref(), Some("authorize"), "{bad:?}");
        }
        assert!(validate(json!({"authorize": "{{ steps.key.outputs.public_key }}"})).is_empty());
        assert_eq!(
            validate(json!({"user": "rke"}))[0].param.as_deref(),
            Some("user")
        );
        assert_eq!(
            validate(json!({"path": "id_rsa"}))[0].param.as_deref(),
            Some("path")
        );
    }
}
