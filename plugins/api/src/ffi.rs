//! The C-ABI boundary of a dynamically loaded plugin.
//!
//! A plugin library exports one symbol, [`SYMBOL`], a [`PluginDeclaration`]. No Rust type crosses
//! the boundary: requests and responses are JSON bytes ([`Request`], [`Response`]). Memory is
//! freed on the side that allocated it: the engine copies a response and hands the buffer back to
//! the plugin's `free`. Panics are caught inside the plugin and come back as [`Response::Panic`].
//! Use [`export_plugin!`](crate::export_plugin) rather than this module directly.

use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};

use serde::{Deserialize, Serialize};

use crate::{Params, PlanRequest, PlanResponse, Plugin, PluginError, PluginInfo};

/// Layout version of [`PluginDeclaration`]; the engine checks it before reading anything else.
pub const ABI_VERSION: u32 = 1;

/// This API crate's version, checked caret-compatibly by the engine.
pub const API_VERSION: &str = env!("CARGO_PKG_VERSION");

/// [`API_VERSION`] as a C string.
pub const API_VERSION_CSTR: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(text) => text,
        Err(_) => panic!("the version has no interior NUL"),
    };

/// Name of the exported [`PluginDeclaration`] static.
pub const SYMBOL: &[u8] = b"GRAPHRUN_PLUGIN";

/// The one symbol a plugin library exports.
#[repr(C)]
pub struct PluginDeclaration {
    /// Must be [`ABI_VERSION`]; first so that it can be read whatever else changed.
    pub abi_version: u32,
    /// Whether the library was built with `panic = "abort"` (then it is refused: a panic would
    /// kill the whole run instead of failing one step).
    pub panic_abort: bool,
    /// NUL-terminated [`API_VERSION`] the plugin was built against.
    pub api_version: *const c_char,
    /// Handles one JSON [`Request`]; returns a JSON [`Response`] buffer and its length.
    pub call: unsafe extern "C" fn(request: *const u8, len: usize, out_len: *mut usize) -> *mut u8,
    /// Frees a buffer returned by `call`.
    pub free: unsafe extern "C" fn(buffer: *mut u8, len: usize),
}

// SAFETY: the declaration is immutable static data: a string literal pointer and two functions.
unsafe impl Sync for PluginDeclaration {}

/// A message from the engine to a plugin.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Request {
    /// Describe yourself.
    Info,
    /// Check these (possibly unrendered) parameters.
    Validate {
        /// The step's parameters.
        params: Params,
    },
    /// Plan one node.
    Plan {
        /// The node to plan.
        request: Box<PlanRequest>,
    },
}

/// A plugin's reply.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Response {
    /// Answer to [`Request::Info`].
    Info {
        /// The description.
        info: PluginInfo,
    },
    /// Answer to [`Request::Validate`].
    Validate {
        /// Every problem found (empty: fine).
        errors: Vec<PluginError>,
    },
    /// Answer to [`Request::Plan`].
    Plan {
        /// The plan or the plugin's error.
        result: Result<PlanResponse, PluginError>,
    },
    /// The plugin panicked; the message is the panic's.
    Panic {
        /// Panic message.
        message: String,
    },
    /// The request could not be read (version skew between engine and plugin).
    BadRequest {
        /// Parser error.
        message: String,
    },
}

/// Answers one request with `plugin` (the engine uses this for built-in plugins too, in tests,
/// so both ways in share one code path).
pub fn dispatch(plugin: &dyn Plugin, request: Request) -> Response {
    match request {
        Request::Info => Response::Info {
            info: plugin.info(),
        },
        Request::Validate { params } => Response::Validate {
            errors: plugin.validate(&params),
        },
        Request::Plan { request } => Response::Plan {
            result: plugin.plan(&request),
        },
    }
}

/// Body of the exported `call` function; see [`export_plugin!`](crate::export_plugin).
///
/// # Safety
/// `request` must point to `len` readable bytes and `out_len` to writable memory.
pub unsafe fn handle_call(
    plugin: fn() -> &'static dyn Plugin,
    request: *const u8,
    len: usize,
    out_len: *mut usize,
) -> *mut u8 {
    // A cdylib carries its own copy of std, hence its own panic hook: keep it quiet, since the
    // panic message travels back in the response and the engine reports it with the step
    // (the default hook would print over graphrun's progress display).
    static QUIET_PANICS: std::sync::Once = std::sync::Once::new();
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    // SAFETY: guaranteed by the caller (the engine passes a live slice).
    let bytes = unsafe { std::slice::from_raw_parts(request, len) };
    let response = catch_unwind(AssertUnwindSafe(|| {
        match serde_json::from_slice::<Request>(bytes) {
            Ok(request) => dispatch(plugin(), request),
            Err(err) => Response::BadRequest {
                message: err.to_string(),
            },
        }
    }))
    .unwrap_or_else(|panic| Response::Panic {
        message: panic_message(panic.as_ref()),
    });
    let encoded = serde_json::to_vec(&response).unwrap_or_else(|err| {
        format!(r#"{{"kind":"panic","message":"could not encode the response: {err}"}}"#)
            .into_bytes()
    });
    let boxed = encoded.into_boxed_slice();
    // SAFETY: guaranteed by the caller.
    unsafe { *out_len = boxed.len() };
    Box::into_raw(boxed) as *mut u8
}

/// Frees a buffer made by [`handle_call`].
///
/// # Safety
/// `buffer` and `len` must come from one [`handle_call`] result, freed once.
pub unsafe extern "C" fn free_buffer(buffer: *mut u8, len: usize) {
    // SAFETY: the pointer and length are those of the boxed slice leaked in `handle_call`.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(buffer, len)) });
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without message".to_string())
}

/// Exports a plugin from a `cdylib` crate so `[plugins.NAME] path = "…"` can load it.
///
/// The argument is an expression building the plugin; it is evaluated once, on first use.
///
/// ```ignore
/// graphrun_plugin_api::export_plugin!(MyPlugin::default());
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:expr) => {
        /// The graphrun plugin declaration read by the engine.
        #[no_mangle]
        pub static GRAPHRUN_PLUGIN: $crate::ffi::PluginDeclaration =
            $crate::ffi::PluginDeclaration {
                abi_version: $crate::ffi::ABI_VERSION,
                panic_abort: cfg!(panic = "abort"),
                api_version: $crate::ffi::API_VERSION_CSTR.as_ptr(),
                call: __graphrun_plugin_call,
                free: $crate::ffi::free_buffer,
            };

        fn __graphrun_plugin_instance() -> &'static dyn $crate::Plugin {
            static INSTANCE: ::std::sync::OnceLock<::std::boxed::Box<dyn $crate::Plugin>> =
                ::std::sync::OnceLock::new();
            INSTANCE
                .get_or_init(|| ::std::boxed::Box::new($plugin))
                .as_ref()
        }

        unsafe extern "C" fn __graphrun_plugin_call(
            request: *const u8,
            len: usize,
            out_len: *mut usize,
        ) -> *mut u8 {
            // SAFETY: the engine passes a live request buffer and a writable length.
            unsafe { $crate::ffi::handle_call(__graphrun_plugin_instance, request, len, out_len) }
        }
    };
}
