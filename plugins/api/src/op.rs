//! Ops: the pure-data actions a plugin plans and the engine carries out.
//!
//! Each op is idempotent by construction: it carries its own guard (the file already has the
//! content, the line is present, `creates` exists…), so the engine can run guard and action in one
//! remote command and report "changed" only when something changed. Build ops with the
//! constructors ([`Op::line`], [`Op::file`], [`Op::command`], …) rather than by hand.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::kube::{KubeRef, Wait};
use crate::Checksum;

/// A command: a string run by `sh -c`, or an argv quoted word by word.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Run {
    /// Shell text, run by `sh -c` (the author quotes any value with [`crate::shell::quote`]).
    Shell(String),
    /// Program and arguments; the engine quotes each word.
    Argv(Vec<String>),
}

impl Run {
    /// The command as one line of shell text.
    pub fn to_shell(&self) -> String {
        match self {
            Run::Shell(text) => text.clone(),
            Run::Argv(argv) => crate::shell::join(argv),
        }
    }
}

/// Ownership and permissions of a file or directory; unset fields are left as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attrs {
    /// Octal mode such as `"0644"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Owning user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Owning group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// One action on a host (or, for fetch and upload, between a host and the control machine).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Op {
    /// Run a command unless its guard says the work is done.
    Command {
        /// What to run.
        run: Run,
        /// Skip when this path exists.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        creates: Option<String>,
        /// Skip when this command succeeds (it must not change anything).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unless: Option<Run>,
        /// `false` for a read-only check: it never counts as a change and `plan` runs it.
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        changes: bool,
        /// Extra environment variables.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        env: BTreeMap<String, String>,
        /// Working directory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cwd: Option<String>,
        /// Fills the step output of this name with the command's trimmed stdout (see
        /// [`Op::capturing`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        capture: Option<String>,
    },
    /// A file with exactly this content (written to a temporary file, then renamed).
    File {
        /// Remote path.
        path: String,
        /// Whole content.
        content: String,
        /// Mode and owner.
        #[serde(flatten)]
        attrs: Attrs,
    },
    /// A directory (parents included).
    Directory {
        /// Remote path.
        path: String,
        /// Mode and owner.
        #[serde(flatten)]
        attrs: Attrs,
    },
    /// No file or directory at this path.
    Absent {
        /// Remote path.
        path: String,
    },
    /// A line present in (or, with `absent`, missing from) a file; the file is created if needed.
    Line {
        /// Remote path.
        path: String,
        /// The whole line, without newline.
        line: String,
        /// Remove every copy of the line instead.
        #[serde(default, skip_serializing_if = "is_false")]
        absent: bool,
    },
    /// Rewrite every line matching a POSIX extended regular expression (as `sed -E`).
    Replace {
        /// Remote path.
        path: String,
        /// POSIX ERE; `\1`… in `with` refer to its groups.
        regex: String,
        /// Replacement.
        with: String,
    },
    /// A block of lines between `# BEGIN graphrun ID` / `# END graphrun ID` markers, kept as given.
    Block {
        /// Remote path.
        path: String,
        /// Identifies the block, so several plugins can each own one in the same file.
        id: String,
        /// The lines inside the markers.
        content: String,
    },
    /// Copy a remote file to the control machine (mode 0600 unless set).
    Fetch {
        /// Remote path.
        path: String,
        /// Local path; relative paths are under the request's `fetch_dir`.
        to: String,
    },
    /// Copy a local file (an artifact, a binary) to the host.
    Upload {
        /// Local path; relative paths are relative to the playbook's folder.
        source: String,
        /// Remote path.
        path: String,
        /// Expected sha256 of the source, checked before anything is sent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        /// Mode and owner.
        #[serde(flatten)]
        attrs: Attrs,
    },
    /// A file downloaded by the control machine (once per run, through the playbook's
    /// `[artifacts]` mirror or folder when it has one), verified, and uploaded to hosts whose
    /// copy differs. Build it with [`Op::artifact`].
    Artifact {
        /// The upstream URL (never a mirror's: the engine maps it to the mirror).
        url: String,
        /// How to know the file is the right one.
        checksum: Checksum,
        /// Remote path.
        path: String,
        /// Mode and owner.
        #[serde(flatten)]
        attrs: Attrs,
    },
    /// Server-side apply of a Kubernetes object (field manager `graphrun`), from the control
    /// machine; `plan` runs it as a server-side dry run.
    KubeApply {
        /// Kubeconfig on the control machine (a cluster step's `kubeconfig` output).
        kubeconfig: String,
        /// The whole object: `apiVersion`, `kind`, `metadata.name`, …
        object: serde_json::Value,
        /// Only a server-side dry run, even in `apply`: the server validates and defaults the
        /// object but stores nothing.
        #[serde(default, skip_serializing_if = "is_false")]
        dry_run: bool,
    },
    /// Waits until a Kubernetes object reaches a state, with a timeout; never a change.
    KubeWait {
        /// Kubeconfig on the control machine.
        kubeconfig: String,
        /// The object waited for (it may not exist yet).
        target: KubeRef,
        /// What it must reach.
        wait: Wait,
        /// Longest wait, in seconds.
        timeout_secs: u64,
    },
}

