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

/// The outcome of an apply.
#[derive(Debug)]
pub struct Applied {
    pub object: ObjectRef,
    /// False when the server already had exactly this (its resourceVersion did not move).
    pub changed: bool,
}

impl Cluster {
    /// Connects with the kubeconfig at `path` (its current context), TLS by rustls.
    pub async fn connect(path: &Path) -> Result<Self, Error> {
        let failed = |message: String| Error::Kubeconfig {
            path: path.to_path_buf(),
            message,
        };
        let kubeconfig = Kubeconfig::read_from(path).map_err(|e| failed(e.to_string()))?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|e| failed(e.to_string()))?;
        let client = kube::Client::try_from(config).map_err(|e| failed(e.to_string()))?;
        Ok(Cluster {
            client,
            kinds: Mutex::new(HashMap::new()),
        })
    }

    /// Server-side apply of `manifest` as field manager `graphrun`, with strict field validation
    /// (an unknown or duplicate field is an error, not silently dropped). A field another
    /// manager owns is a conflict: an error naming that manager, never taken over silently.
    pub async fn apply(&self, manifest: &serde_json::Value) -> Result<Applied, Error> {
        let object = ObjectRef::of(manifest)?;
        let api = self.api(&object).await?;
        let before = api
            .get_opt(&object.name)
            .await
            .map_err(|e| Error::api("read", &object, e))?;
        let params = PatchParams::apply(FIELD_MANAGER).validation(ValidationDirective::Strict);
        let after = api
            .patch(&object.name, &params, &Patch::Apply(manifest))
            .await
            .map_err(|e| Error::api("apply", &object, e))?;
        let version = |o: &DynamicObject| o.metadata.resource_version.clone();
        Ok(Applied {
            changed: before.as_ref().map(version) != Some(version(&after)),
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

fn unknown(object: &ObjectRef) -> Error {
    Error::UnknownKind {
        api_version: object.api_version.clone(),
        kind: object.kind.clone(),
    }
}
