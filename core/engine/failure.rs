//! What a failed op tells the user: its exit code and the last of its stderr and stdout
//! (the whole output is in the run log).

/// Failed ops show this much of their stderr and of their stdout.
const OUTPUT_TAIL: usize = 2000;

use super::redact::Redactor;

/// The end of `bytes`, redacted, at most [`OUTPUT_TAIL`] bytes, cut at a character boundary.
/// Redacted whole before the cut: a cut through a secret would leave a part no redactor knows.
pub(super) fn tail(bytes: &[u8], redactor: &Redactor) -> String {
    let text = redactor.redact(&String::from_utf8_lossy(bytes));
    let start = text.len().saturating_sub(OUTPUT_TAIL);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// "`op` exited with 3" (or "`op` failed" for an op that is not a command), then the stderr
/// tail (it usually says why), then the stdout tail (often the last thing the command did).
/// Both are already redacted.
pub(super) fn describe(
    summary: &str,
    code: Option<i32>,
    stderr: Option<String>,
    stdout: Option<String>,
) -> String {
    let mut error = match code {
        Some(code) => format!("`{summary}` exited with {code}"),
        None => format!("`{summary}` failed"),
    };
    for (name, text) in [("stderr", stderr), ("stdout", stdout)] {
        let text = text.unwrap_or_default();
        if !text.trim().is_empty() {
            error.push_str(&format!("\n{name}:\n{}", text.trim_end()));
        }
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_cut_through_a_secret_shows_none_of_it() {
        let secret = "s3cr3t-line-one\ns3cr3t-line-two";
        let redactor = Redactor::new(&[secret.to_string()]);
        // Unredacted, the last OUTPUT_TAIL bytes would begin inside the secret.
        let output = format!("{secret}\n{}", "y".repeat(OUTPUT_TAIL - 10));
        let text = tail(output.as_bytes(), &redactor);
        assert!(!text.contains("line-two"), "{text}");
        assert!(text.starts_with("***\nyyy"), "{text}");
    }
}
