#!/usr/bin/env bash
# Azurite (the Azure Storage emulator) for the azure_blob connector tests,
# installed into .ci/node_modules (the tests look for .ci/node_modules/.bin/azurite-blob).
# Idempotent: does nothing when the pinned version is already there.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
VERSION=3.37.0
INSTALLED=.ci/node_modules/azurite/package.json

if [ -f "$INSTALLED" ] && grep -q "\"version\": \"$VERSION\"" "$INSTALLED"; then
    echo "[azurite] $VERSION already installed"
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "[azurite] npm is missing: install Node.js (e.g. apt-get install -y nodejs npm)" >&2
    exit 1
fi
npm install --prefix .ci --no-audit --no-fund --loglevel=error "azurite@$VERSION"
echo "[azurite] installed $VERSION"
