#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Checkpoint images through a registry with bearer-token auth (issue 10, item
# 2), the flow of Harbor, GHCR, Docker Hub and GitLab: the private registry of
# tests/lib/registry.sh in token mode (auth: token:, its realm a token server
# on loopback over TLS with the test CA; the registry itself refuses basic
# credentials). The protocol first, with curl: the Bearer challenge, a token
# for the right credentials that the registry accepts, 401 for wrong ones, a
# token with a changed signature refused. Then a busybox counter run with runc
# is checkpointed on node A and `kybernatectl push`ed, and node B
# `kybernatectl pull`s it (checksum as on A), with the credentials
#   (a) in a containers auth.json (a repository-scoped key, which only that
#       format has) named by --authfile;
#   (b) in a Docker config.json, $HOME/.docker/config.json, with no --authfile
#       (skopeo's own search: $REGISTRY_AUTH_FILE unset, nothing in
#       $XDG_RUNTIME_DIR/containers/auth.json or ~/.config/containers/auth.json),
#       and after an --authfile that has no entry for the registry (skopeo 1.9);
#   (c) kybernated with no registry_authfile pulls a RESTORE_FROM image
#       (kybernatectl resolve) with its own $HOME/.docker/config.json.
# The token server's log shows a token issued for each (pull and push scopes:
# the bearer path was taken). Wrong or missing credentials, in either format,
# for push, pull and kybernated's pull, are refused with the token server's
# 401 in the message, logged as refused, and leave nothing in the store.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/registry.sh
. "$(dirname "$0")/../lib/registry.sh"

require_root
require_cmd runc criu busybox jq base64 python3 openssl curl
require_build kybernated kybernatectl
kyb_registry_start token

N=reg-tok
NS=$N-ns
ID=$N-counter
CRIU=$(command -v criu)
IMG=$REG/ckpt/counter
CERT=(--cert-dir "$REG_CERT_DIR")

# Credentials only where a case puts them: no $REGISTRY_AUTH_FILE (skopeo's
# default for --authfile), an empty home, an XDG_RUNTIME_DIR of our own (for
# root without it skopeo reads /run/containers/0/auth.json first).
unset REGISTRY_AUTH_FILE DOCKER_CONFIG XDG_CONFIG_HOME
export HOME=$KYB_TMP/home-empty XDG_RUNTIME_DIR=$KYB_TMP/xdg-run
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"

b64() { printf '%s' "$1" | base64 -w0; }
GOOD=$(b64 "$REG_USER:$REG_PASS")
BAD=$(b64 "$REG_USER:wrong-$REG_PASS")
# A containers auth.json whose one key is the repository namespace $REG/ckpt.
containers_auth() { jq -n --arg k "$REG/ckpt" --arg a "$1" '{auths: {($k): {auth: $a}}}' >"$2"; }
# docker_home DIR AUTH: DIR/.docker/config.json as `docker login` writes it.
docker_home() {
	mkdir -p "$1/.docker"
	jq -n --arg k "$REG" --arg a "$2" '{auths: {($k): {auth: $a}}}' >"$1/.docker/config.json"
}
containers_auth "$GOOD" "$KYB_TMP/auth.json"
containers_auth "$BAD" "$KYB_TMP/bad-auth.json"
docker_home "$KYB_TMP/home-docker" "$GOOD"
docker_home "$KYB_TMP/home-docker-bad" "$BAD"

# issued SCOPE: how many tokens the token server issued to our user for SCOPE.
issued() { grep -c -F "issued token to $REG_USER for $1" "$REG_TOKEN_LOG" || true; }
refusals() { grep -c "refused: " "$REG_TOKEN_LOG" || true; }
TOKEN_MSG="token server: invalid username or password"

# ---- the protocol, with curl ------------------------------------------------------

h=$(curl -s -D - -o /dev/null --cacert "$REG_CA" "https://$REG/v2/" | tr -d '\r')
expect_contains "/v2/ challenges for a bearer token at the realm" "$h" \
	"Bearer realm=\"$REG_TOKEN_URL\",service=\"$REG_TOKEN_SERVICE\""
expect_eq "the registry refuses basic credentials" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REG_CA" -u "$REG_USER:$REG_PASS" "https://$REG/v2/")"
q="service=$REG_TOKEN_SERVICE&scope=repository:ckpt/counter:pull"
expect_eq "the token server: 401 for a wrong password" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REG_CA" -u "$REG_USER:wrong" "$REG_TOKEN_URL?$q")"
expect_eq "the token server: 401 without credentials" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REG_CA" "$REG_TOKEN_URL?$q")"
tok=$(curl -s --cacert "$REG_CA" -u "$REG_USER:$REG_PASS" "$REG_TOKEN_URL?$q" | jq -r .token)
claims=$(cut -d. -f2 <<<"$tok" | tr '_-' '/+' | awk '{ while (length($0) % 4) $0 = $0 "="; print }' | base64 -d)
expect_eq "the token grants the scope asked for" '[{"type":"repository","name":"ckpt/counter","actions":["pull"]}]' \
	"$(jq -c .access <<<"$claims")"
