#!/usr/bin/env bash
# The Galata end-to-end tests of parallelworks-lab, from a fresh Debian machine (as root):
# installs Debian's Chromium when missing, the project (make install) and the test packages,
# then runs the tests. Playwright starts and stops the Jupyter server itself.
# Screenshots are kept in ui-tests/test-results/. Exits non-zero when a test fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
started=$(date +%s)

if [ ! -x /usr/bin/chromium ]; then
    echo "ui-tests: installing Debian's chromium"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends chromium; then
        apt-get update
        apt-get install -y --no-install-recommends chromium
    fi
fi

# The extension built and linked into the project's venv (a no-op when up to date).
make -C "$repo" --no-print-directory install
export PATH="$repo/.venv/bin:$PATH"

cd "$here"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
jlpm install --immutable

rm -rf test-results
status=0
jlpm playwright test "$@" || status=$?
echo "ui-tests: finished in $(( $(date +%s) - started )) s (exit $status); screenshots in ui-tests/test-results/"
exit $status
