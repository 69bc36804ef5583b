#!/usr/bin/env bash
# Dependency policy (deny.toml) with cargo-deny: licenses, bans and sources always; advisories
# when RustSec's database (a git repository on GitHub) can be fetched from this machine.
#   bash .ci/deny.sh
# cargo-deny is built once per machine into /var/cache/graphrun-tools (the only way that works
# here: no prebuilt binary can be downloaded, and PyPI's wheel is too old to read the licenses
# our dependencies declare). Building it takes 10-30 minutes on two cores; later runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.20.2
TOOLS=/var/cache/graphrun-tools/cargo-deny-$VERSION
DENY=$TOOLS/bin/cargo-deny
if [ ! -x "$DENY" ]; then
    echo "deny: building cargo-deny $VERSION into $TOOLS (once per machine)"
    cargo install --quiet --locked --version "$VERSION" cargo-deny \
        --root "$TOOLS" --target-dir "$TOOLS/build"
    rm -rf "$TOOLS/build"
fi
"$DENY" --version

# The check reads every platform's dependencies; a build fetches only this one's (reqwest's
# wasm crates, for one), so every crate of the lock file is fetched first.
cargo fetch --locked --quiet
"$DENY" --offline check licenses bans sources
if timeout 20 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
    "$DENY" check advisories
else
    echo "deny: advisories NOT checked: RustSec's advisory database (github.com/rustsec/advisory-db)"
    echo "deny: cannot be fetched from this machine; licenses, bans and sources were checked"
fi
