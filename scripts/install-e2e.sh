#!/usr/bin/env bash
# Installs what the end-to-end tests need, on a fresh Debian machine with only the npm registry and
# Debian's package archive reachable:
#   - Debian's chromium (Playwright drives it; Playwright's own browser download is impossible here),
#     ripgrep (code-server's search binary) and libkrb5-dev (a native module of code-server builds
#     against it); libonnx-testdata (the ONNX conformance tests for quantized operators);
#   - code-server (a real VS Code, 1.100.3) from npm into .e2e/code-server, outside the project's
#     own node_modules because its native modules build from source and need the tweaks below.
# Idempotent: skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
CODE_SERVER_VERSION=4.100.3

need_apt=()
command -v chromium >/dev/null || need_apt+=(chromium)
command -v rg >/dev/null || need_apt+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || need_apt+=(libkrb5-dev)
dpkg -s libonnx-testdata >/dev/null 2>&1 || need_apt+=(libonnx-testdata)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

prefix=.e2e/code-server
if [ ! -x "$prefix/node_modules/.bin/code-server" ]; then
  mkdir -p "$prefix"
  T=$(mktemp -d)
  # @vscode/ripgrep's install script downloads rg: give it Debian's rg from its cache instead.
  mkdir -p "$T/vscode-ripgrep-cache-1.15.11"
  tar czf "$T/vscode-ripgrep-cache-1.15.11/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C /usr/bin rg
  echo '{"name":"quantlens-e2e-code-server","private":true}' > "$prefix/package.json"
  # node-pty's install script runs `npx node-gyp` (needs --yes); as root npm needs --unsafe-perm.
  TMPDIR=$T npm_config_yes=true npm install --prefix "$prefix" --no-audit --no-fund --unsafe-perm \
    "code-server@$CODE_SERVER_VERSION" >"$T/install.log" 2>&1 || { tail -40 "$T/install.log"; exit 1; }
  rm -rf "$T"
fi
echo "e2e tools ready: $(command -v chromium), code-server $(node -p "require(\"./$prefix/node_modules/code-server/package.json\").version")"
