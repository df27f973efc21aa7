#!/bin/sh
# Runs before the package's files are unpacked (dpkg preinst, rpm %pre).
# It creates the "connectord" system user and group first, so that the
# configuration file is unpacked as root:connectord: a group name that does
# not exist yet would leave it root:root, unreadable by the service.
# $DPKG_ROOT is honoured: dpkg sets it when installing into another root.
set -e

# Keep in step with packaging/sysusers.conf (the package test compares them).
sysusers_line='u connectord - "connectord messaging connector" -'
root=${DPKG_ROOT:-}

# exists DATABASE NAME: whether the group or passwd entry NAME exists.
exists() {
	if [ -n "$root" ]; then
		grep -q "^$2:" "$root/etc/$1" 2>/dev/null
	else
		getent "$1" "$2" >/dev/null 2>&1
	fi
}

if command -v systemd-sysusers >/dev/null 2>&1; then
	printf '%s\n' "$sysusers_line" |
		systemd-sysusers --root="${root:-/}" --replace=/usr/lib/sysusers.d/connectord.conf -
else
	# No systemd-sysusers (a minimal image): the same user with shadow's tools.
	set -- ${root:+--root "$root"}
	exists group connectord || groupadd "$@" --system connectord
	exists passwd connectord || useradd "$@" --system --gid connectord --no-create-home \
		--home-dir / --shell /usr/sbin/nologin --comment "connectord messaging connector" connectord
fi
exit 0
