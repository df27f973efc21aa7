#!/usr/bin/env bash
# Builds the connectord .deb and .rpm (packaging/nfpm.yaml says what goes in).
#
#   bash scripts/package.sh             # into dist/
#   bash scripts/package.sh OUTDIR      # into OUTDIR
#   bash scripts/package.sh --version   # print the version it would use, build nothing
#
# Environment:
#   VERSION   package version (default: from `git describe`, made valid for
#             Debian and RPM; see pkg_version below). Also what
#             `connectord version` prints.
#   GOARCH    target architecture (default: `go env GOARCH`).
#   FORMATS   packagers to run (default: "deb rpm").
set -euo pipefail
cd "$(dirname "$0")/.."

# nfpm is run at a pinned version, without adding it to go.mod.
nfpm_module=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0

# pkg_version DESCRIBE COUNT HASH turns `git describe --tags --always --dirty`
# output into a version that Debian and RPM both accept and order sensibly:
#   v1.2.3                 -> 1.2.3
#   v1.2.3-rc1             -> 1.2.3~rc1          (before 1.2.3)
#   v1.2.3-4-gabc1234      -> 1.2.3+git4.abc1234 (after 1.2.3)
#   abc1234 (no tag)       -> 0.0.0~gitCOUNT.abc1234 (COUNT: commits on HEAD)
# and a "-dirty" suffix becomes ".dirty" (or "+dirty" after a bare tag).
# Only letters, digits, ".", "+" and "~" are used: a "-" would mean a Debian
# revision and is not allowed in an RPM version.
pkg_version() {
	local d=$1 count=$2 hash=$3 dirty="" v=""
	if [[ $d == *-dirty ]]; then
		dirty=1
		d=${d%-dirty}
	fi
	if [[ $d == "$hash" ]]; then
		# No tag: describe printed the commit, which may be all digits.
		:
	elif [[ $d =~ ^v?([0-9]+(\.[0-9]+)*)(-([0-9A-Za-z.]+))?-([0-9]+)-g([0-9a-f]+)$ ]]; then
		v=${BASH_REMATCH[1]}${BASH_REMATCH[4]:+~${BASH_REMATCH[4]}}+git${BASH_REMATCH[5]}.${BASH_REMATCH[6]}
		[[ -z $dirty ]] || v+=.dirty
	elif [[ $d =~ ^v?([0-9]+(\.[0-9]+)*)(-([0-9A-Za-z.]+))?$ ]]; then
		v=${BASH_REMATCH[1]}${BASH_REMATCH[4]:+~${BASH_REMATCH[4]}}
		[[ -z $dirty ]] || v+=+dirty
	fi
	if [[ -z ${v:-} ]]; then
		# No usable tag: order untagged builds by their number of commits.
		v=0.0.0~git${count:-0}.${hash:-unknown}
		[[ -z $dirty ]] || v+=.dirty
	fi
	printf '%s\n' "$v"
}

# default_version derives the version from git, or says it cannot.
default_version() {
	local describe count hash
	if ! describe=$(git describe --tags --always --dirty 2>/dev/null); then
		echo "scripts/package.sh: not a git checkout: set VERSION" >&2
		return 1
	fi
	count=$(git rev-list --count HEAD)
	hash=$(git rev-parse --short HEAD)
	pkg_version "$describe" "$count" "$hash"
}

# valid_version rejects a VERSION given by hand that either format refuses.
valid_version() {
	[[ $1 =~ ^[0-9][0-9A-Za-z.+~]*$ ]]
}

main() {
	local out=dist
	case "${1:-}" in
	--version)
		[[ -n ${VERSION:-} ]] || VERSION=$(default_version)
		printf '%s\n' "$VERSION"
		return
		;;
	--describe)
		# For the tests: the mapping of one `git describe` string.
		pkg_version "$2" "${3:-}" "${4:-}"
		return
		;;
	-*)
		echo "usage: scripts/package.sh [OUTDIR | --version]" >&2
		return 2
		;;
	?*) out=$1 ;;
	esac

	export VERSION PKG_ARCH CONNECTORD_BIN SOURCE_DATE_EPOCH
	[[ -n ${VERSION:-} ]] || VERSION=$(default_version)
	if ! valid_version "$VERSION"; then
		echo "scripts/package.sh: VERSION=$VERSION: use digits first, then only letters, digits, '.', '+' and '~'" >&2
		return 2
	fi
	local goarch
	goarch=${GOARCH:-$(go env GOARCH)}
	PKG_ARCH=$goarch
	# Files in the packages carry the last commit's time, so that a rebuild of
	# the same commit gives the same file list and times.
	SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

	# Global, not local: the EXIT trap runs after main has returned.
	workdir=$(mktemp -d)
	trap 'rm -rf "$workdir"' EXIT
	CONNECTORD_BIN=$workdir/connectord
	echo "building connectord $VERSION for linux/$goarch"
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch go build -trimpath -ldflags "-X main.version=$VERSION" \
		-o "$CONNECTORD_BIN" ./cmd/connectord

	mkdir -p "$out"
	local format
	for format in ${FORMATS:-deb rpm}; do
		# nfpm is a build tool of the host, not of the target.
		GOARCH=$(go env GOHOSTARCH) GOOS= go run "$nfpm_module" package \
			--config packaging/nfpm.yaml --packager "$format" --target "$out/" >&2 ||
			{ echo "scripts/package.sh: nfpm failed for $format" >&2; return 1; }
	done
	ls -1 "$out"
}

main "$@"
