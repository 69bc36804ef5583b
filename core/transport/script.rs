//! Ops compiled to POSIX shell: guard and action in one snippet, so one op is one remote step.
//!
//! A snippet is the body of a shell function that the session shell (see `shell.rs`) defines
//! and calls; only user text (`run`, `unless`) gets a subshell of its own. Every process start
//! on the host costs about a millisecond of its CPU, so snippets use builtins wherever they can
//! and start a process only to compare or to change something. Conventions:
//! - `gr_s=u; return 0`: nothing to do;
//! - `gr_change || return`: in check mode (`graphrun plan`) records "would change" and leaves;
//! - a non-zero return is a failure, its stderr the reason;
//! - `gr_backup PATH` before an existing file is replaced (a new file renamed over it):
//!   `PATH.graphrun.bak` keeps its version from before the run (one backup per file; `.bak`
//!   and the dot keep it out of `*.conf` includes, run-parts and logrotate's folders). The old
//!   file itself becomes the backup (a hard link: nothing is copied); `gr_backup_copy PATH`
//!   copies it, for a file changed in place. A removed file is renamed to its backup.
//!   Only the run's first change of a file keeps a backup (`gr_first_edit`, by the mark
//!   `$R$gr_h` that `compile` names after the path): after three steps of one run have each
//!   added a line, the backup is the file before all three, and a file the run created has
//!   none (before the run there was no file).
//! - `gr_diff OLD NEW` (only in snippets compiled with `diff`): just before a file changes,
//!   prints both contents to the op's stdout for [`parse_diff`], in the same round trip.
//!
//! Every value is quoted with [`quote`]; nothing from a playbook reaches the shell unquoted.

use base64::Engine as _;
use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{Attrs, Op, Run};

