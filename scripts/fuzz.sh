#!/usr/bin/env bash
# Runs every fuzz target in the repository for a bounded time each. Not part
# of the default test command (the seeds in testdata/fuzz run there as plain
# tests); run it before a release or after touching a decoder.
#
#   bash scripts/fuzz.sh                 # every target, 30s each
#   FUZZTIME=2m bash scripts/fuzz.sh     # longer
#   bash scripts/fuzz.sh ./channels/sms  # only the targets under a path
#
# A failure leaves its input under the package's testdata/fuzz/FuzzXxx/;
# commit it with the fix, so it stays a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-30s}"
roots=("${@:-./...}")

failed=()
total=0
while read -r dir; do
	[[ -n $dir ]] || continue
	pkg="./${dir#"$PWD"/}"
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go | sed 's/^func //' | sort -u); do
		total=$((total + 1))
		echo "== $pkg $target ($fuzztime)"
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"; then
			failed+=("$pkg $target")
		fi
	done
done < <(go list -f '{{if .TestGoFiles}}{{.Dir}}{{end}}' "${roots[@]}" | while read -r d; do
	grep -lq '^func Fuzz' "$d"/*_test.go 2>/dev/null && echo "$d"
done)

echo "fuzz targets run: $total; failed: ${#failed[@]}"
for f in "${failed[@]}"; do echo "  FAILED: $f"; done
((${#failed[@]} == 0))