/// Where an op is carried out; the engine has one executor for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The node's host, through its shell (uploads and fetches send or keep bytes on the control
    /// machine as part of the same op).
    Host,
    /// A Kubernetes API server, from the control machine with the op's kubeconfig.
    Cluster,
}

fn yes() -> bool {
    true
}

fn is_true(value: &bool) -> bool {
    *value
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Op {
    /// A command that always runs and counts as a change.
    pub fn command(run: Run) -> Self {
        Op::Command {
            run,
            creates: None,
            unless: None,
            changes: true,
            env: BTreeMap::new(),
            cwd: None,
            capture: None,
        }
    }

    /// A command that runs only while `path` does not exist.
    pub fn command_creating(run: Run, path: &str) -> Self {
        Op::command(run).with_creates(path)
    }

    /// A command that runs only while `unless` fails.
    pub fn command_unless(run: Run, unless: Run) -> Self {
        let mut op = Op::command(run);
        if let Op::Command { unless: guard, .. } = &mut op {
            *guard = Some(unless);
        }
        op
    }

    /// A read-only check: never a change, run by `plan` too; fails the step when it fails.
    pub fn check(run: Run) -> Self {
        let mut op = Op::command(run);
        if let Op::Command { changes, .. } = &mut op {
            *changes = false;
        }
        op
    }

    /// Makes a command's trimmed stdout the step output `name` (`steps.ID.outputs.NAME`), set
    /// whenever the command runs: in `plan` too for a read-only [`Op::check`], so later steps
    /// can plan with it (no effect on other ops). The plan's own outputs take precedence.
    pub fn capturing(mut self, name: &str) -> Self {
        if let Op::Command { capture, .. } = &mut self {
            *capture = Some(name.to_string());
        }
        self
    }

    /// Adds a `creates` guard to a command (no effect on other ops).
    pub fn with_creates(mut self, path: &str) -> Self {
        if let Op::Command { creates, .. } = &mut self {
            *creates = Some(path.to_string());
        }
        self
    }

    /// A file with this exact content.
    pub fn file(path: &str, content: &str) -> Self {
        Op::File {
            path: path.to_string(),
            content: content.to_string(),
            attrs: Attrs::default(),
        }
    }

    /// A directory, parents included.
    pub fn directory(path: &str) -> Self {
        Op::Directory {
            path: path.to_string(),
            attrs: Attrs::default(),
        }
    }

    /// Ensures `line` is in the file at `path`.
    pub fn line(path: &str, line: &str) -> Self {
        Op::Line {
            path: path.to_string(),
            line: line.to_string(),
            absent: false,
        }
    }

    /// Ensures `line` is nowhere in the file at `path`.
    pub fn line_absent(path: &str, line: &str) -> Self {
        Op::Line {
            path: path.to_string(),
            line: line.to_string(),
            absent: true,
        }
    }

    /// Rewrites lines matching `regex` (POSIX ERE) with `with`.
    pub fn replace(path: &str, regex: &str, with: &str) -> Self {
        Op::Replace {
            path: path.to_string(),
            regex: regex.to_string(),
            with: with.to_string(),
        }
    }

    /// A managed block of lines identified by `id` in the file at `path`.
    pub fn block(path: &str, id: &str, content: &str) -> Self {
        Op::Block {
            path: path.to_string(),
            id: id.to_string(),
            content: content.to_string(),
        }
    }

    /// Sets mode, owner and group on a file, directory, upload or artifact (no effect on
    /// other ops).
    pub fn with_attrs(mut self, new: Attrs) -> Self {
        if let Some(attrs) = self.attrs_mut() {
            *attrs = new;
        }
        self
    }

    /// Sets the mode (octal, e.g. `"0644"`) on a file, directory, upload or artifact.
    pub fn with_mode(mut self, mode: &str) -> Self {
        if let Some(attrs) = self.attrs_mut() {
            attrs.mode = Some(mode.to_string());
        }
        self
    }

    fn attrs_mut(&mut self) -> Option<&mut Attrs> {
        match self {
            Op::File { attrs, .. }
            | Op::Directory { attrs, .. }
            | Op::Upload { attrs, .. }
            | Op::Artifact { attrs, .. } => Some(attrs),
            _ => None,
        }
    }

    /// Whether this op can change anything (a read-only check, a fetch, a wait or a dry run
    /// cannot).
    pub fn may_change(&self) -> bool {
        !matches!(
            self,
            Op::Command { changes: false, .. }
                | Op::Fetch { .. }
                | Op::KubeWait { .. }
                | Op::KubeApply { dry_run: true, .. }
        )
    }

    /// Where the engine carries the op out.
    pub fn target(&self) -> Target {
        match self {
            Op::KubeApply { .. } | Op::KubeWait { .. } => Target::Cluster,
            _ => Target::Host,
        }
    }

    /// One line for `graphrun plan` and logs.
    pub fn summary(&self) -> String {
        match self {
            Op::Command {
                run,
                creates,
                unless,
                changes,
                capture,
                ..
            } => {
                let mut text = format!(
                    "{} `{}`",
                    if *changes { "run" } else { "check" },
                    run.to_shell()
                );
                if let Some(path) = creates {
                    text.push_str(&format!(" unless {path} exists"));
                }
                if let Some(guard) = unless {
                    text.push_str(&format!(" unless `{}` succeeds", guard.to_shell()));
                }
                if let Some(name) = capture {
                    text.push_str(&format!(" → output `{name}`"));
                }
                text
            }
            Op::File {
                path,
                content,
                attrs,
            } => {
                format!(
                    "file {path} ({} bytes{})",
                    content.len(),
                    attrs_suffix(attrs)
                )
            }
            Op::Directory { path, attrs } => format!("directory {path}{}", attrs_suffix(attrs)),
            Op::Absent { path } => format!("absent {path}"),
            Op::Line {
                path,
                line,
                absent: false,
            } => format!("line in {path}: {line}"),
            Op::Line {
                path,
                line,
                absent: true,
            } => format!("no line in {path}: {line}"),
            Op::Replace { path, regex, with } => format!("replace in {path}: /{regex}/ → {with}"),
            Op::Block { path, id, .. } => format!("block `{id}` in {path}"),
            Op::Fetch { path, to } => format!("fetch {path} → {to}"),
            Op::Upload { source, path, .. } => format!("upload {source} → {path}"),
            Op::Artifact {
                url,
                checksum,
                path,
                attrs,
            } => format!(
                "artifact {url} → {path} ({checksum}{})",
                attrs_suffix(attrs)
            ),
            Op::KubeApply { .. } | Op::KubeWait { .. } => self.kube_summary(),
        }
    }
}

fn attrs_suffix(attrs: &Attrs) -> String {
    let parts: Vec<String> = [
        attrs.mode.as_ref().map(|m| format!("mode {m}")),
        attrs.owner.as_ref().map(|o| format!("owner {o}")),
        attrs.group.as_ref().map(|g| format!("group {g}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(", {}", parts.join(", "))
    }
}

/// Checks an octal mode string such as `"0644"` or `"750"`.
pub fn valid_mode(mode: &str) -> bool {
    (3..=4).contains(&mode.len()) && mode.bytes().all(|b| (b'0'..=b'7').contains(&b))
}
