//! One Kubernetes client per kubeconfig for a whole run, reaching the API server directly or,
//! when this machine cannot, through an SSH tunnel via the node's host.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use graphrun_kube::Cluster;

use crate::transport::Lease;

/// How long a TCP connect to the API server may take before it counts as unreachable from
/// here (a server that answers at all answers a connect in milliseconds).
const REACH_TIMEOUT: Duration = Duration::from_secs(3);

/// The clients of a run, by kubeconfig path. A client that could not be made is not kept: the
/// next op tries again (the cluster may have come up since).
#[derive(Default)]
pub(crate) struct Clusters {
    clients: tokio::sync::Mutex<HashMap<String, Arc<Cluster>>>,
}

impl Clusters {
    /// The client for `kubeconfig`, connecting on first use; `session` is the node's host, the
    /// way to the API server when this machine has none.
    pub(super) async fn client(
        &self,
        kubeconfig: &str,
        session: &Lease,
    ) -> Result<Arc<Cluster>, String> {
        // Held while connecting, so concurrent nodes make one client (and one tunnel).
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(kubeconfig) {
            return Ok(client.clone());
        }
        let client = Arc::new(connect(Path::new(kubeconfig), session).await?);
        clients.insert(kubeconfig.to_string(), client.clone());
        Ok(client)
    }
}

async fn connect(path: &Path, session: &Lease) -> Result<Cluster, String> {
    let (host, port) = Cluster::server(path).await.map_err(|e| e.to_string())?;
    if reachable(&host, port).await {
        return Cluster::connect(path).await.map_err(|e| e.to_string());
    }
    let local = session.forward(&host, port).await.map_err(|err| {
        format!(
            "the API server {host}:{port} of {} does not answer from this machine, and a tunnel \
             through the step's host failed: {err}",
            path.display()
        )
    })?;
    Cluster::connect_through(path, local)
        .await
        .map_err(|e| e.to_string())
}

/// Whether a TCP connection to the server opens from this machine.
async fn reachable(host: &str, port: u16) -> bool {
    let connect = tokio::net::TcpStream::connect((host, port));
    matches!(
        tokio::time::timeout(REACH_TIMEOUT, connect).await,
        Ok(Ok(_))
    )
}
