//! A playbook file's bytes as text people really save: UTF-8 with or without a byte order mark,
//! UTF-16 (what some Windows editors write), CRLF line endings; and TOML syntax errors as one
//! diagnostic per mistake.

use std::ops::Range;
use std::sync::Arc;

use super::super::{Diagnostic, Source};

/// The largest playbook or inventory read: ten thousand hosts take well under 1 MiB, and a
/// limit keeps `graphrun validate /dev/zero` (or a wrong, huge file) from eating the memory.
const MAX_FILE_BYTES: usize = 4 << 20;

/// A file's bytes, at most one more than [`decode`] accepts.
pub(super) fn read_limited(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Decodes a file's bytes. UTF-16 needs its byte order mark (as kube-rs reads kubeconfigs); a
/// UTF-8 mark is dropped so that columns on line 1 count from the first real character; CRLF
/// becomes LF, so content written to hosts never carries a stray `\r`.
pub(super) fn decode(bytes: &[u8]) -> Result<String, String> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(format!(
            "the file is larger than {} MiB, the most graphrun reads: is it the right file? \
             (split a large inventory)",
            MAX_FILE_BYTES >> 20
        ));
    }
    let text = if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        utf8(rest)?
    } else if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        utf16(rest, u16::from_le_bytes, "UTF-16LE")?
    } else if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        utf16(rest, u16::from_be_bytes, "UTF-16BE")?
    } else if let Some(offset) = bytes.iter().position(|&b| b == 0) {
        return Err(if looks_like_utf16(bytes) {
            "the file contains NUL bytes: it looks like UTF-16 without a byte order mark; \
             save it as UTF-8"
                .into()
        } else {
            format!("the file is binary data, not text (a NUL byte at offset {offset}); a playbook is a UTF-8 TOML file")
        });
    } else {
        utf8(bytes)?
    };
    Ok(text.replace("\r\n", "\n"))
}

/// ASCII text saved as UTF-16 has a NUL in every other byte; binary data has them anywhere.
fn looks_like_utf16(bytes: &[u8]) -> bool {
    let pairs = bytes.len() / 2;
    let nul_halves = bytes
        .chunks_exact(2)
        .filter(|pair| (pair[0] == 0) != (pair[1] == 0))
        .count();
    pairs > 0 && nul_halves * 10 >= pairs * 9
}

fn utf8(bytes: &[u8]) -> Result<String, String> {
    String::from_utf8(bytes.to_vec()).map_err(|err| {
        format!(
            "the file is not UTF-8 text (invalid byte at offset {}); save it as UTF-8",
            err.utf8_error().valid_up_to()
        )
    })
}

fn utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16, name: &str) -> Result<String, String> {
    if !bytes.len().is_multiple_of(2) {
        return Err(format!(
            "the file is cut short ({name} with an odd byte count)"
        ));
    }
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|err| format!("the file is not valid {name}: {err}"))
}

/// Turns TOML syntax errors into diagnostics. A table written twice (`[steps.a]` … `[steps.a]`)
/// makes the parser report the header and then every key below it again; that is one mistake,
/// reported once with both places.
pub(super) fn syntax_errors(
    source: &Arc<Source>,
    errors: &[(Range<usize>, String)],
) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let mut repeated_table: Option<Range<usize>> = None;
    for (span, message) in errors {
        if repeated_table
            .as_ref()
            .is_some_and(|body| body.contains(&span.start))
        {
            continue;
        }
        if message == "duplicate key" {
            if let Some((header, first)) = repeated_header(&source.text, span.start) {
                repeated_table = Some(table_body(&source.text, span.start));
                diagnostics.push(
                    Diagnostic::at(
                        source,
                        span.clone(),
                        format!("table `{header}` is defined twice"),
                    )
                    .label("defined again here")
                    .related(first, "first defined here")
                    .help("merge the two tables into one, or rename one of them"),
                );
                continue;
            }
        }
        diagnostics.push(
            Diagnostic::at(source, span.clone(), format!("invalid TOML: {message}"))
                .label("here")
                .help("fix the TOML syntax (https://toml.io)"),
        );
    }
    diagnostics
}

/// When `offset` is inside a `[table]` header line that appeared earlier too: the header as
/// written (without spaces) and the span of its first appearance.
fn repeated_header(text: &str, offset: usize) -> Option<(String, Range<usize>)> {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let header = header_key(line_of(text, line_start))?;
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        if start >= line_start {
            break;
        }
        if header_key(line).as_deref() == Some(header.as_str()) {
            let indent = line.len() - line.trim_start().len();
            let width = line.trim_end().len() - indent;
            return Some((header, start + indent..start + indent + width));
        }
        start += line.len();
    }
    None
}

fn line_of(text: &str, start: usize) -> &str {
    text[start..].split('\n').next().unwrap_or("")
}

/// `[ steps . a ]  # note` → `[steps.a]`; `None` for other lines and for `[[arrays]]`.
fn header_key(line: &str) -> Option<String> {
    let line = line.trim();
    if !line.starts_with('[') || line.starts_with("[[") {
        return None;
    }
    let end = line.find(']')?;
    Some(
        line[..=end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    )
}

/// From the header line at `offset` to the next header (or the end of the file).
fn table_body(text: &str, offset: usize) -> Range<usize> {
    let line_end = text[offset..]
        .find('\n')
        .map_or(text.len(), |i| offset + i + 1);
    let mut end = line_end;
    for line in text[line_end..].split_inclusive('\n') {
        if line.trim_start().starts_with('[') {
            break;
        }
        end += line.len();
    }
    offset..end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_editors_save() {
        assert_eq!(decode(b"\xEF\xBB\xBFa = 1\r\n").unwrap(), "a = 1\n");
        let utf16le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("a = \"é\"\r\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&utf16le).unwrap(), "a = \"é\"\n");
        let utf16be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("b = 2".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode(&utf16be).unwrap(), "b = 2");
        let no_mark: Vec<u8> = "a = 1".encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert!(decode(&no_mark)
            .unwrap_err()
            .contains("UTF-16 without a byte order mark"));
        assert!(decode(b"a = \"\xFF\"").unwrap_err().contains("offset 5"));
        assert!(decode(b"a = 1\n\x00\x17\xFF\x00\x00")
            .unwrap_err()
            .contains("binary data, not text (a NUL byte at offset 6)"));
    }

    #[test]
    fn header_keys_ignore_spaces_and_comments() {
        assert_eq!(
            header_key(" [ steps . a ] # x").as_deref(),
            Some("[steps.a]")
        );
        assert_eq!(header_key("[[list]]"), None);
        assert_eq!(header_key("a = 1"), None);
    }
}
