//! Loading a plugin from a shared library, behind the C ABI of `graphrun_plugin_api::ffi`.

use std::ffi::CStr;
use std::path::{Path, PathBuf};

use graphrun_plugin_api::ffi::{
    PluginDeclaration, Request, Response, ABI_VERSION, API_VERSION, SYMBOL,
};
use graphrun_plugin_api::{Params, PlanRequest, PlanResponse, Plugin, PluginError, PluginInfo};

/// Why a library could not be used as a plugin.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file does not exist.
    #[error(
        "plugin library {0} does not exist (build it with `cargo build --release` in its crate)"
    )]
    Missing(PathBuf),
    /// The dynamic loader refused it.
    #[error("cannot load {path}: {reason}")]
    Open {
        /// The library.
        path: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// No `GRAPHRUN_PLUGIN` symbol.
    #[error("{0} is not a graphrun plugin (no GRAPHRUN_PLUGIN symbol; export one with graphrun_plugin_api::export_plugin!)")]
    NotAPlugin(PathBuf),
    /// Built for another layout of the declaration.
    #[error("{path} uses plugin ABI {found}, this graphrun speaks ABI {ABI_VERSION}: rebuild the plugin against graphrun-plugin-api {API_VERSION}")]
    Abi {
        /// The library.
        path: PathBuf,
        /// Its ABI version.
        found: u32,
    },
    /// Built against an incompatible API crate.
    #[error("{path} was built against graphrun-plugin-api {found}, which is not compatible with {API_VERSION}: rebuild it against {API_VERSION}")]
    Api {
        /// The library.
        path: PathBuf,
        /// Its API version.
        found: String,
    },
    /// Built with `panic = "abort"`.
    #[error("{0} was built with panic = \"abort\": a panic in it would kill the whole run; build it with panic = \"unwind\" (the default)")]
    PanicAbort(PathBuf),
    /// Failed to describe itself (it panicked, or could not read the request).
    #[error("{path} could not describe itself: {reason}")]
    Info {
        /// The library.
        path: PathBuf,
        /// What it answered.
        reason: String,
    },
    /// Answered the info request with something unreadable.
    #[error("{path} answered with malformed data: {reason}")]
    Malformed {
        /// The library.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

/// A plugin living in a shared library; looks to the engine like any built-in plugin.
pub struct DynamicPlugin {
    path: PathBuf,
    declaration: &'static PluginDeclaration,
    info: PluginInfo,
}

/// Opens a library, checks it, and asks for its description.
pub fn load(path: &Path) -> Result<DynamicPlugin, LoadError> {
    if !path.exists() {
        return Err(LoadError::Missing(path.to_path_buf()));
    }
    let open_error = |reason: String| LoadError::Open {
        path: path.to_path_buf(),
        reason,
    };
    // dlopen searches LD_LIBRARY_PATH and the system's folders for a name without a `/`: an
    // absolute path makes it open exactly the file the playbook names, nothing else.
    let exact = std::path::absolute(path).map_err(|err| open_error(err.to_string()))?;
    // SAFETY: loading a library runs its initialisers; naming a library in a playbook is the
    // user's decision to trust it, as with any plugin system.
    let library =
        unsafe { libloading::Library::new(&exact) }.map_err(|err| open_error(err.to_string()))?;
    // SAFETY: the symbol is declared by export_plugin! as a static PluginDeclaration; only its
    // first field is read before the ABI version is known to match.
    let declaration: &'static PluginDeclaration = unsafe {
        let symbol = library
            .get::<*const PluginDeclaration>(SYMBOL)
            .map_err(|_| LoadError::NotAPlugin(path.to_path_buf()))?;
        &**symbol
    };
    // Never unloaded: code of the library may still be referenced (panic payloads, statics),
    // and unloading Rust libraries is not reliably safe.
    std::mem::forget(library);
    if declaration.abi_version != ABI_VERSION {
        return Err(LoadError::Abi {
            path: path.to_path_buf(),
            found: declaration.abi_version,
        });
    }
    // SAFETY: with a matching ABI, api_version points to a NUL-terminated static string.
    let api = unsafe { CStr::from_ptr(declaration.api_version) }
        .to_string_lossy()
        .into_owned();
    if !caret_compatible(&api, API_VERSION) {
        return Err(LoadError::Api {
            path: path.to_path_buf(),
            found: api,
        });
    }
    if declaration.panic_abort {
        return Err(LoadError::PanicAbort(path.to_path_buf()));
    }
    let mut plugin = DynamicPlugin {
        path: path.to_path_buf(),
        declaration,
        info: PluginInfo::default(),
    };
    plugin.info = match plugin.call(&Request::Info) {
        Ok(Response::Info { info }) => info,
        Ok(other) => return Err(plugin.malformed(format!("expected its info, got {other:?}"))),
        Err(CallError::Malformed(reason)) => return Err(plugin.malformed(reason)),
        Err(CallError::Failed(reason)) => {
            return Err(LoadError::Info {
                path: plugin.path.clone(),
                reason,
            })
        }
    };
    Ok(plugin)
}

/// Whether a plugin built against API `built` can run in an engine with API `engine`
/// (cargo's caret rule: same major, or same minor below 1.0, and the engine not older).
pub fn caret_compatible(built: &str, engine: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let core = v.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        Some((parts.next()??, parts.next()??, parts.next()??))
    };
    let (Some(b), Some(e)) = (parse(built), parse(engine)) else {
        return false;
    };
    let same_line = if b.0 == 0 {
        b.0 == e.0 && b.1 == e.1
    } else {
        b.0 == e.0
    };
    same_line && e >= b
}

