#!/bin/sh
# Runs before the files are removed (dpkg prerm, rpm %preun). On removal (not
# on an upgrade, where the postinstall script restarts the service) the service
# is stopped and disabled; stopping drains it (see TimeoutStopSec in the unit).
set -e

removal=
case "$1" in
remove) removal=1 ;;            # dpkg; "upgrade" and the failure cases keep it
0) removal=1 ;;                 # rpm: no version of the package remains
esac

if [ -n "$removal" ] && [ -d /run/systemd/system ] && [ -z "${DPKG_ROOT:-}" ]; then
	systemctl disable --now connectord.service || true
fi
exit 0