/// Shell functions every snippet may use; sent once when a session starts. (`gr_claim PATH`
/// creates PATH only if it does not exist: `set -C` opens with `O_EXCL`; see `shell.rs`.)
pub const PRELUDE: &str = r#"
gr_umask=$(umask)
gr_change() { [ "$GR_CHECK" = 1 ] || return 0; gr_s=w; return 1; }
gr_claim() { set -C; { true >"$1"; } 2>/dev/null; gr_c=$?; set +C; return $gr_c; }
gr_attrs() {
  [ -n "$2$3$4" ] || return 0
  gr_now=$(stat -c '%a %U %G' "$1") || return 1
  gr_m=${gr_now%% *}; gr_rest=${gr_now#* }; gr_o=${gr_rest%% *}; gr_g=${gr_rest#* }
  if [ -n "$2" ] && [ "$gr_m" != "$2" ]; then gr_change || return; chmod "$2" "$1" || return; gr_changed=1; fi
  if [ -n "$3" ] && [ "$gr_o" != "$3" ]; then gr_change || return; chown "$3" "$1" || return; gr_changed=1; fi
  if [ -n "$4" ] && [ "$gr_g" != "$4" ]; then gr_change || return; chgrp "$4" "$1" || return; gr_changed=1; fi
  return 0
}
gr_put() {
  if [ -f "$1" ] && cmp -s "${T}c" "$1"; then
    gr_attrs "$1" "$2" "$3" "$4" || return
    [ "$gr_changed" = 1 ] || gr_s=u
    return 0
  fi
  [ -z "$gr_d" ] || gr_diff "$1" "${T}c"
  gr_change || return
  [ -d "${1%/*}" ] || mkdir -p "${1%/*}" || return
  gr_new="$1.graphrun-new"
  gr_stage "$@" && gr_backup "$1" && mv -f "$gr_new" "$1" && return
  # A full disk (or any failed step) leaves the file as it was and no half-written copy.
  gr_rc=$?; gr_why_unwritten "$1"; rm -f "$gr_new"; return $gr_rc
}
gr_why_unwritten() {
  [ "$(df -P "${1%/*}" 2>/dev/null | awk 'NR == 2 { print $4 }')" = 0 ] &&
    echo "cannot write $1: no space left on the device" >&2
  return 0
}
gr_has_line() {
  L=$2 awk 'BEGIN { RS = "\001" }
{ s = s (NR > 1 ? RS : "") $0 }
END {
  if (s == "") exit 1
  nl = substr(s, length(s)) != "\n"
  if (index("\n" s (nl ? "\n" : ""), "\n" ENVIRON["L"] "\n")) exit 0
  exit nl ? 3 : 1
}' "$1"
}
gr_stage() {
  if [ -e "$1" ]; then
    cp -p "$1" "$gr_new" && gr_write "$gr_new" && gr_attrs "$gr_new" "$2" "$3" "$4"
  elif [ -n "$5" ]; then
    umask "$5"; gr_write "$gr_new"; gr_rc=$?; umask "$gr_umask"
    [ $gr_rc = 0 ] && gr_attrs "$gr_new" '' "$3" "$4"
  else
    gr_write "$gr_new" && gr_attrs "$gr_new" "$2" "$3" "$4"
  fi
}
gr_first_edit() {
  [ -e "$R$gr_h" ] && return 1
  : >"$R$gr_h" && gr_marks="$gr_marks $R$gr_h"
  return 0
}
gr_backup() {
  gr_first_edit && [ -f "$1" ] || return 0
  [ ! -L "$1" ] && ln -f "$1" "$1.graphrun.bak" 2>/dev/null && return
  cp -p "$1" "$1.graphrun.bak"
}
gr_backup_copy() {
  gr_first_edit && [ -f "$1" ] || return 0
  cp -p "$1" "$1.graphrun.bak"
}
gr_diff() {
  gr_a=0; [ -f "$1" ] && gr_a=$(wc -c <"$1"); gr_b=$(wc -c <"$2")
  printf 'GRAPHRUN-DIFF %s %s\n' $gr_a $gr_b
  [ $gr_a -gt 65536 ] || [ $gr_b -gt 65536 ] || { [ $gr_a = 0 ] || cat "$1"; cat "$2"; }
}
gr_place() {
  [ -z "$gr_d" ] || gr_diff "$2" "$1"
  if [ -e "$2" ]; then chmod --reference="$2" "$1" || return; chown --reference="$2" "$1" 2>/dev/null
  else chmod "$(printf %o $((0666 & ~$gr_umask)))" "$1" || return; fi
  gr_attrs "$1" "$3" "$4" "$5" || return
  gr_backup "$2" || return
  mv -f "$1" "$2"
}
gr_write() {
  if [ -n "${gr_text+set}" ]; then printf '%s' "$gr_text" >"$1"; else cat "${T}c" >"$1"; fi
}
"#;

/// Files larger than this (bytes, either side) are not sent back for a diff (`gr_diff`).
pub const DIFF_LIMIT: u64 = 65536;

/// What a file held and will hold, as `gr_diff` reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// Both contents (an absent file is empty).
    Both {
        /// Before the op.
        before: Vec<u8>,
        /// After the op.
        after: Vec<u8>,
    },
    /// Sizes only: one side is larger than [`DIFF_LIMIT`].
    TooLarge {
        /// Size before the op.
        before: u64,
        /// Size after the op.
        after: u64,
    },
}

/// Reads what `gr_diff` printed at the start of an op's stdout, if it printed anything.
pub fn parse_diff(stdout: &[u8]) -> Option<Contents> {
    let rest = stdout.strip_prefix(b"GRAPHRUN-DIFF ")?;
    let line_end = rest.iter().position(|b| *b == b'\n')?;
    let header = std::str::from_utf8(&rest[..line_end]).ok()?;
    let (before, after) = header.split_once(' ')?;
    let (before, after): (u64, u64) = (before.trim().parse().ok()?, after.trim().parse().ok()?);
    if before > DIFF_LIMIT || after > DIFF_LIMIT {
        return Some(Contents::TooLarge { before, after });
    }
    let body = &rest[line_end + 1..];
    let split = usize::try_from(before).ok()?;
    let total = split.checked_add(usize::try_from(after).ok()?)?;
    (body.len() == total).then(|| Contents::Both {
        before: body[..split].to_vec(),
        after: body[split..].to_vec(),
    })
}

/// Where an upload's content is on the host when its op runs (see `upload.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// The target already has the source's checksum.
    InPlace,
    /// Sent to this temporary file beside the target, its checksum verified on the host.
    Staged(String),
    /// Not sent (plan): the target differs from the source.
    NotSent,
}

/// Compiles one host op to the body of a shell function. `upload` says where the content of
/// an [`Op::Upload`] or [`Op::Artifact`] is; with `diff`, ops that change a
/// file's content report it before and after (see [`parse_diff`]).
pub fn compile(op: &Op, upload: Option<&Arrival>, diff: bool) -> Result<String, String> {
    // `gr_d` and `gr_h` outlive the op in the session shell: every snippet sets them.
    let flag = if diff { "gr_d=1" } else { "gr_d=" };
    let mark = edited_path(op).map(mark_of).unwrap_or_default();
    compile_op(op, upload).map(|body| format!("{flag}; gr_h={mark}\n{body}"))
}

/// The file whose content or existence `op` may change (the one it may back up).
fn edited_path(op: &Op) -> Option<&str> {
    match op {
        Op::File { path, .. }
        | Op::Upload { path, .. }
        | Op::Artifact { path, .. }
        | Op::Absent { path }
        | Op::Line { path, .. }
        | Op::Replace { path, .. }
        | Op::Block { path, .. } => Some(path),
        _ => None,
    }
}

/// The name of the mark that `path` was changed in this run (`gr_first_edit`): the path's
/// sha256, so any path makes a short file name of hex digits.
fn mark_of(path: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(path.as_bytes()))
}

fn compile_op(op: &Op, upload: Option<&Arrival>) -> Result<String, String> {
    Ok(match op {
        Op::Command {
            run,
            creates,
            unless,
            changes,
            env,
            cwd,
            // The engine reads a captured output from the op's stdout.
            capture: _,
        } => {
            let mut script = String::new();
            if let Some(path) = creates {
                script.push_str(&format!(
                    "[ -e {} ] && {{ gr_s=u; return 0; }}\n",
                    quote(path)
                ));
            }
            if let Some(guard) = unless {
                script.push_str(&format!(
                    "( {} ) >/dev/null 2>&1 && {{ gr_s=u; return 0; }}\n",
                    eval(guard)
                ));
            }
            if *changes {
                script.push_str("gr_change || return\n");
            }
            // User text runs in a subshell: its `exit`, `cd` and variables stay there.
            script.push_str("(\n");
            if let Some(dir) = cwd {
                script.push_str(&format!("cd {} || exit 1\n", quote(dir)));
            }
            for (name, value) in env {
                script.push_str(&format!("export {name}={}\n", quote(value)));
            }
            script.push_str(&format!("{}\n)", eval(run)));
            script
        }
        Op::File {
            path,
            content,
            attrs,
        } => format!(
            "{}\ngr_put {}",
            content_to_temp(content.as_bytes(), "c"),
            put_args(path, attrs)
        ),
        Op::Upload { path, attrs, .. } | Op::Artifact { path, attrs, .. } => match upload {
            Some(Arrival::InPlace) => format!(
                "gr_attrs {} || return\n[ \"$gr_changed\" = 1 ] || gr_s=u",
                put_args(path, attrs)
            ),
            Some(Arrival::Staged(temp)) => {
                format!("gr_place {} {}", quote(temp), put_args(path, attrs))
            }
            Some(Arrival::NotSent) => {
                "gr_change || return\necho 'the upload was not sent' >&2; return 1".to_string()
            }
            None => return Err("the upload was not prepared".into()),
        },
        Op::Directory { path, attrs } => {
            let mode = attrs.mode.as_deref().map(stat_mode);
            let create_mode = mode
                .as_deref()
                .map(|m| format!(" -m {m}"))
                .unwrap_or_default();
            format!(
                "p={p}\n\
                 if [ -d \"$p\" ]; then gr_attrs \"$p\" {m} {o} {g} || return; [ \"$gr_changed\" = 1 ] || gr_s=u; return 0; fi\n\
                 gr_change || return\n\
                 mkdir -p{create_mode} \"$p\" && gr_attrs \"$p\" '' {o} {g}",
                p = quote(path),
                m = quote(mode.as_deref().unwrap_or("")),
                o = quote(attrs.owner.as_deref().unwrap_or("")),
                g = quote(attrs.group.as_deref().unwrap_or("")),
            )
        }
        Op::Absent { path } => format!(
            "[ -e {p} ] || [ -L {p} ] || {{ gr_s=u; return 0; }}\n\
             [ -z \"$gr_d\" ] || [ ! -f {p} ] || gr_diff {p} /dev/null\n\
             gr_change || return\n\
             if [ -f {p} ] && [ ! -L {p} ] && gr_first_edit; then mv -f {p} {p}.graphrun.bak; else gr_backup_copy {p} && rm -rf {p}; fi",
            p = quote(path)
        ),
        Op::Line {
            path,
            line,
            absent: false,
        } => {
            no_newline("line", line)?;
            // `gr_has_line` answers 3 when the line is missing and the last line lacks its
            // newline (which then goes first); one process for both questions.
            format!(
                "p={p}; l={l}; gr_nl=\n\
                 if [ -f \"$p\" ]; then gr_has_line \"$p\" \"$l\"\n\
                 case $? in 0) gr_s=u; return 0 ;; 1) ;; 3) gr_nl=1 ;; *) return 1 ;; esac; fi\n\
                 [ -z \"$gr_d\" ] || {{ {{ [ ! -f \"$p\" ] || cat \"$p\"; [ -z \"$gr_nl\" ] || echo; printf '%s\\n' \"$l\"; }} >\"${{T}}c\"; gr_diff \"$p\" \"${{T}}c\"; }}\n\
                 gr_change || return\n\
                 [ -d \"${{p%/*}}\" ] || mkdir -p \"${{p%/*}}\" || return\n\
                 gr_backup_copy \"$p\" || return\n\
                 {{ [ -z \"$gr_nl\" ] || echo; printf '%s\\n' \"$l\"; }} >>\"$p\"",
                p = quote(path),
                l = quote(line),
            )
        }
        Op::Line {
            path,
            line,
            absent: true,
        } => {
            no_newline("line", line)?;
            format!(
                "p={p}; l={l}\n\
                 [ -f \"$p\" ] && grep -qxF -e \"$l\" \"$p\" || {{ gr_s=u; return 0; }}\n\
                 grep -vxF -e \"$l\" \"$p\" >\"${{T}}c\"\n\
                 unset gr_text; gr_put \"$p\" '' '' '' ''",
                p = quote(path),
                l = quote(line),
            )
        }
        Op::Replace { path, regex, with } => {
            for (what, text) in [("regex", regex), ("with", with)] {
                no_newline(what, text)?;
                if text.contains('\u{1}') {
                    return Err(format!("`{what}` contains the control character U+0001"));
                }
            }
            let sed = quote(&format!("s\u{1}{regex}\u{1}{with}\u{1}g"));
            // One sed both edits and tells whether the regex matched at all: a line it
            // changed leaves a mark in the hold space; none at the last line quits with 3
            // (GNU's `Q`). A sed without it (busybox) fails, and grep answers instead.
            format!(
                "p={p}\n\
                 [ -f \"$p\" ] || {{ echo \"$p does not exist\" >&2; return 1; }}\n\
                 sed -E -e {sed} -e 't hit' -e 'b last' -e :hit -e x -e 's/^/1/' -e x \
                   -e :last -e '$ {{' -e x -e '/^$/ Q 3' -e x -e '}}' \"$p\" 2>/dev/null >\"${{T}}c\"\n\
                 case $? in 0) ;; 3) gr_s=u; return 0 ;; *)\n\
                   grep -Eq -e {r} \"$p\"; case $? in 0) ;; 1) gr_s=u; return 0 ;; *) return 1 ;; esac\n\
                   sed -E {sed} \"$p\" >\"${{T}}c\" || return ;;\n\
                 esac\n\
                 cmp -s \"${{T}}c\" \"$p\" && {{ gr_s=u; return 0; }}\n\
                 [ -z \"$gr_d\" ] || gr_diff \"$p\" \"${{T}}c\"\n\
                 gr_change || return\n\
                 gr_backup \"$p\" || return\n\
                 sed -E -i {sed} \"$p\" && return\n\
                 gr_rc=$?; gr_why_unwritten \"$p\"; return $gr_rc",
                p = quote(path),
                r = quote(regex),
            )
        }
        Op::Block { path, id, content } => {
            no_newline("id", id)?;
            let mut block = format!("# BEGIN graphrun {id}\n{content}");
            if !block.ends_with('\n') {
                block.push('\n');
            }
            block.push_str(&format!("# END graphrun {id}\n"));
            format!(
                "{}\np={p}\n\
                 B={b} E={e} awk '\n\
                 $0 == ENVIRON[\"B\"] {{ skip = 1; if (!done) {{ while ((getline l < F) > 0) print l; done = 1 }}; next }}\n\
                 skip && $0 == ENVIRON[\"E\"] {{ skip = 0; next }}\n\
                 !skip {{ print }}\n\
                 END {{ if (!done) while ((getline l < F) > 0) print l }}' F=\"${{T}}b\" \\\n\
                 \"$([ -f \"$p\" ] && echo \"$p\" || echo /dev/null)\" >\"${{T}}c\" || return\n\
                 unset gr_text; gr_put \"$p\" '' '' '' ''",
                content_to_temp(block.as_bytes(), "b"),
                p = quote(path),
                b = quote(&format!("# BEGIN graphrun {id}")),
                e = quote(&format!("# END graphrun {id}")),
            )
        }
        Op::Fetch { path, .. } => format!("cat {}", quote(path)),
        other => {
            return Err(format!(
                "this graphrun cannot run the op {other:?}: update graphrun"
            ))
        }
    })
}

/// `eval` keeps a syntax error in user text inside its own command (inline text would break
/// the whole session) without the cost of another `sh` process.
fn eval(run: &Run) -> String {
    format!("eval {}", quote(&run.to_shell()))
}

/// Puts content where `gr_put` finds it: text in `$gr_text` plus `${T}NAME` (builtins only),
/// anything else (NUL bytes) decoded from base64 into `${T}NAME`.
fn content_to_temp(bytes: &[u8], name: &str) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => {
            format!(
                "gr_text={}; printf '%s' \"$gr_text\" >\"${{T}}{name}\"",
                quote(text)
            )
        }
        _ => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            format!(
                "unset gr_text; base64 -d >\"${{T}}{name}\" <<'GRAPHRUN_B64'\n{encoded}\nGRAPHRUN_B64"
            )
        }
    }
}

/// `PATH MODE OWNER GROUP UMASK` for `gr_put`. UMASK creates a new file with its mode at once
/// (no chmod) when the mode has no execute or special bits.
fn put_args(path: &str, attrs: &Attrs) -> String {
    let mode = attrs.mode.as_deref().map(stat_mode);
    let umask = attrs
        .mode
        .as_deref()
        .and_then(|m| u32::from_str_radix(m, 8).ok())
        .filter(|m| m & 0o7111 == 0)
        .map(|m| format!("{:04o}", !m & 0o777));
    [
        Some(path.to_string()),
        mode,
        attrs.owner.clone(),
        attrs.group.clone(),
        umask,
    ]
    .iter()
    .map(|v| quote(v.as_deref().unwrap_or("")))
    .collect::<Vec<_>>()
    .join(" ")
}

/// A mode as `stat -c %a` prints it (no leading zeros), the form `gr_attrs` compares.
fn stat_mode(mode: &str) -> String {
    let trimmed = mode.trim_start_matches('0');
    if trimmed.is_empty() { "0" } else { trimmed }.to_string()
}

fn no_newline(what: &str, text: &str) -> Result<(), String> {
    if text.contains('\n') {
        Err(format!("`{what}` must be a single line"))
    } else {
        Ok(())
    }
}
