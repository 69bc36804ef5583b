//! The read-only check after the kubeconfig is in place: `kubectl get nodes` when an API server
//! answers (the step's output `nodes`), and a warning when kubectl is more than one minor
//! version away from it.

use graphrun_plugin_api::shell::quote;
use graphrun_plugin_api::{Op, Run};

/// The step output that holds what `kubectl get nodes` printed (empty: no cluster answered).
pub const OUTPUT: &str = "nodes";

/// Seconds kubectl waits for the API server before the check says none answers.
const REQUEST_TIMEOUT: u32 = 10;

/// The check, run with the uploaded kubeconfig. `client_minor` is kubectl's minor version
/// (`None`: not known, no skew warning). A cluster that does not answer is a warning, not a
/// failure: the kubeconfig is in place for when it does.
pub fn op(kubectl: &str, kubeconfig: &str, client_minor: Option<u32>) -> Op {
    let kubectl = format!("{} --kubeconfig {}", quote(kubectl), quote(kubeconfig));
    let mut script = format!(
        "[ -r {config} ] || exit 0\n\
         server=$({kubectl} get --raw /version --request-timeout={REQUEST_TIMEOUT}s 2>/dev/null \
         | sed -n 's/.*\"minor\": *\"\\([0-9][0-9]*\\).*/\\1/p')\n\
         if [ -z \"$server\" ]; then\n  \
           echo {no_answer} >&2\n  \
           exit 0\n\
         fi\n\
         {kubectl} get nodes --request-timeout={REQUEST_TIMEOUT}s || exit 1\n",
        config = quote(kubeconfig),
        no_answer = quote(&format!(
            "warning: no Kubernetes API server answered with {kubeconfig} within {REQUEST_TIMEOUT}s: `kubectl get nodes` skipped"
        )),
    );
    if let Some(client) = client_minor {
        script.push_str(&format!(
            "skew=$((server - {client}))\n\
             if [ \"$skew\" -gt 1 ] || [ \"$skew\" -lt -1 ]; then\n  \
               echo \"warning: kubectl 1.{client} is more than one minor version away from the API server (1.$server): kubectl supports one either way; set version to 1.$server.x\" >&2\n\
             fi\n"
        ));
    }
    Op::check(Run::Shell(script)).capturing(OUTPUT)
}
