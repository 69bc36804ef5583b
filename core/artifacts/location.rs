//! Where an artifact's upstream URL is served for this playbook: its `[artifacts]` folder or
//! mirror (both laid out as `<upstream host>/<upstream path>`), or upstream itself.

use std::path::PathBuf;

use super::Settings;

/// Where to get a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Over HTTP(S) (the mirror's URL, or the upstream one).
    Remote(String),
    /// A file in the local artifacts folder.
    Local(PathBuf),
}

/// An upstream URL cut into its parts.
struct Upstream<'a> {
    /// `host` or `host:port`.
    authority: &'a str,
    /// From the first `/` on (percent-encoded as in the URL).
    path: &'a str,
}

fn parse(url: &str) -> Result<Upstream<'_>, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("`{url}` is not an http:// or https:// URL"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if authority.is_empty() || authority.contains('@') || path.len() < 2 {
        return Err(format!(
            "`{}` is not an upstream file URL (https://HOST/PATH, no credentials)",
            shown(url)
        ));
    }
    Ok(Upstream { authority, path })
}

impl Settings {
    /// Where the file at the upstream `url` is fetched from.
    pub fn locate(&self, url: &str) -> Result<Location, String> {
        let upstream = parse(url)?;
        if let Some(dir) = &self.dir {
            let relative = decode(&format!("{}{}", upstream.authority, upstream.path))
                .ok_or_else(|| format!("`{url}` has a malformed %-escape"))?;
            // The URL names a file inside the folder, never a way out of it.
            let parts: Vec<&str> = relative.split('/').collect();
            if parts
                .iter()
                .any(|p| p.is_empty() || *p == "." || *p == "..")
            {
                return Err(format!(
                    "`{url}` cannot be mapped to a file of {}",
                    dir.display()
                ));
            }
            return Ok(Location::Local(
                parts.iter().fold(dir.clone(), |d, p| d.join(p)),
            ));
        }
        Ok(Location::Remote(match &self.mirror {
            Some(mirror) => format!(
                "{}/{}{}",
                mirror.trim_end_matches('/'),
                upstream.authority,
                upstream.path
            ),
            None => url.to_string(),
        }))
    }
}

/// The URL as it may be printed: a password or token in it (`https://user:pass@host/`) is
/// replaced by `***`.
pub fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

/// The secret part of a URL's credentials (`user:pass@` → `pass`, `token@` → `token`), for the
/// redactor.
pub fn credentials(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let userinfo = &authority[..authority.rfind('@')?];
    let secret = userinfo.split_once(':').map_or(userinfo, |(_, pass)| pass);
    (!secret.is_empty()).then(|| secret.to_string())
}

/// Percent-decoding of a URL path (`%2B` → `+`), as files on disk are named.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RKE2: &str =
        "https://github.com/rancher/rke2/releases/download/v1.31.4%2Brke2r1/rke2.linux-amd64.tar.gz";

    #[test]
    fn a_mirror_and_a_folder_use_the_upstream_layout() {
        let mirror = Settings {
            mirror: Some("http://10.77.2.14:8880/".into()),
            ..Settings::default()
        };
        assert_eq!(
            mirror.locate(RKE2).unwrap(),
            Location::Remote(
                "http://10.77.2.14:8880/github.com/rancher/rke2/releases/download/v1.31.4%2Brke2r1/rke2.linux-amd64.tar.gz".into()
            )
        );
        let folder = Settings {
            dir: Some("/srv/artifacts".into()),
            ..Settings::default()
        };
        assert_eq!(
            folder.locate(RKE2).unwrap(),
            Location::Local(
                "/srv/artifacts/github.com/rancher/rke2/releases/download/v1.31.4+rke2r1/rke2.linux-amd64.tar.gz".into()
            )
        );
        assert_eq!(
            Settings::default().locate(RKE2).unwrap(),
            Location::Remote(RKE2.into())
        );
    }

    #[test]
    fn urls_that_leave_the_folder_or_carry_credentials_are_refused() {
        let folder = Settings {
            dir: Some("/srv/artifacts".into()),
            ..Settings::default()
        };
        for url in [
            "https://example.test/a/../../etc/passwd",
            "https://example.test/a/%2e%2e/b",
            "https://example.test//b",
            "https://user:pw@example.test/b",
            "ftp://example.test/b",
            "https://example.test/",
        ] {
            assert!(folder.locate(url).is_err(), "{url}");
        }
    }

    #[test]
    fn credentials_are_never_shown() {
        let url = "https://deploy:s3cret@mirror.test/dl.k8s.io/x";
        assert_eq!(shown(url), "https://***@mirror.test/dl.k8s.io/x");
        assert_eq!(credentials(url).as_deref(), Some("s3cret"));
        assert_eq!(credentials("https://tok@m.test/").as_deref(), Some("tok"));
        assert_eq!(credentials("https://m.test/a@b"), None);
        assert_eq!(shown("https://m.test/a@b"), "https://m.test/a@b");
    }
}
