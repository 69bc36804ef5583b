//! Ops compiled to POSIX shell: guard and action in one snippet, so one op is one remote step.
//!
//! Snippets run in a subshell of the session shell (see `shell.rs`), which defines:
//! - `gr_unchanged`: record "nothing to do" and leave the snippet;
//! - `gr_change`: in check mode (`graphrun plan`) record "would change" and leave; else return;
//! - `gr_put PATH MODE OWNER GROUP`: install `$T/c` at PATH atomically if it differs;
//! - `gr_attrs PATH MODE OWNER GROUP`: fix mode and ownership, setting `gr_changed=1`.
//!
//! Every value is quoted with [`quote`]; nothing from a playbook reaches the shell unquoted.

use base64::Engine as _;
use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{Attrs, Op, Run};

/// Shell functions every snippet may use; sent once when a session starts.
pub const PRELUDE: &str = r#"
gr_unchanged() { printf u >"$T/s"; exit 0; }
gr_change() { if [ "$GR_CHECK" = 1 ]; then printf w >"$T/s"; exit 0; fi; }
gr_attrs() {
  [ -n "$2$3$4" ] || return 0
  gr_now=$(stat -c '%a %U %G' "$1") || return 1
  gr_m=${gr_now%% *}; gr_rest=${gr_now#* }; gr_o=${gr_rest%% *}; gr_g=${gr_rest#* }
  if [ -n "$2" ] && [ "$gr_m" != "$2" ]; then gr_change; chmod "$2" "$1" || return 1; gr_changed=1; fi
  if [ -n "$3" ] && [ "$gr_o" != "$3" ]; then gr_change; chown "$3" "$1" || return 1; gr_changed=1; fi
  if [ -n "$4" ] && [ "$gr_g" != "$4" ]; then gr_change; chgrp "$4" "$1" || return 1; gr_changed=1; fi
}
gr_put() {
  if [ -f "$1" ] && cmp -s "$T/c" "$1"; then
    gr_attrs "$@" || exit 1
    [ "$gr_changed" = 1 ] || gr_unchanged
    exit 0
  fi
  gr_change
  [ -d "${1%/*}" ] || mkdir -p "${1%/*}" || exit 1
  gr_new="$1.graphrun-new"
  if [ -e "$1" ]; then cp -p "$1" "$gr_new" || exit 1; fi
  cp "$T/c" "$gr_new" && gr_attrs "$gr_new" "$2" "$3" "$4" && mv -f "$gr_new" "$1"
}
"#;

/// Compiles one host op to a shell snippet. `upload` carries the bytes of an [`Op::Upload`]
/// source (read and checked by the executor).
pub fn compile(op: &Op, upload: Option<&[u8]>) -> Result<String, String> {
    Ok(match op {
        Op::Command {
            run,
            creates,
            unless,
            changes,
            env,
            cwd,
        } => {
            let mut script = String::new();
            if let Some(dir) = cwd {
                script.push_str(&format!("cd {} || exit 1\n", quote(dir)));
            }
            if let Some(path) = creates {
                script.push_str(&format!("[ -e {} ] && gr_unchanged\n", quote(path)));
            }
            if let Some(guard) = unless {
                script.push_str(&format!(
                    "{} >/dev/null 2>&1 && gr_unchanged\n",
                    eval(guard)
                ));
            }
            if *changes {
                script.push_str("gr_change\n");
            }
            for (name, value) in env {
                script.push_str(&format!("export {name}={}\n", quote(value)));
            }
            script.push_str(&eval(run));
            script
        }
        Op::File {
            path,
            content,
            attrs,
        } => {
            format!(
                "{}\ngr_put {}",
                content_to_temp(content.as_bytes(), "c"),
                put_args(path, attrs)
            )
        }
        Op::Upload { path, attrs, .. } => {
            let bytes = upload.ok_or("the upload's content was not read")?;
            format!(
                "{}\ngr_put {}",
                content_to_temp(bytes, "c"),
                put_args(path, attrs)
            )
        }
        Op::Directory { path, attrs } => format!(
            "[ -d {p} ] || {{ gr_change; mkdir -p {p} || exit 1; gr_changed=1; }}\n\
             gr_attrs {args} || exit 1\n[ \"$gr_changed\" = 1 ] || gr_unchanged",
            p = quote(path),
            args = put_args(path, attrs),
        ),
        Op::Absent { path } => {
            format!(
                "[ -e {p} ] || [ -L {p} ] || gr_unchanged\ngr_change\nrm -rf {p}",
                p = quote(path)
            )
        }
        Op::Line {
            path,
            line,
            absent: false,
        } => {
            no_newline("line", line)?;
            format!(
                "p={p}; l={l}\n\
                 [ -f \"$p\" ] && grep -qxF -e \"$l\" \"$p\" && gr_unchanged\n\
                 gr_change\n\
                 [ -d \"${{p%/*}}\" ] || mkdir -p \"${{p%/*}}\" || exit 1\n\
                 if [ -s \"$p\" ] && [ -n \"$(tail -c1 \"$p\")\" ]; then echo >>\"$p\"; fi\n\
                 printf '%s\\n' \"$l\" >>\"$p\"",
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
                 [ -f \"$p\" ] && grep -qxF -e \"$l\" \"$p\" || gr_unchanged\n\
                 gr_change\n\
                 grep -vxF -e \"$l\" \"$p\" >\"$T/c\"\n\
                 gr_put \"$p\" '' '' ''",
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
            let sed = format!("s\u{1}{regex}\u{1}{with}\u{1}g");
            format!(
                "p={p}\n\
                 [ -f \"$p\" ] || {{ echo \"$p does not exist\" >&2; exit 1; }}\n\
                 grep -Eq -e {r} \"$p\" || gr_unchanged\n\
                 sed -E {s} \"$p\" >\"$T/c\" || exit 1\n\
                 gr_put \"$p\" '' '' ''",
                p = quote(path),
                r = quote(regex),
                s = quote(&sed),
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
                 END {{ if (!done) while ((getline l < F) > 0) print l }}' F=\"$T/b\" \\\n\
                 \"$([ -f \"$p\" ] && echo \"$p\" || echo /dev/null)\" >\"$T/c\" || exit 1\n\
                 gr_put \"$p\" '' '' ''",
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

/// `eval` keeps a syntax error in user text inside its own command (a plain inline
/// script would break the whole session) without the cost of another `sh` process.
fn eval(run: &Run) -> String {
    format!("eval {}", quote(&run.to_shell()))
}

/// Writes bytes to `$T/NAME` with builtins only where possible (`printf` needs no process).
fn content_to_temp(bytes: &[u8], name: &str) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.contains('\0') => format!("printf '%s' {} >\"$T/{name}\"", quote(text)),
        _ => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            format!("base64 -d >\"$T/{name}\" <<'GRAPHRUN_B64'\n{encoded}\nGRAPHRUN_B64")
        }
    }
}

fn put_args(path: &str, attrs: &Attrs) -> String {
    // `stat -c %a` prints modes without leading zeros; compare in that form.
    let mode = attrs.mode.as_deref().map(|m| {
        let trimmed = m.trim_start_matches('0');
        if trimmed.is_empty() { "0" } else { trimmed }.to_string()
    });
    [
        Some(path.to_string()),
        mode,
        attrs.owner.clone(),
        attrs.group.clone(),
    ]
    .iter()
    .map(|v| quote(v.as_deref().unwrap_or("")))
    .collect::<Vec<_>>()
    .join(" ")
}

fn no_newline(what: &str, text: &str) -> Result<(), String> {
    if text.contains('\n') {
        Err(format!("`{what}` must be a single line"))
    } else {
        Ok(())
    }
}
