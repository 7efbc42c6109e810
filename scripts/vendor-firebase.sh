#!/usr/bin/env bash
# Rebuild notifier/static/vendor/firebase/ from the pinned Firebase JS SDK.
#
# The widget needs Firebase messaging in the reader's browser, served by notifier itself (no CDN
# at runtime). The bundle is committed, so `make test` and deployments never need npm; run this
# only to upgrade Firebase: bump the version in scripts/vendor-firebase/package.json, run
# `npm install --package-lock-only` there, then this script, and commit the result.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="$here/vendor-firebase"
out="$here/../notifier/static/vendor/firebase"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cp "$src/package.json" "$src/package-lock.json" "$src/entry.js" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

version="$(node -p "require('$work/node_modules/firebase/package.json').version")"
mkdir -p "$out"
# One ES module with app + installations + messaging; the widget imports it on first use.
"$work/node_modules/.bin/esbuild" "$work/entry.js" --bundle --format=esm --minify \
  --target=es2020 --legal-comments=none --log-level=warning --metafile="$work/meta.json" \
  --outfile="$out/firebase-messaging.js"
node "$src/licenses.js" "$work/meta.json" "$work/node_modules" >"$out/LICENSE"
printf 'firebase %s\nbundled by scripts/vendor-firebase.sh from scripts/vendor-firebase/entry.js\n' \
  "$version" >"$out/VERSION"
echo "vendored firebase $version into ${out#"$here/../"}"