expect_eq "the registry accepts the token" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REG_CA" -H "Authorization: Bearer $tok" "https://$REG/v2/")"
# One character of the signature changed (not the last: its low bits are padding).
sig=${tok##*.}
c=${sig:20:1}
[ "$c" = A ] && c=B || c=A
forged=${tok%.*}.${sig:0:20}$c${sig:21}
expect_eq "the registry refuses a token whose signature does not verify" 401 \
	"$(curl -s -o /dev/null -w '%{http_code}' --cacert "$REG_CA" -H "Authorization: Bearer $forged" "https://$REG/v2/")"

# ---- nodes, a checkpoint on A ------------------------------------------------------

# start_node X [CONFIG LINES]: kybernated with a store, socket, runc root base
# and configuration file of its own (in this script's environment).
start_node() {
	local d=$KYB_TMP/node-$1
	mkdir -p "$d/store" "$d/runc/$NS"
	printf '%s\n' "${@:2}" >"$d/kybernated.conf"
	"$BUILD/kybernated" --config "$d/kybernated.conf" --store "$d/store" --socket "$d/sock" \
		--runc-root-base "$d/runc" --criu "$CRIU" >"$d/kybernated.log" 2>&1 &
	local pid=$!
	kyb_on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null; sed 's/^/  kybernated $1: /' '$d/kybernated.log' | tail -n 15"
	kyb_wait 10 "$BUILD/kybernatectl" --socket "$d/sock" status || die "kybernated $1 did not come up"
}
start_node a
start_node b
# Nodes pulling RESTORE_FROM images with no registry_authfile: each finds the
# credentials in its own $HOME/.docker/config.json.
SVC_CONF=("pull_allow = $REG/ckpt=$NS" "registry_cert_dir = $REG_CERT_DIR")
HOME=$KYB_TMP/home-docker start_node svc "${SVC_CONF[@]}"
HOME=$KYB_TMP/home-docker-bad start_node svcbad "${SVC_CONF[@]}"
A=("$BUILD/kybernatectl" --socket "$KYB_TMP/node-a/sock")
B=("$BUILD/kybernatectl" --socket "$KYB_TMP/node-b/sock")
SVC=("$BUILD/kybernatectl" --socket "$KYB_TMP/node-svc/sock")
SVCBAD=("$BUILD/kybernatectl" --socket "$KYB_TMP/node-svcbad/sock")

bundle=$KYB_TMP/bundle
mkdir -p "$bundle/rootfs"
kyb_rootfs_build "$bundle/rootfs"
kyb_runc_counter "$KYB_TMP/node-a/runc/$NS" "$bundle" "$ID" "$KYB_TMP/out.log"
CKPT=$("${A[@]}" checkpoint -q --exit "$NS/$ID" 2>&1 | tail -n 1)
[[ $CKPT =~ ^[0-9a-f]{32}$ ]] || die "checkpoint on node A failed: $CKPT"
SUM=$("${A[@]}" inspect "$CKPT" --json | jq -r .checkpoint.checksum)

rows() { "$BUILD/kybernatectl" --socket "$KYB_TMP/node-$1/sock" list --json | jq length; }
store_clean() { # no staging leftovers and one directory per row in the node's store
	local s=$KYB_TMP/node-$1/store
	[ -z "$(ls -A "$s/staging" 2>/dev/null)" ] &&
		[ "$(ls "$s/checkpoints" 2>/dev/null | wc -l)" = "$(rows "$1")" ]
}
# pulled NAME ID: the checkpoint ID on node B is node A's, by its checksum.
pulled() {
	expect_match "$1: pull prints the new checkpoint id" '^[0-9a-f]{32}$' "$2"
	expect_eq "$1: the pulled copy has node A's checksum" "$SUM" \
		"$("${B[@]}" inspect "$2" --json 2>/dev/null | jq -r .checkpoint.checksum)"
}
# refused NODE NAME CMD...: CMD fails with the token server's 401 in its
# message, the token server logged a refusal, and the node's store is as before.
refused() {
	local node=$1 name=$2 out rc=0 before r0
	shift 2
	before=$(rows "$node") r0=$(refusals)
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		fail "$name: refused" "$out"
		return
	fi
	expect_contains "$name: refused with the token server's 401" "$out" "$TOKEN_MSG"
	expect_contains "$name: ... as skopeo words it" "$out" "unable to retrieve auth token: invalid username/password"
	expect_ne "$name: the token server logged the refusal" "$r0" "$(refusals)"
	expect_eq "$name: no row added" "$before" "$(rows "$node")"
	store_clean "$node" && pass "$name: nothing left in the store" || fail "$name: nothing left in the store"
}

# ---- (a) a containers auth.json, --authfile ----------------------------------------

PUSH_SCOPE=repository:ckpt/counter:pull,push
PULL_SCOPE=repository:ckpt/counter:pull
n0=$(issued "$PUSH_SCOPE")
out=$("${A[@]}" push -q --authfile "$KYB_TMP/auth.json" "${CERT[@]}" "$CKPT" "$IMG:v1" 2>&1) ||
	fail "auth.json: push" "$out"
expect_match "auth.json: push prints the image digest" '^sha256:[0-9a-f]{64}$' "$out"
expect_ne "auth.json: push took a token for pull and push" "$n0" "$(issued "$PUSH_SCOPE")"
n0=$(issued "$PULL_SCOPE")
out=$("${B[@]}" pull -q --authfile "$KYB_TMP/auth.json" "${CERT[@]}" "$IMG:v1" 2>&1) ||
	fail "auth.json: pull" "$out"
pulled "auth.json" "$(tail -n 1 <<<"$out")"
expect_ne "auth.json: pull took a token for pull" "$n0" "$(issued "$PULL_SCOPE")"

refused b "auth.json, wrong password: pull" \
	"${B[@]}" pull --authfile "$KYB_TMP/bad-auth.json" "${CERT[@]}" "$IMG:v1"
refused a "auth.json, wrong password: push" \
	"${A[@]}" push --authfile "$KYB_TMP/bad-auth.json" "${CERT[@]}" "$CKPT" "$IMG:v9"

# ---- (b) a Docker config.json in $HOME, no --authfile ------------------------------

refused b "no credentials anywhere: pull" "${B[@]}" pull "${CERT[@]}" "$IMG:v1"
n0=$(issued "$PUSH_SCOPE")
out=$(HOME=$KYB_TMP/home-docker "${A[@]}" push -q "${CERT[@]}" "$CKPT" "$IMG:v2" 2>&1) ||
	fail "docker config.json: push" "$out"
expect_match "docker config.json: push prints the image digest" '^sha256:[0-9a-f]{64}$' "$out"
expect_ne "docker config.json: push took a token for pull and push" "$n0" "$(issued "$PUSH_SCOPE")"
n0=$(issued "$PULL_SCOPE")
out=$(HOME=$KYB_TMP/home-docker "${B[@]}" pull -q "${CERT[@]}" "$IMG:v2" 2>&1) ||
	fail "docker config.json: pull" "$out"
pulled "docker config.json" "$(tail -n 1 <<<"$out")"
expect_ne "docker config.json: pull took a token for pull" "$n0" "$(issued "$PULL_SCOPE")"

# skopeo 1.9 (containers/image 5.23) reads the default files after an
# --authfile that has no entry for the registry (docs/CROSS_NODE.md says so).
echo '{"auths": {}}' >"$KYB_TMP/empty-auth.json"
out=$(HOME=$KYB_TMP/home-docker "${B[@]}" pull -q --authfile "$KYB_TMP/empty-auth.json" "${CERT[@]}" "$IMG:v2" 2>&1) ||
	fail "an --authfile without the registry: \$HOME/.docker/config.json is still read" "$out"
pulled "an --authfile without the registry" "$(tail -n 1 <<<"$out")"

refused b "docker config.json, wrong password: pull" \
	env HOME="$KYB_TMP/home-docker-bad" "${B[@]}" pull "${CERT[@]}" "$IMG:v2"
refused a "docker config.json, wrong password: push" \
	env HOME="$KYB_TMP/home-docker-bad" "${A[@]}" push "${CERT[@]}" "$CKPT" "$IMG:v9"

# ---- (c) kybernated pulls a RESTORE_FROM image with its $HOME/.docker/config.json ----

refused svcbad "kybernated, docker config.json with a wrong password" \
	"${SVCBAD[@]}" resolve "$IMG:v2" --namespace "$NS" --container-id "$ID"
n0=$(issued "$PULL_SCOPE")
out=$("${SVC[@]}" resolve "$IMG:v2" --namespace "$NS" --container-id "$ID" --json 2>&1) ||
	fail "kybernated, docker config.json: the image is pulled and resolved" "$out"
expect_match "kybernated, docker config.json: resolve answers a path in its store" \
	"^$KYB_TMP/node-svc/store/checkpoints/[0-9a-f]{32}/checkpoint\$" "$(jq -r .image_path <<<"$out" 2>/dev/null)"
expect_eq "kybernated, docker config.json: the pulled copy has node A's checksum" "$SUM" \
	"$("${SVC[@]}" list --json | jq -r '.[0].checksum')"
expect_ne "kybernated, docker config.json: its pull took a token" "$n0" "$(issued "$PULL_SCOPE")"

kyb_finish
