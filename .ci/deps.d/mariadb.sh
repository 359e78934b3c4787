#!/usr/bin/env bash
# MariaDB server for the MySQL connector tests (tests/integration/connectors_sql).
# Idempotent: installs Debian's mariadb-server only when `mariadbd` is missing.
# The Debian service is not started (and is not needed): the tests start their own
# throwaway server with mariadb-install-db + mariadbd in a temporary directory.
set -euo pipefail

if command -v mariadbd >/dev/null 2>&1 || [[ -x /usr/sbin/mariadbd ]]; then
    echo "[mariadb] already installed: $(command -v mariadbd || echo /usr/sbin/mariadbd)"
    exit 0
fi
echo "[mariadb] installing Debian's mariadb-server"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server >/dev/null
echo "[mariadb] installed"
