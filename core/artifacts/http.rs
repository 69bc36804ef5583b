//! Downloads over HTTP(S): checksum files read whole (they are small), artifacts streamed to a
//! file and hashed on the way, so a 500 MB archive never sits in memory. Redirects are followed
//! (GitHub serves release files from another host). Errors name the URL as [`shown`] (without
//! credentials) and never reqwest's own rendering of it.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::location::shown;

/// Checksum files larger than this are refused (real ones are a few KiB).
const MAX_SUMS: usize = 1 << 20;
/// How long a connection, or a pause in a transfer, may last.
const PATIENCE: Duration = Duration::from_secs(60);

/// An HTTP client for one run.
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    /// A client that follows up to 10 redirects.
    pub fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(10))
            .connect_timeout(PATIENCE)
            .user_agent(concat!("graphrun/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| format!("cannot start an HTTP client: {}", err.without_url()))?;
        Ok(Http { client })
    }

    /// The text at `url` (at most 1 MiB).
    pub async fn text(&self, url: &str) -> Result<String, String> {
        let mut response = self.get(url).await?;
        let mut body = Vec::new();
        while let Some(chunk) = next_chunk(&mut response, url).await? {
            body.extend_from_slice(chunk.as_ref());
            if body.len() > MAX_SUMS {
                return Err(format!("{} is larger than 1 MiB", shown(url)));
            }
        }
        String::from_utf8(body).map_err(|_| format!("{} is not text", shown(url)))
    }

    /// Streams the file at `url` into `file`; returns its sha256 (hex) and size.
    /// `progress` hears of each chunk (bytes so far, the size the server announced).
    pub async fn download(
        &self,
        url: &str,
        file: &mut tokio::fs::File,
        progress: &(dyn Fn(u64, Option<u64>) + Sync),
    ) -> Result<(String, u64), String> {
        let mut response = self.get(url).await?;
        let announced = response.content_length();
        let mut hasher = Sha256::new();
        let mut received = 0u64;
        while let Some(chunk) = next_chunk(&mut response, url).await? {
            let chunk = chunk.as_ref();
            hasher.update(chunk);
            file.write_all(chunk)
                .await
                .map_err(|err| format!("cannot save {}: {err}", shown(url)))?;
            received += chunk.len() as u64;
            progress(received, announced);
        }
        file.flush()
            .await
            .map_err(|err| format!("cannot save {}: {err}", shown(url)))?;
        let digest = hasher.finalize();
        Ok((
            digest.iter().map(|b| format!("{b:02x}")).collect(),
            received,
        ))
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, String> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|err| format!("cannot download {}: {}", shown(url), cause(err)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("cannot download {}: HTTP {status}", shown(url)));
        }
        Ok(response)
    }
}

async fn next_chunk(
    response: &mut reqwest::Response,
    url: &str,
) -> Result<Option<impl AsRef<[u8]>>, String> {
    match tokio::time::timeout(PATIENCE, response.chunk()).await {
        Ok(Ok(chunk)) => Ok(chunk),
        Ok(Err(err)) => Err(format!(
            "the download of {} stopped: {}",
            shown(url),
            cause(err)
        )),
        Err(_) => Err(format!(
            "the download of {} stalled for {}s",
            shown(url),
            PATIENCE.as_secs()
        )),
    }
}

/// The error and its causes, without the URL (which may hold credentials).
fn cause(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}
