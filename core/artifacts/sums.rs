//! Checksum files as releases publish them: `sha256sum` output (`HASH  NAME`, `HASH *NAME`,
//! names with or without a folder) or a lone hash (dl.k8s.io's `.sha256`).

/// The sha256 (lowercase hex) that `text` gives for the file named `entry`.
pub fn find(text: &str, entry: &str) -> Result<String, String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    if let [only] = lines.as_slice() {
        if is_sha256(only) {
            return Ok(only.to_ascii_lowercase());
        }
    }
    for line in lines {
        let mut words = line.split_whitespace();
        let (Some(hash), Some(name)) = (words.next(), words.next()) else {
            continue;
        };
        let name = name.trim_start_matches('*');
        let file_name = name.rsplit('/').next().unwrap_or(name);
        if is_sha256(hash) && (name == entry || file_name == entry) {
            return Ok(hash.to_ascii_lowercase());
        }
    }
    Err(format!("it has no sha256 for `{entry}`"))
}

/// Whether `text` is 64 hexadecimal digits.
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "3b2a64a4b1d4de2ab3bd0c06e0b1f5b7a1cd6ef9e8dfd1f2d30a1f1b7a5b6c7d";
    const B: &str = "0000000000000000000000000000000000000000000000000000000000000abc";

    #[test]
    fn reads_sha256sum_lines_and_lone_hashes() {
        let sums = format!("{B}  rke2-images.linux-amd64.tar.zst\n{A}  rke2.linux-amd64.tar.gz\n");
        assert_eq!(find(&sums, "rke2.linux-amd64.tar.gz").unwrap(), A);
        assert_eq!(
            find(&format!("{A} *./bin/rke_linux-amd64\n"), "rke_linux-amd64").unwrap(),
            A
        );
        assert_eq!(
            find(&format!("{}\n", A.to_uppercase()), "kubectl").unwrap(),
            A
        );
        let err = find(&sums, "rke2.linux-arm64.tar.gz").unwrap_err();
        assert_eq!(err, "it has no sha256 for `rke2.linux-arm64.tar.gz`");
        assert!(find("<html>Not Found</html>", "kubectl").is_err());
        assert!(find(&format!("{A}  other\n"), "kubectl").is_err());
    }
}
