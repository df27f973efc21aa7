#!/bin/sh
# Runs after the files are removed (dpkg postrm, rpm %postun). systemd is told
# that the unit file is gone. Kept on purpose, even on purge: the state in
# /var/lib/connectord (the message database; /var/lib/private/connectord under
# DynamicUser=) and the connectord user, whose id may still own files.
set -e
if [ -d /run/systemd/system ] && [ -z "${DPKG_ROOT:-}" ]; then
	systemctl daemon-reload || true
fi
exit 0
