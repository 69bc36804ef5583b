//! The playbook's `[artifacts]` table: where artifacts come from (a mirror or a local folder in
//! upstream layout) and where the control machine caches them.

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::{expand_home, Document, Loader};
use crate::artifacts::{location, Settings};

const ARTIFACTS_KEYS: [&str; 3] = ["mirror", "dir", "cache"];

impl Loader {
    pub(super) fn read_artifacts(&mut self, doc: &Document) -> Settings {
        let mut settings = Settings::default();
        let Some((_, table)) = self.table_at(doc, doc.get("artifacts"), "artifacts") else {
            return settings;
        };
        for (key, value) in table.iter() {
            let name = key.get_ref().as_ref();
            match name {
                "mirror" => settings.mirror = self.mirror(doc, value),
                "dir" => {
                    let dir = self.string(doc, value, name);
                    settings.dir = dir.map(|d| expand_home(&doc.source.path, &d));
                    if let Some(dir) = settings.dir.as_ref().filter(|d| !d.is_dir()) {
                        let message = format!("`dir`: {} is not a folder", dir.display());
                        self.error(doc, value.span(), message).help(
                            "a folder of artifacts laid out as HOST/PATH of their upstream \
                             URLs (relative paths are relative to the playbook)",
                        );
                    }
                }
                "cache" => {
                    let cache = self.string(doc, value, name);
                    settings.cache = cache.map(|c| expand_home(&doc.source.path, &c));
                }
                _ => {
                    self.error(doc, key.span(), format!("unknown key `{name}`"))
                        .help(format!("allowed here: {}", ARTIFACTS_KEYS.join(", ")))
                        .suggest(name, &ARTIFACTS_KEYS);
                }
            }
        }
        if let (Some(_), Some(_)) = (&settings.mirror, &settings.dir) {
            let span = spans(table, "dir");
            self.error(doc, span, "`dir` and `mirror` both given")
                .help("an air-gapped site uses `dir`, a site with a mirror `mirror`: keep one");
        }
        settings
    }

    /// `mirror`: an http(s) URL (or a secret holding one, when it carries credentials).
    fn mirror(&mut self, doc: &Document, value: &Spanned<DeValue<'static>>) -> Option<String> {
        let url = match value.get_ref() {
            DeValue::Table(table) => self.secret(doc, table),
            _ => self.string(doc, value, "mirror"),
        }?;
        let host = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .map(|rest| rest.split('/').next().unwrap_or_default())
            .map(|authority| authority.rsplit('@').next().unwrap_or_default());
        if host.is_none_or(str::is_empty) {
            let message = format!(
                "`mirror`: `{}` is not an http:// or https:// URL",
                location::shown(&url)
            );
            self.error(doc, value.span(), message)
                .help("for example mirror = \"http://10.0.0.5:8080\": files are fetched from MIRROR/HOST/PATH of their upstream URLs");
            return None;
        }
        // Credentials in the URL are a secret like any other: never shown.
        self.secrets.extend(location::credentials(&url));
        Some(url)
    }
}

fn spans(table: &DeTable<'static>, key: &str) -> std::ops::Range<usize> {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(k, _)| k.span())
        .unwrap_or(0..0)
}