/// Why a call across the C ABI gave no usable response.
enum CallError {
    /// The plugin answered, but not with a [`Response`].
    Malformed(String),
    /// The plugin panicked, could not read the request, or returned nothing.
    Failed(String),
}

impl DynamicPlugin {
    fn malformed(&self, reason: String) -> LoadError {
        LoadError::Malformed {
            path: self.path.clone(),
            reason,
        }
    }

    /// Sends one request across the C ABI and reads the answer.
    fn call(&self, request: &Request) -> Result<Response, CallError> {
        let bytes =
            serde_json::to_vec(request).map_err(|err| CallError::Failed(err.to_string()))?;
        let mut len = 0usize;
        // SAFETY: `call` reads `bytes.len()` bytes and writes the response length to `len`.
        let buffer = unsafe { (self.declaration.call)(bytes.as_ptr(), bytes.len(), &mut len) };
        if buffer.is_null() {
            return Err(CallError::Failed("the plugin returned no response".into()));
        }
        // SAFETY: the plugin returned a buffer of `len` bytes; it is copied, then handed back to
        // the plugin's own `free` (memory is freed on the side that allocated it).
        let answer = unsafe {
            let copy = std::slice::from_raw_parts(buffer, len).to_vec();
            (self.declaration.free)(buffer, len);
            copy
        };
        match serde_json::from_slice::<Response>(&answer) {
            Ok(Response::Panic { message }) => {
                Err(CallError::Failed(format!("the plugin panicked: {message}")))
            }
            Ok(Response::BadRequest { message }) => Err(CallError::Failed(format!(
                "the plugin could not read the request: {message}"
            ))),
            Ok(response) => Ok(response),
            Err(err) => Err(CallError::Malformed(err.to_string())),
        }
    }

    /// A failed call as the engine reports it (the step names the plugin, this adds the library).
    fn call_error(&self, error: CallError) -> String {
        match error {
            CallError::Malformed(reason) => format!(
                "malformed response from plugin library {}: {reason}",
                self.path.display()
            ),
            CallError::Failed(reason) => reason,
        }
    }
}

impl Plugin for DynamicPlugin {
    fn info(&self) -> PluginInfo {
        self.info.clone()
    }

    fn validate(&self, params: &Params) -> Vec<PluginError> {
        match self.call(&Request::Validate {
            params: params.clone(),
        }) {
            Ok(Response::Validate { errors }) => errors,
            Ok(other) => vec![PluginError::new(format!(
                "malformed answer to validate: {other:?}"
            ))],
            Err(error) => vec![PluginError::new(self.call_error(error))],
        }
    }

    fn plan(&self, request: &PlanRequest) -> Result<PlanResponse, PluginError> {
        match self.call(&Request::Plan {
            request: Box::new(request.clone()),
        }) {
            Ok(Response::Plan { result }) => result,
            Ok(other) => Err(PluginError::new(format!(
                "malformed answer to plan: {other:?}"
            ))),
            Err(error) => Err(PluginError::new(self.call_error(error))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::caret_compatible;

    #[test]
    fn caret_rule() {
        assert!(caret_compatible("0.1.0", "0.1.3"));
        assert!(!caret_compatible("0.1.4", "0.1.3"));
        assert!(!caret_compatible("0.2.0", "0.1.3"));
        assert!(caret_compatible("1.2.0", "1.5.0"));
        assert!(!caret_compatible("2.0.0", "1.5.0"));
        assert!(!caret_compatible("garbage", "1.5.0"));
    }
}
