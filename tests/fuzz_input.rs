//! Tests: parse + validate under generated input (proptest; cargo-fuzz needs a nightly
//! toolchain CI does not have). Playbooks are put together from fragments of real playbook
//! syntax (so generated input gets past the TOML parser into validation), and corpus files are
//! mutated byte by byte. Whatever comes in, loading must not panic, must point every
//! diagnostic inside its file, and must print it; a playbook that loads must expand into a DAG.
//! `PROPTEST_CASES=N` sets the number of cases (`.ci/run` runs a longer bounded pass).

use std::path::Path;

use proptest::prelude::*;

use graphrun::engine::{Dag, Selection};
use graphrun::plugins::Registry;

/// Lines and tables of playbook syntax, valid and not, that the generator strings together.
const FRAGMENTS: &[&str] = &[
    "[hosts.a]\naddress = \"127.0.0.1\"\n",
    "[hosts.b]\nconnection = \"local\"\ngroups = [\"g\"]\n",
    "[hosts.c]\naddress = \"127.0.0.3\"\nport = 0\nbecome = true\n",
    "[groups.g]\nhosts = [\"a\", \"zz\"]\n",
    "[groups.h]\nhosts = \"a\"\n",
    "[vars]\nx = 1\ny = { env = \"GRAPHRUN_FUZZ_UNSET\" }\nz = { file = \"no-such-file\" }\n",
    "[defaults]\nuser = \"root\"\nconnect_timeout = \"1s\"\nhost_key_checking = \"off\"\n",
    "[steps.s1]\nplugin = \"command\"\nrun = \"echo {{ vars.x }}\"\n",
    "[steps.s2]\nplugin = \"file\"\npath = \"/tmp/f\"\nreplace = { regex = \"^(a)$\", with = \"$1\" }\n",
    "[steps.s3]\nneeds = [\"s1\", \"s3\", \"nope\"]\nwait = \"all\"\n",
    "[steps.s1]\nneeds = [\"s2\"]\n",
    "[steps.s2]\nneeds = [\"s1\"]\non = [\"a\", \"g\", \"all\"]\n",
    "plugin = \"command\"\n",
    "run = [\"sh\", \"-c\", \"{{ host.name | quote }}\"]\n",
    "when = \"{{ steps.s1.outputs.x is defined }}\"\n",
    "timeout = \"18446744073709551615s\"\nretries = 4294967296\n",
    "retry_delay = \"-1s\"\n",
    "content = \"{% for h in groups.g %}{{ hosts[h].address }}{% endfor %}\"\n",
    "line = \"{{ \"\n",
    "[plugins.p]\npath = \"no/such/lib.so\"\n",
    "[steps.\"a b\"]\nplugin = \"p\"\n",
    "[[steps]]\n",
    "[steps]\nx = 1\n",
    "a.b.c = { d = [1, { e = \"f\" }] }\n",
    "\"\\u0000\" = \"\\uD800\"\n",
    "# comment é 日本\n",
    "\r\n",
    "\u{feff}",
    "= = =\n",
    "[",
    "\"\"\"\nunterminated\n",
];

fn fragment_playbooks() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..24)
        .prop_map(|parts| parts.concat().into_bytes())
}

/// Valid text with random bytes overwritten, inserted or cut out.
fn mutated_playbooks() -> impl Strategy<Value = Vec<u8>> {
    let edit = (any::<usize>(), any::<u8>(), 0u8..3);
    (
        proptest::sample::select(FRAGMENTS),
        proptest::collection::vec(edit, 1..8),
    )
        .prop_map(|(base, edits)| {
            let mut bytes = [base, FRAGMENTS[7], FRAGMENTS[0]].concat().into_bytes();
            for (at, byte, kind) in edits {
                let at = at % (bytes.len() + 1);
                match kind {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ => bytes.truncate(at),
                }
            }
            bytes
        })
}

/// Loads `bytes` as a playbook and checks what the loader answers.
fn load_checked(dir: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    let path = dir.join("playbook.toml");
    std::fs::write(&path, bytes).unwrap();
    let mut registry = Registry::builtin();
    match graphrun::playbook::load(&path, None, &mut registry) {
        Ok(playbook) => {
            // Validation let it through: expanding it must work too (or fail with a message).
            let _ = Dag::build(&playbook, &Selection::default());
        }
        Err(diagnostics) => {
            prop_assert!(!diagnostics.is_empty(), "refused without a reason");
            for diagnostic in &diagnostics {
                if let Some((source, span)) = &diagnostic.location {
                    prop_assert!(span.start <= span.end && span.end <= source.text.len());
                    prop_assert!(source.text.is_char_boundary(span.start));
                    prop_assert!(source.text.is_char_boundary(span.end));
                }
                prop_assert!(!diagnostic.to_string().is_empty());
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fragments_of_playbooks_never_panic_the_loader(bytes in fragment_playbooks()) {
        let dir = tempfile::tempdir().unwrap();
        load_checked(dir.path(), &bytes)?;
    }

    #[test]
    fn mutated_playbooks_never_panic_the_loader(bytes in mutated_playbooks()) {
        let dir = tempfile::tempdir().unwrap();
        load_checked(dir.path(), &bytes)?;
    }
}
