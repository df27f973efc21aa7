// Package packaging holds what builds the connectord .deb and .rpm
// (nfpm.yaml, the maintainer scripts and the sysusers entry; the build itself
// is scripts/package.sh). It has no code: its tests build both packages and
// check what they install, where, and with which permissions.
package packaging
