//! One connection to one cluster: apply and read objects of any kind.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams, ValidationDirective};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiResource, Scope};

use crate::{Error, ObjectRef};

/// The field manager of every object graphrun applies: `kubectl get -o yaml --show-managed-fields`
/// shows which fields graphrun owns.
pub const FIELD_MANAGER: &str = "graphrun";

/// A client for the cluster a kubeconfig names. Cheap to share: kinds are discovered once.
pub struct Cluster {
    client: kube::Client,
    kinds: Mutex<HashMap<(String, String), (ApiResource, Scope)>>,
}

/// The outcome of an apply (or of its dry run).
#[derive(Debug)]
pub struct Applied {
    pub object: ObjectRef,
    /// False when the server already had exactly this (its resourceVersion did not move).
    pub changed: bool,
    /// The object as the server had it before; `None` when it did not exist.
    pub before: Option<serde_json::Value>,
    /// The object as the server keeps it after the apply (after a dry run: would keep it).
    pub after: serde_json::Value,
}

impl Cluster {
    /// Connects with the kubeconfig at `path` (its current context), TLS by rustls.
    pub async fn connect(path: &Path) -> Result<Self, Error> {
        let config = config(path).await?;
        Self::with_config(path, config)
    }

    /// Connects to the kubeconfig's cluster through `local`, a forwarded port that leads to its
    /// API server: the server's certificate is still checked against the kubeconfig's host
    /// name (or its `tls-server-name`).
    pub async fn connect_through(path: &Path, local: std::net::SocketAddr) -> Result<Self, Error> {
        let mut config = config(path).await?;
        if config.tls_server_name.is_none() {
            config.tls_server_name = config.cluster_url.host().map(|host| {
                // An IPv6 address comes bracketed in a URL, not in a certificate.
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string()
            });
        }
        config.cluster_url = format!("https://{local}")
            .parse()
            .map_err(|e| kubeconfig_error(path, format!("{e}")))?;
        Self::with_config(path, config)
    }

    /// The host and port of the API server the kubeconfig's current context names.
    pub async fn server(path: &Path) -> Result<(String, u16), Error> {
        let url = config(path).await?.cluster_url;
        let host = url
            .host()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']').to_string())
            .ok_or_else(|| kubeconfig_error(path, format!("the server {url} has no host")))?;
        Ok((host, url.port_u16().unwrap_or(443)))
    }

    fn with_config(path: &Path, config: kube::Config) -> Result<Self, Error> {
        let client =
            kube::Client::try_from(config).map_err(|e| kubeconfig_error(path, e.to_string()))?;
        Ok(Cluster {
            client,
            kinds: Mutex::new(HashMap::new()),
        })
    }

    /// The server's version: its `/version` answer (`major`, `minor`, `gitVersion`, ...).
    pub async fn version(&self) -> Result<serde_json::Value, Error> {
        let info = self
            .client
            .apiserver_version()
            .await
            .map_err(|e| Error::Version(e.to_string()))?;
        serde_json::to_value(info).map_err(|e| Error::Version(e.to_string()))
    }

    /// Server-side apply of `manifest` as field manager `graphrun`, with strict field validation
    /// (an unknown or duplicate field is an error, not silently dropped). A field another
    /// manager owns is a conflict: an error naming that manager, never taken over silently.
    pub async fn apply(&self, manifest: &serde_json::Value) -> Result<Applied, Error> {
        self.apply_as(manifest, false).await
    }

    /// What [`Cluster::apply`] would do, asked of the server as a dry run (it validates and
    /// defaults the object, and stores nothing).
    pub async fn dry_run_apply(&self, manifest: &serde_json::Value) -> Result<Applied, Error> {
        self.apply_as(manifest, true).await
    }

    async fn apply_as(
        &self,
        manifest: &serde_json::Value,
        dry_run: bool,
    ) -> Result<Applied, Error> {
        let object = ObjectRef::of(manifest)?;
        let api = self.api(&object).await?;
        let before = api
            .get_opt(&object.name)
            .await
            .map_err(|e| Error::api("read", &object, e))?;
        let mut params = PatchParams::apply(FIELD_MANAGER).validation(ValidationDirective::Strict);
        if dry_run {
            params = params.dry_run();
        }
        let after = api
            .patch(&object.name, &params, &Patch::Apply(manifest))
            .await
            .map_err(|e| {
                Error::api(
                    if dry_run { "apply (dry run)" } else { "apply" },
                    &object,
                    e,
                )
            })?;
        let version = |o: &DynamicObject| o.metadata.resource_version.clone();
        let changed = before.as_ref().map(version) != Some(version(&after));
        let json = |o: DynamicObject| {
            serde_json::to_value(o).map_err(|e| Error::Api {
                action: "decode",
                object: Box::new(object.clone()),
                message: e.to_string(),
            })
        };
        Ok(Applied {
            changed,
            before: before.map(json).transpose()?,
            after: json(after)?,
            object,
        })
    }

    /// The object as the server has it, or `None` when it does not exist.
    pub async fn get(&self, object: &ObjectRef) -> Result<Option<serde_json::Value>, Error> {
        let api = self.api(object).await?;
        let found = api
            .get_opt(&object.name)
            .await
            .map_err(|e| Error::api("read", object, e))?;
        found
            .map(|o| {
                serde_json::to_value(o).map_err(|e| Error::Api {
                    action: "decode",
                    object: Box::new(object.clone()),
                    message: e.to_string(),
                })
            })
            .transpose()
    }

    /// The API of an object's kind, in its namespace when the kind is namespaced.
    async fn api(&self, object: &ObjectRef) -> Result<Api<DynamicObject>, Error> {
        let (resource, scope) = self.kind(object).await?;
        Ok(match scope {
            Scope::Cluster => Api::all_with(self.client.clone(), &resource),
            Scope::Namespaced => {
                let namespace = object
                    .namespace
                    .as_deref()
                    .unwrap_or(self.client.default_namespace());
                Api::namespaced_with(self.client.clone(), namespace, &resource)
            }
        })
    }

    async fn kind(&self, object: &ObjectRef) -> Result<(ApiResource, Scope), Error> {
        let key = (object.api_version.clone(), object.kind.clone());
        if let Some(known) = self.kinds.lock().expect("kinds lock").get(&key) {
            return Ok(known.clone());
        }
        let (group, version) = object.group_version();
        let gvk = GroupVersionKind::gvk(group, version, &object.kind);
        let (resource, capabilities) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| match e {
                kube::Error::Discovery(_) => unknown(object),
                kube::Error::Api(status) if status.code == 404 => unknown(object),
                other => Error::api("discover the kind of", object, other),
            })?;
        let found = (resource, capabilities.scope);
        self.kinds
            .lock()
            .expect("kinds lock")
            .insert(key, found.clone());
        Ok(found)
    }
}

/// The kubeconfig's client settings (its current context).
async fn config(path: &Path) -> Result<kube::Config, Error> {
    let kubeconfig =
        Kubeconfig::read_from(path).map_err(|e| kubeconfig_error(path, e.to_string()))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| kubeconfig_error(path, e.to_string()))
}

fn kubeconfig_error(path: &Path, message: String) -> Error {
    Error::Kubeconfig {
        path: path.to_path_buf(),
        message,
    }
}

fn unknown(object: &ObjectRef) -> Error {
    Error::UnknownKind {
        api_version: object.api_version.clone(),
        kind: object.kind.clone(),
    }
}
