//! The built-in `file` step: a file's content (given, a local file, or an artifact downloaded
//! from a URL), a line in it, a regex rewrite, or a directory.

use graphrun_plugin_api::{
    attrs_from, Checksum, Op, ParamKind, Params, Plan, PlanRequest, PlanResponse, Plugin,
    PluginError, PluginInfo,
};
use graphrun_plugin_kit::params::{specs, Args, Param, GROUP, MODE, OWNER};

mod replace;

/// Manages one path: `content`, `line` (with `absent`), `replace`, `directory`, or `absent` alone.
#[derive(Debug, Default)]
pub struct FilePlugin;

const PARAMS: &[Param] = &[
    Param::required("path", ParamKind::String, "Path on the host"),
    Param::optional("content", ParamKind::String, "Whole content of the file"),
    Param::optional("source", ParamKind::String, "A local file to copy to the host (relative to the playbook); for binaries and large files"),
    Param::optional("url", ParamKind::String, "An upstream file URL (an artifact): downloaded once by this machine, through [artifacts] `mirror` or `dir` when set, verified, and uploaded to hosts whose copy differs"),
    Param::optional("sha256", ParamKind::String, "With `source` or `url`: its expected sha256, checked before anything is sent"),
    Param::optional("checksum_url", ParamKind::String, "With `url`: a checksum file (`sha256sum` lines naming the file, or a lone hash) instead of `sha256`"),
    Param::optional("line", ParamKind::String, "A line the file must contain (created if missing)"),
    Param::optional("absent", ParamKind::Bool, "With `line`: remove the line; alone: remove the path")
        .default_bool(false),
    Param::optional("replace", ParamKind::Table, "{ regex = \"POSIX ERE\", with = \"replacement: \\\\1…\\\\9 for groups, & for the match (sed's syntax; `$1` is refused)\" }: rewrite matching lines"),
    Param::optional("directory", ParamKind::Bool, "Make the path a directory (parents included)")
        .default_bool(false),
    MODE,
    OWNER,
    GROUP,
];

/// The parameters that choose what the step does; one of them, or `absent` alone.
const MODES: [&str; 6] = ["content", "source", "url", "line", "replace", "directory"];

impl Plugin for FilePlugin {
    fn info(&self) -> PluginInfo {
        PluginInfo {
            name: "file".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Manages a file (content, or a local file to upload), a line in it, a regex rewrite, or a directory"
                .into(),
            params: specs(PARAMS),
            outputs: vec![],
            ..Default::default()
        }
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        file_op(params).err().into_iter().collect()
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        Ok(Plan::ops(vec![file_op(&request.params)?]).into())
    }
}

fn file_op(params: &Params) -> Result<Op, PluginError> {
    let args = Args::new(PARAMS, params);
    let path = params.host_path("path")?;
    let attrs = attrs_from(params)?;
    let absent = args.flag("absent")?;
    let has_attrs = attrs != Default::default();
    let op = match args.one_of(&MODES, !absent)? {
        None => Op::Absent { path: path.into() },
        Some("content") => Op::file(path, args.required_str("content")?).with_attrs(attrs.clone()),
        Some("directory") => Op::directory(path).with_attrs(attrs.clone()),
        Some("source") => Op::Upload {
            source: args.required_str("source")?.into(),
            path: path.into(),
            sha256: args.str("sha256")?.map(str::to_string),
            attrs: attrs.clone(),
        },
        Some("url") => artifact_op(&args, path)?.with_attrs(attrs.clone()),
        Some("line") if absent => Op::line_absent(path, args.required_str("line")?),
        Some("line") => Op::line(path, args.required_str("line")?),
        Some(_replace) => {
            let table = args.table("replace")?.unwrap_or_default();
            let regex = table
                .str("regex")?
                .ok_or_else(|| PluginError::param("replace", "needs `regex`"))?;
            let with = table
                .str("with")?
                .ok_or_else(|| PluginError::param("replace", "needs `with`"))?;
            if let Some(extra) = table.0.keys().find(|k| *k != "regex" && *k != "with") {
                return Err(PluginError::param(
                    "replace",
                    format!("unknown key `{extra}`: only `regex` and `with`"),
                ));
            }
            replace::check(regex, with)?;
            Op::replace(path, regex, with)
        }
    };
    if absent && !matches!(op, Op::Absent { .. } | Op::Line { .. }) {
        return Err(PluginError::param(
            "absent",
            "goes with `line`, or alone to remove the path",
        ));
    }
    if has_attrs
        && !matches!(
            op,
            Op::File { .. } | Op::Directory { .. } | Op::Upload { .. } | Op::Artifact { .. }
        )
    {
        return Err(PluginError::param(
            "mode",
            "mode, owner and group go with `content`, `source`, `url` or `directory`",
        ));
    }
    if args.has("sha256") && !matches!(op, Op::Upload { .. } | Op::Artifact { .. }) {
        return Err(PluginError::param("sha256", "goes with `source` or `url`"));
    }
    if args.has("checksum_url") && !matches!(op, Op::Artifact { .. }) {
        return Err(PluginError::param("checksum_url", "goes with `url`"));
    }
    Ok(op)
}

