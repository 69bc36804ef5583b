//! What a failed op tells the user: its exit code and the last of its stderr and stdout
//! (the whole output is in the run log).

/// Failed ops show this much of their stderr and of their stdout.
const OUTPUT_TAIL: usize = 2000;

/// The end of `bytes`, at most [`OUTPUT_TAIL`] bytes, cut at a character boundary.
pub(super) fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let start = text.len().saturating_sub(OUTPUT_TAIL);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// "`op` exited with 3", then the stderr tail (it usually says why), then the stdout tail
/// (often the last thing the command did). Both are already redacted.
pub(super) fn describe(
    summary: &str,
    code: i32,
    stderr: Option<String>,
    stdout: Option<String>,
) -> String {
    let mut error = format!("`{summary}` exited with {code}");
    for (name, text) in [("stderr", stderr), ("stdout", stdout)] {
        let text = text.unwrap_or_default();
        if !text.trim().is_empty() {
            error.push_str(&format!("\n{name}:\n{}", text.trim_end()));
        }
    }
    error
}
