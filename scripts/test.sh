#!/usr/bin/env bash
# Runs every test of connectord, installing first what the tests need and
# this machine lacks. Safe to run again: what is present is left alone.
#
#   bash scripts/test.sh            # everything, with the race detector
#   bash scripts/test.sh -run Kill  # extra arguments go to `go test`
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: systemd-analyze checks the unit's hardening.
need_pkgs=()
command -v systemd-analyze >/dev/null || need_pkgs+=(systemd)
# Node.js and npm run the Customer Channel simulator (reference socket.io servers).
command -v npm >/dev/null || need_pkgs+=(nodejs npm)
if ((${#need_pkgs[@]})); then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "installing: ${need_pkgs[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null ||
			{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null; }
	else
		echo "missing Debian packages: ${need_pkgs[*]} (install them as root); the tests that need them will say so" >&2
	fi
fi

command -v go >/dev/null || { echo "go is not installed: https://go.dev/dl/ (go 1.26)" >&2; exit 1; }

# The simulator's Node packages, from its lock file, when missing or older than the lock.
cc_sim=vendors/customerchannel/customerchanneltest
if command -v npm >/dev/null; then
	[[ $cc_sim/node_modules/.package-lock.json -nt $cc_sim/package-lock.json ]] ||
		npm ci --prefix "$cc_sim" --no-audit --no-fund
else
	echo "npm is missing: the Customer Channel tests will fail (apt-get install nodejs npm)" >&2
fi

go vet ./...
go test -race -count=1 -timeout 20m "$@" ./...