/// `url` with `sha256` or `checksum_url` (whose line for the URL's file name counts).
fn artifact_op(args: &Args, path: &str) -> Result<Op, PluginError> {
    let url = args.required_str("url")?;
    let file_name = url.rsplit('/').next().unwrap_or_default();
    let checksum = match (args.str("sha256")?, args.str("checksum_url")?) {
        (Some(sha256), None) => Checksum::sha256(sha256),
        (None, Some(sums)) => Checksum::file(sums, file_name),
        _ => {
            return Err(PluginError::param(
                "url",
                "needs one of `sha256` and `checksum_url`: an artifact is always verified",
            ))
        }
    };
    Ok(Op::artifact(url, checksum, path))
}

#[cfg(feature = "export")]
graphrun_plugin_api::export_plugin!(FilePlugin);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(params: serde_json::Value) -> Result<Op, PluginError> {
        file_op(&serde_json::from_value(params).unwrap())
    }

    #[test]
    fn each_mode_plans_its_op() {
        assert_eq!(
            op(json!({"path": "/a", "line": "x"})).unwrap(),
            Op::line("/a", "x")
        );
        assert_eq!(
            op(json!({"path": "/a", "line": "x", "absent": true})).unwrap(),
            Op::line_absent("/a", "x")
        );
        assert_eq!(
            op(json!({"path": "/a", "content": "x", "mode": "0600"})).unwrap(),
            Op::file("/a", "x").with_mode("0600")
        );
        assert_eq!(
            op(json!({"path": "/a", "directory": true})).unwrap(),
            Op::directory("/a")
        );
        assert_eq!(
            op(json!({"path": "/a", "absent": true})).unwrap(),
            Op::Absent { path: "/a".into() }
        );
        assert_eq!(
            op(json!({"path": "/a", "replace": {"regex": "^x", "with": "# x"}})).unwrap(),
            Op::replace("/a", "^x", "# x")
        );
    }

    #[test]
    fn a_local_source_is_an_upload_with_its_checksum() {
        assert_eq!(
            op(json!({"path": "/usr/local/bin/rke", "source": "files/rke", "sha256": "ab12", "mode": "0755"})).unwrap(),
            Op::Upload {
                source: "files/rke".into(),
                path: "/usr/local/bin/rke".into(),
                sha256: Some("ab12".into()),
                attrs: graphrun_plugin_api::Attrs { mode: Some("0755".into()), ..Default::default() },
            }
        );
        assert_eq!(
            op(json!({"path": "/a", "line": "x", "sha256": "ab12"}))
                .unwrap_err()
                .param
                .as_deref(),
            Some("sha256")
        );
    }

    #[test]
    fn a_url_is_an_artifact_verified_by_a_sha256_or_a_checksum_file() {
        let url = "https://dl.k8s.io/release/v1.34.5/bin/linux/amd64/kubectl";
        assert_eq!(
            op(json!({"path": "/usr/local/bin/kubectl", "url": url, "checksum_url": format!("{url}.sha256"), "mode": "0755"})).unwrap(),
            Op::artifact(url, Checksum::file(&format!("{url}.sha256"), "kubectl"), "/usr/local/bin/kubectl")
                .with_mode("0755")
        );
        assert_eq!(
            op(json!({"path": "/k", "url": url, "sha256": "ab12"})).unwrap(),
            Op::artifact(url, Checksum::sha256("ab12"), "/k")
        );
        for unverified in [
            json!({"path": "/k", "url": url}),
            json!({"path": "/k", "url": url, "sha256": "a", "checksum_url": "b"}),
        ] {
            let err = op(unverified).unwrap_err();
            assert_eq!(err.param.as_deref(), Some("url"));
            assert!(err.message.contains("always verified"), "{}", err.message);
        }
        let stray = op(json!({"path": "/a", "content": "x", "checksum_url": "https://x.test/s"}))
            .unwrap_err();
        assert_eq!(stray.param.as_deref(), Some("checksum_url"));
    }

    #[test]
    fn conflicting_or_missing_modes_are_errors() {
        let both = op(json!({"path": "/a", "line": "x", "content": "y"})).unwrap_err();
        assert_eq!(both.param.as_deref(), Some("line"));
        assert!(op(json!({"path": "/a"}))
            .unwrap_err()
            .message
            .contains("set one of"));
        assert_eq!(
            op(json!({"path": "/a", "line": "x", "mode": "644x"}))
                .unwrap_err()
                .param
                .as_deref(),
            Some("mode")
        );
        assert_eq!(
            op(json!({"path": "/a", "line": "x", "mode": "0644"}))
                .unwrap_err()
                .param
                .as_deref(),
            Some("mode")
        );
        assert_eq!(
            op(json!({"path": "/a", "replace": {"regex": "x"}}))
                .unwrap_err()
                .param
                .as_deref(),
            Some("replace")
        );
    }
}
