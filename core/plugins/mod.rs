//! The plugins a run can use: the built-in steps, plus libraries named under `[plugins.*]`.

mod dynamic;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use graphrun_plugin_api::{Plugin, PluginInfo};

pub use dynamic::LoadError;

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Linked into graphrun.
    BuiltIn,
    /// Loaded from a shared library.
    Library(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::BuiltIn => f.write_str("built-in"),
            Origin::Library(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A usable plugin with its description cached.
pub struct Entry {
    /// The plugin's self-description.
    pub info: PluginInfo,
    /// Where it came from.
    pub origin: Origin,
    /// The plugin itself (built-in, or a wrapper around a loaded library).
    pub plugin: Arc<dyn Plugin>,
}

/// Plugins by name.
pub struct Registry {
    entries: Vec<Entry>,
}

impl Registry {
    /// The built-in plugins.
    pub fn builtin() -> Self {
        let mut registry = Registry {
            entries: Vec::new(),
        };
        for plugin in graphrun_builtin_plugins::plugins() {
            registry.entries.push(Entry {
                info: plugin.info(),
                origin: Origin::BuiltIn,
                plugin,
            });
        }
        registry
    }

    /// No plugins at all: for loading a library on its own (tests load a built-in plugin built
    /// as a `cdylib` under its own name this way).
    pub fn empty() -> Self {
        Registry {
            entries: Vec::new(),
        }
    }

    /// Adds a plugin (tests use this to inject plugins; loading goes through `load_library`).
    pub fn add(&mut self, plugin: Arc<dyn Plugin>, origin: Origin) -> Result<(), String> {
        let info = plugin.info();
        if let Some(existing) = self.get(&info.name) {
            return Err(format!(
                "two plugins are called `{}`: {} and {origin}",
                info.name, existing.origin
            ));
        }
        self.entries.push(Entry {
            info,
            origin,
            plugin,
        });
        Ok(())
    }

    /// Loads a plugin library declared as `[plugins.NAME] path = …`.
    pub fn load_library(&mut self, declared_name: &str, path: &Path) -> Result<(), String> {
        let plugin = dynamic::load(path).map_err(|err| err.to_string())?;
        let name = plugin.info().name;
        if name != declared_name {
            return Err(format!(
                "{} is the plugin `{name}`, not `{declared_name}`: name the table [plugins.{name}]",
                path.display()
            ));
        }
        self.add(Arc::new(plugin), Origin::Library(path.to_path_buf()))
    }

    /// A plugin by name.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.info.name == name)
    }

    /// Every plugin name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.info.name.as_str())
    }

    /// Every plugin.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }
}
