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

go vet ./...
go test -race -count=1 -timeout 20m "$@" ./...
