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
# rpm reads the .rpm that scripts/package.sh builds (packaging/ tests); dpkg-deb is on every Debian.
command -v rpm >/dev/null || need_pkgs+=(rpm)
# promtool, from Debian's prometheus package, checks the alert rules in deploy/.
command -v promtool >/dev/null || need_pkgs+=(prometheus)
# Chromium renders the admin status page headless (cmd/connectord status page test).
command -v chromium >/dev/null || need_pkgs+=(chromium)
# The prometheus package would start and enable a Prometheus server of its own. While
# need_pkgs installs, a policy-rc.d that answers 101 ("action forbidden") keeps it from
# starting; afterwards its service is disabled and whatever ran anyway is stopped.
prom_policy=/usr/sbin/policy-rc.d prom_policy_saved=/usr/sbin/policy-rc.d.connectord-prom-saved
prom_install_begin() {
	[[ " ${need_pkgs[*]} " == *" prometheus "* && $(id -u) -eq 0 ]] || return 0
	[[ -e $prom_policy ]] && mv "$prom_policy" "$prom_policy_saved"
	# Put the machine's own policy back even if the install is interrupted.
	trap 'prom_restore_policy' EXIT
	printf '#!/bin/sh\n# scripts/test.sh: no service starts while prometheus is installed\nexit 101\n' >"$prom_policy"
	chmod 755 "$prom_policy"
}
prom_restore_policy() {
	[[ -e $prom_policy_saved ]] || { rm -f "$prom_policy"; return 0; }
	mv "$prom_policy_saved" "$prom_policy"
}
prom_install_end() {
	[[ " ${need_pkgs[*]} " == *" prometheus "* && $(id -u) -eq 0 ]] || return 0
	prom_restore_policy
	trap - EXIT
	local pids
	if command -v systemctl >/dev/null; then systemctl disable --now prometheus.service >/dev/null 2>&1 || true; fi
	if command -v update-rc.d >/dev/null; then update-rc.d prometheus disable >/dev/null 2>&1 || true; fi
	if id prometheus >/dev/null 2>&1; then
		pids=$(pgrep -u prometheus -d ' ' -x prometheus || true)
		if [[ -n $pids ]]; then
			echo "stopping what the prometheus package started: $pids"
			kill $pids 2>/dev/null || true
		fi
	fi
}
prom_install_begin
if ((${#need_pkgs[@]})); then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "installing: ${need_pkgs[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null ||
			{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need_pkgs[@]}" >/dev/null; }
	else
		echo "missing Debian packages: ${need_pkgs[*]} (install them as root); the tests that need them will say so" >&2
	fi
fi
prom_install_end

# ejabberd is the real XMPP server of the CoBrowser tests (cobrowsertest runs private
# instances of it: own configuration, spool, node name and loopback ports). Debian's 23.01
# package is installed without ever running the system service: a policy-rc.d that answers
# 101 ("action forbidden") stands in during the install, and whatever the package's scripts
# started anyway is stopped and disabled afterwards.
ejabberdctl_found() { command -v ejabberdctl >/dev/null || [[ -x /usr/sbin/ejabberdctl ]]; }
install_ejabberd() {
	local policy=/usr/sbin/policy-rc.d saved=/usr/sbin/policy-rc.d.connectord-saved version pids
	version=$(apt-cache madison ejabberd 2>/dev/null | awk '$3 ~ /^23\.01/ { print $3; exit }')
	if [[ -z $version ]]; then
		apt-get update >/dev/null
		version=$(apt-cache madison ejabberd | awk '$3 ~ /^23\.01/ { print $3; exit }')
	fi
	[[ -n $version ]] || { echo "no ejabberd 23.01 package in the apt sources: the CoBrowser XMPP tests will skip (fail when CI=true)" >&2; return; }
	[[ -e $policy ]] && mv "$policy" "$saved"
	# Put the machine's own policy back even if the install is interrupted.
	trap 'rm -f /usr/sbin/policy-rc.d; [[ ! -e /usr/sbin/policy-rc.d.connectord-saved ]] || mv /usr/sbin/policy-rc.d.connectord-saved /usr/sbin/policy-rc.d' EXIT
	printf '#!/bin/sh\n# scripts/test.sh: no service starts while ejabberd is installed\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	echo "installing: ejabberd=$version"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "ejabberd=$version" >/dev/null || true
	rm -f "$policy"
	[[ -e $saved ]] && mv "$saved" "$policy"
	trap - EXIT
	# The package's own service must stay off: disabled for boot, stopped if it ran anyway.
	if command -v systemctl >/dev/null; then systemctl disable --now ejabberd.service >/dev/null 2>&1 || true; fi
	if command -v update-rc.d >/dev/null; then update-rc.d ejabberd disable >/dev/null 2>&1 || true; fi
	if id ejabberd >/dev/null 2>&1; then
		pids=$(pgrep -u ejabberd -d ' ' -x 'beam.smp|epmd' || true)
		if [[ -n $pids ]]; then
			echo "stopping what the ejabberd package started: $pids"
			kill $pids 2>/dev/null || true
		fi
	fi
	ejabberdctl_found || echo "ejabberd did not install: the CoBrowser XMPP tests will skip (fail when CI=true)" >&2
}
if ! ejabberdctl_found; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		install_ejabberd
	else
		echo "missing Debian package: ejabberd 23.01 (as root: apt-get install ejabberd); the CoBrowser XMPP tests will skip (fail when CI=true)" >&2
	fi
fi

# PostgreSQL runs the tests of connector/postgres (each run makes a database of its own
# and drops it). With CONNECTORD_TEST_PG_DSN set, that server is used and nothing here
# runs. Otherwise the machine's own cluster on 127.0.0.1:5432: installed from Debian's
# package when missing, started when down (pg_ctlcluster runs the server as the
# postgres user: PostgreSQL refuses to run as root), and, when the default DSN
# (postgres@127.0.0.1, no password) is refused, reached through a test role.
pg_default_dsn='postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
pg_test_dsn='postgres://connectord_test:connectord_test@127.0.0.1:5432/postgres?sslmode=disable'
pg_cluster_down() { pg_lsclusters --no-header 2>/dev/null | awk '$4 != "online" { found = 1 } END { exit !found }'; }
pg_start_clusters() {
	local ver name port status rest
	while read -r ver name port status rest; do
		[[ $status == online ]] && continue
		echo "starting PostgreSQL cluster $ver/$name"
		pg_ctlcluster "$ver" "$name" start || echo "PostgreSQL cluster $ver/$name did not start" >&2
	done < <(pg_lsclusters --no-header)
}
pg_wait() {
	for _ in $(seq 1 30); do
		pg_isready -q -h 127.0.0.1 -p 5432 && return 0
		sleep 0.5
	done
	return 1
}
setup_postgres() {
	if ! command -v pg_lsclusters >/dev/null; then
		if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
			echo "installing: postgresql"
			DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >/dev/null ||
				{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >/dev/null; } ||
				echo "postgresql did not install" >&2
		fi
		command -v pg_lsclusters >/dev/null || {
			echo "missing Debian package: postgresql (as root: apt-get install postgresql); the connector/postgres tests will skip (fail when CI=true)" >&2
			return
		}
	fi
	if pg_cluster_down; then
		if [[ $(id -u) -eq 0 ]]; then
			pg_start_clusters
		else
			echo "PostgreSQL is down: as root, pg_ctlcluster <version> main start; the connector/postgres tests will skip (fail when CI=true)" >&2
			return
		fi
	fi
	pg_wait || { echo "PostgreSQL does not answer on 127.0.0.1:5432; the connector/postgres tests will skip (fail when CI=true)" >&2; return; }
	psql "$pg_default_dsn" -qAtc 'SELECT 1' >/dev/null 2>&1 && return
	# A fresh Debian install asks for a password on 127.0.0.1: use a test role that has one.
	if [[ $(id -u) -eq 0 ]] && command -v runuser >/dev/null; then
		runuser -u postgres -- psql -qAtc "DO \$\$ BEGIN
			IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'connectord_test') THEN
				CREATE ROLE connectord_test LOGIN CREATEDB PASSWORD 'connectord_test';
			END IF; END \$\$" >/dev/null || true
	fi
	if psql "$pg_test_dsn" -qAtc 'SELECT 1' >/dev/null 2>&1; then
		export CONNECTORD_TEST_PG_DSN=$pg_test_dsn
	else
		echo "PostgreSQL refuses postgres@127.0.0.1 without a password: set CONNECTORD_TEST_PG_DSN; the connector/postgres tests will skip (fail when CI=true)" >&2
	fi
}
[[ -n ${CONNECTORD_TEST_PG_DSN:-} ]] || setup_postgres

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
