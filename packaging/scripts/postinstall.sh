#!/bin/sh
# Runs after the files are unpacked (dpkg postinst, rpm %post).
# The service is not enabled or started on a fresh install: the shipped
# config.toml names example accounts and must be edited first (see
# /usr/share/doc/connectord/packaging.md). On an upgrade a running service is
# restarted so that it runs the new binary.
set -e

upgrade=
case "$1" in
configure) [ -z "$2" ] || upgrade=1 ;; # dpkg: $2 is the version replaced, if any
[0-9]*) [ "$1" -lt 2 ] || upgrade=1 ;; # rpm: the number of installed versions
esac

# Only when systemd is the running init (not in a chroot or image build).
if [ -d /run/systemd/system ] && [ -z "${DPKG_ROOT:-}" ]; then
	systemctl daemon-reload || true
	if [ -n "$upgrade" ]; then
		systemctl try-restart connectord.service || true
	fi
fi
exit 0
