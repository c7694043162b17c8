#!/usr/bin/env bash
# Installs what the tests need (into ./.venv: the moto AWS emulator, cfn-lint, the SAM translator, Playwright
# and axe-core for the browser tests; Debian's chromium package when /usr/bin/chromium is missing) and runs all
# tests: template lint, formatting, clippy, then every unit, conformance and flow test, with the AWS backends
# against one moto emulator started here on a free 127.0.0.1 port and stopped on exit, then the pages people
# open from a link in headless Chromium against the local server.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
requirements=infra/requirements-test.txt
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv"
  python3 -m venv "$venv"
fi
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing test tools into $venv (moto, cfn-lint, aws-sam-translator)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$want" > "$stamp"
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "==> installing Debian's chromium (for the browser tests)"
  if [ "$(id -u)" = 0 ]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  "${apt_get[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq --no-install-recommends chromium \
    || { echo "could not install chromium: the browser tests need /usr/bin/chromium" >&2; exit 1; }
fi

echo "==> cfn-lint template.yaml"
"$venv/bin/cfn-lint" template.yaml

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings

echo "==> starting the moto AWS emulator"
portfile=$(mktemp)
"$venv/bin/python" infra/moto_server.py > "$portfile" &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; rm -f "$portfile"' EXIT
for _ in $(seq 1 300); do
  [ -s "$portfile" ] && break
  kill -0 "$moto_pid" 2>/dev/null || { echo "moto failed to start: is $venv complete? delete it and rerun" >&2; exit 1; }
  sleep 0.1
done
[ -s "$portfile" ] || { echo "moto did not start within 30 s" >&2; exit 1; }
export QCHAT_TEST_MOTO_ENDPOINT="http://127.0.0.1:$(head -n1 "$portfile")"
echo "    moto at $QCHAT_TEST_MOTO_ENDPOINT"

echo "==> cargo test"
cargo test --workspace --all-features

echo "==> browser tests (headless Chromium against the local server; screenshots in target/browser/)"
cargo build -p qchat-local --quiet
"$venv/bin/python" infra/browser_test.py
