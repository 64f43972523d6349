#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# kybernated restores from a registry image itself (issue 10, items 3 and 4):
# a Resolve whose reference is an image (what the shim sends for
# RESTORE_FROM=<image>, here through `kybernatectl resolve`) pulls it into the
# catalog once and resolves it as a local checkpoint, under the node's
# pull_allow rules and the tenant rule. Two "nodes" on one machine and a
# private registry (TLS from a test CA, htpasswd auth), as in
# registry-push-pull.sh: a busybox counter run with runc is checkpointed on A
# and pushed; B (pull_allow for the repository and the namespace) resolves the
# image, runc restores from the path it answers and the count goes on; a
# second resolve by the digest pulls nothing (one row, no blob fetched again,
# "cached" in B's log). Refusals, each leaving no row and no staging files:
# pulling off (no pull_allow), a repository no rule allows (before any
# network access), a namespace the rule does not list, the image's own
# namespace not the target's (tenant rule: in its annotations, in its
# metadata, each checked on its own), a truncated layer, a manifest with too
# many annotations, bad credentials, an image that is
# no checkpoint, a client gone mid-pull; and a configuration with a bad rule
# does not start.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/registry.sh
. "$(dirname "$0")/../lib/registry.sh"

require_root
require_cmd runc criu busybox jq
require_build kybernated kybernatectl
kyb_registry_start

N=dpull
NS=$N-ns
ID=$N-counter
REGOPTS=(--authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR")
SKOPEO=(skopeo --insecure-policy)

AUTH=("registry_authfile = $REG_AUTHFILE" "registry_cert_dir = $REG_CERT_DIR")
kyb_daemon_node_start a
kyb_daemon_node_start b "pull_allow = $REG/ckpt=$NS,other-ns $REG/plain=$NS" "${AUTH[@]}"
kyb_daemon_node_start off "${AUTH[@]}"
bad_auth=$KYB_TMP/bad-auth.json
jq --arg r "$REG" '.auths[$r].auth = ("'"$REG_USER"':wrong" | @base64)' "$REG_AUTHFILE" >"$bad_auth"
kyb_daemon_node_start badauth "pull_allow = $REG/ckpt=$NS" "registry_authfile = $bad_auth" "registry_cert_dir = $REG_CERT_DIR"
A=("$BUILD/kybernatectl" --socket "$KYB_TMP/node-a/sock")
B=("$BUILD/kybernatectl" --socket "$KYB_TMP/node-b/sock")
OFF=("$BUILD/kybernatectl" --socket "$KYB_TMP/node-off/sock")
BADAUTH=("$BUILD/kybernatectl" --socket "$KYB_TMP/node-badauth/sock")
RUNC_B=$KYB_TMP/node-b/runc/$NS

# A bad rule is a configuration error that says why.
printf 'pull_allow = %s/ckpt\n' "$REG" >"$KYB_TMP/bad.conf"
rc=0
out=$(timeout 10 "$BUILD/kybernated" --config "$KYB_TMP/bad.conf" --store "$KYB_TMP/bad-store" \
	--socket "$KYB_TMP/bad.sock" 2>&1) || rc=$?
expect_ne "kybernated refuses a bad pull_allow rule" 0 "$rc"
expect_contains "the bad rule's message names pull_allow" "$out" "pull_allow rule is REPOSITORY_PREFIX=NAMESPACES"

# ---- node A: a counter, checkpointed with --exit, pushed ------------------------

bundle=$KYB_TMP/bundle
kyb_daemon_node_counter_checkpoint a "$bundle" "$ID" "$KYB_TMP/out.log"
IMG=$REG/ckpt/counter
DIGEST=$("${A[@]}" push -q "${REGOPTS[@]}" "$CKPT" "$IMG:v1" 2>"$KYB_TMP/push.err") ||
	die "push to the registry failed: $(cat "$KYB_TMP/push.err")"
[[ $DIGEST =~ ^sha256:[0-9a-f]{64}$ ]] || die "push printed no digest: $DIGEST"

# An image that is no checkpoint (the busybox test image), where B may pull from.
kyb_oci_layout "$KYB_TMP/busybox-layout"
"${SKOPEO[@]}" copy -q --authfile "$REG_AUTHFILE" --dest-cert-dir "$REG_CERT_DIR" \
	"oci:$KYB_TMP/busybox-layout" "docker://$REG/plain/busybox:v1"

# ---- node B: refusals first, each leaving nothing behind ------------------------

blob_gets() { grep -c "GET /v2/ckpt/counter/blobs/" "$REG_LOG" || true; }
expect_eq "node B starts empty" 0 "$(kyb_daemon_node_rows b)"

gets0=$(blob_gets)
kyb_expect_refused off "pulling off (no pull_allow)" "pulling is off on this node (no pull_allow rule" \
	"${OFF[@]}" resolve "$IMG:v1" --namespace "$NS" --container-id "$ID"
expect_contains "the refusal names the repository and the namespace" \
	"$("${OFF[@]}" resolve "$IMG:v1" --namespace "$NS" --container-id "$ID" 2>&1 || true)" \
	"repository $IMG into namespace $NS"
kyb_expect_refused b "repository not allowed" "no pull_allow rule allows it" \
	"${B[@]}" resolve "$REG/elsewhere/counter:v1" --namespace "$NS" --container-id "$ID"
# A rule must match whole path components.
kyb_expect_refused b "repository prefix of another component" "no pull_allow rule allows it" \
	"${B[@]}" resolve "$REG/ckpt-other/counter:v1" --namespace "$NS" --container-id "$ID"
# Refused before any network access: a host that does not resolve is never asked.
kyb_expect_refused b "repository not allowed, no network" "no pull_allow rule allows it" \
	"${B[@]}" resolve "unreachable.invalid/ckpt/x:v1" --namespace "$NS" --container-id "$ID"
kyb_expect_refused b "namespace not allowed" "into namespace third-ns refused" \
	"${B[@]}" resolve "$IMG:v1" --namespace third-ns --container-id "$ID"
expect_eq "no refusal so far fetched a blob" "$gets0" "$(blob_gets)"
kyb_expect_refused b "the image's namespace annotation is not the target's (tenant rule)" \
	"containerd namespace annotation differs" \
	"${B[@]}" resolve "$IMG:v1" --namespace other-ns --container-id "$ID"
# tamper TAG JQ [LAYER]: a copy of $IMG:v1 whose manifest JQ rewrites (and
# whose layer is the file LAYER, if given), with every digest made right for
# it, pushed as $IMG-TAG:v1: what a hostile registry or pusher serves.
tamper() {
	local t=$KYB_TMP/tamper-$1 m d
	"${SKOPEO[@]}" copy -q --authfile "$REG_AUTHFILE" --src-cert-dir "$REG_CERT_DIR" \
		"docker://$IMG:v1" "oci:$t" || die "copy of the image into a layout failed"
	m=$(jq -r '.manifests[0].digest' "$t/index.json")
	if [ -n "${3:-}" ]; then
		d=$(sha256sum "$3" | cut -d' ' -f1)
		cp "$3" "$t/blobs/sha256/$d"
		jq -c --arg d "sha256:$d" --argjson n "$(stat -c %s "$3")" '.layers[0].digest = $d | .layers[0].size = $n' \
			"$t/blobs/sha256/${m#sha256:}" >"$KYB_TMP/manifest.json"
	else
		cp "$t/blobs/sha256/${m#sha256:}" "$KYB_TMP/manifest.json"
	fi
	jq -c "$2" "$KYB_TMP/manifest.json" >"$KYB_TMP/manifest2.json"
	d=$(sha256sum "$KYB_TMP/manifest2.json" | cut -d' ' -f1)
	mv "$KYB_TMP/manifest2.json" "$t/blobs/sha256/$d"
	jq --arg d "sha256:$d" --argjson n "$(stat -c %s "$t/blobs/sha256/$d")" \
		'.manifests[0].digest = $d | .manifests[0].size = $n' "$t/index.json" >"$KYB_TMP/index.json"
	mv "$KYB_TMP/index.json" "$t/index.json"
	"${SKOPEO[@]}" copy -q --preserve-digests --authfile "$REG_AUTHFILE" --dest-cert-dir "$REG_CERT_DIR" \
		"oci:$t" "docker://$IMG-$1:v1" || die "push of the tampered image $1 failed"
}
# The same image with its namespace annotation rewritten to other-ns (a new
# manifest, so a new digest): the annotations and the metadata in the layer
# now disagree, and each is checked on its own, whichever was tampered with.
tamper tampered '.annotations["io.kybernate.checkpoint.containerd-namespace"] = "other-ns"'
kyb_expect_refused b "annotations say the target's namespace, the metadata another (tenant rule)" \
	"containerd namespace differs from the checkpoint's" \
	"${B[@]}" resolve "$IMG-tampered:v1" --namespace other-ns --container-id "$ID"
kyb_expect_refused b "the metadata says the target's namespace, the annotations another (tenant rule)" \
	"namespace annotation differs" \
	"${B[@]}" resolve "$IMG-tampered:v1" --namespace "$NS" --container-id "$ID"
# A layer cut short (its digest made right for the cut bytes), and a manifest
# with more annotations than the reader takes.
layer=$(jq -r '.layers[0].digest' "$KYB_TMP/tamper-tampered/blobs/sha256/$(jq -r '.manifests[0].digest' "$KYB_TMP/tamper-tampered/index.json" | cut -d: -f2)")
blob=$KYB_TMP/tamper-tampered/blobs/sha256/${layer#sha256:}
head -c $(($(stat -c %s "$blob") / 2)) "$blob" >"$KYB_TMP/cut-layer"
tamper cut . "$KYB_TMP/cut-layer"
kyb_expect_refused b "a truncated layer" "it is truncated or not a (compressed) tar archive" \
	"${B[@]}" resolve "$IMG-cut:v1" --namespace "$NS" --container-id "$ID"
# An image whose content checksum annotation is not its content's (a
# checkpoint damaged before it was pushed): refused after the unpack, no row.
tamper badsum '.annotations["io.kybernate.checkpoint.checksum"] = "sha256:" + ("0" * 64)'
kyb_expect_refused b "a content checksum annotation its content does not have" \
	"its annotation io.kybernate.checkpoint.checksum says sha256:000" \
	"${B[@]}" resolve "$IMG-badsum:v1" --namespace "$NS" --container-id "$ID"
tamper many '.annotations += ([range(300)] | map({key: "io.kybernate.test.a\(.)", value: "x"}) | from_entries)'
kyb_expect_refused b "a manifest with 300 more annotations" "more than the limit of 256" \
	"${B[@]}" resolve "$IMG-many:v1" --namespace "$NS" --container-id "$ID"
kyb_expect_refused badauth "bad credentials" "unauthorized" \
	"${BADAUTH[@]}" resolve "$IMG:v1" --namespace "$NS" --container-id "$ID"
kyb_expect_refused b "not a checkpoint image" "not a checkpoint image" \
	"${B[@]}" resolve "$REG/plain/busybox:v1" --namespace "$NS" --container-id "$ID"
kyb_expect_refused b "a digest the registry does not have" "failed" \
	"${B[@]}" resolve "$IMG@sha256:0000000000000000000000000000000000000000000000000000000000000000" \
	--namespace "$NS" --container-id "$ID"

# A client that goes away mid-pull: the pull child (and skopeo with it) is
# killed, the staging files removed, no row made, and the daemon serves on.
# Node "slow" finds a skopeo that waits 30 s first (a read on a FIFO: no
# child process of its own) before it runs the real one.
mkdir -p "$KYB_TMP/slowbin"
mkfifo "$KYB_TMP/slow.fifo"
printf '#!/bin/bash\nread -r -t 30 <>"%s" || true\nexec %s "$@"\n' "$KYB_TMP/slow.fifo" "$(command -v skopeo)" \
	>"$KYB_TMP/slowbin/skopeo"
chmod +x "$KYB_TMP/slowbin/skopeo"
PATH=$KYB_TMP/slowbin:$PATH kyb_daemon_node_start slow "pull_allow = $REG/ckpt=$NS" "${AUTH[@]}"
rc=0
timeout -s KILL 2 "$BUILD/kybernatectl" --socket "$KYB_TMP/node-slow/sock" resolve "$IMG:v1" --namespace "$NS" \
	--container-id "$ID" >/dev/null 2>&1 || rc=$?
expect_eq "the client was killed mid-pull" 137 "$rc"
kyb_wait 10 grep -q "Pull of $IMG:v1 cancelled: the client went away" "$KYB_TMP/node-slow/kybernated.log" &&
	pass "a client gone mid-pull cancels it" || fail "a client gone mid-pull cancels it"
# ([s]: the pattern must not match the command line of whoever runs pgrep)
no_slow_skopeo() { ! pgrep -f "$KYB_TMP/slowbin/[s]kopeo" >/dev/null; }
kyb_wait 10 no_slow_skopeo &&
	pass "no skopeo left running" || fail "no skopeo left running" "$(pgrep -a -f "$KYB_TMP/slowbin/[s]kopeo")"
expect_eq "cancelled pull: no row" 0 "$(kyb_daemon_node_rows slow)"
kyb_daemon_node_store_clean slow && pass "cancelled pull: nothing left in the store" || fail "cancelled pull: nothing left in the store"
expect_ok "the daemon serves on after the cancelled pull" "$BUILD/kybernatectl" --socket "$KYB_TMP/node-slow/sock" status

# ---- node B: resolve by tag pulls, runc restores ----------------------------------

# Three restores of the same new image at once (a Deployment's replicas
# landing on one node): one pull, the others wait for it and take its row.
gets_before=$(blob_gets)
for i in 1 2 3; do
	"${B[@]}" resolve "$IMG:v1" --namespace "$NS" --container-id "$ID" --json \
		>"$KYB_TMP/resolve-$i.out" 2>"$KYB_TMP/resolve-$i.err" &
done
rc=0
for i in 1 2 3; do wait -n || rc=$?; done
expect_eq "three resolves of the same image at once all succeed" 0 "$rc"
out=$(cat "$KYB_TMP/resolve-1.out")
[ -n "$out" ] || fail "resolve of the image on node B" "$(cat "$KYB_TMP/resolve-1.err")"
p=$(jq -r .image_path <<<"$out")
expect_eq "... all three answer the same path" "$p $p" \
	"$(jq -r .image_path "$KYB_TMP/resolve-2.out") $(jq -r .image_path "$KYB_TMP/resolve-3.out")"
expect_eq "... and the image's two blobs (config, layer) were fetched once" 2 "$(($(blob_gets) - gets_before))"
expect_contains "... the later requests waited for the pull under way" \
	"$(cat "$KYB_TMP/node-b/kybernated.log")" "is being pulled for another request already: waiting for it"
expect_match "resolve answers an image path in B's store" "^$KYB_TMP/node-b/store/checkpoints/[0-9a-f]{32}/checkpoint\$" "$p"
expect_eq "B has the pulled checkpoint as one row" 1 "$(kyb_daemon_node_rows b)"
j=$("${B[@]}" list --json)
expect_eq "the row records its source image by digest" "$IMG@$DIGEST" "$(jq -r '.[0].source_image' <<<"$j")"
expect_eq "the pulled copy has node A's checksum" "$SUM" "$(jq -r '.[0].checksum' <<<"$j")"
expect_eq "the pulled copy keeps the container's identity" "$NS $ID" \
	"$(jq -r '.[0] | "\(.containerd_namespace) \(.container_id)"' <<<"$j")"
expect_contains "inspect shows where it was pulled from" "$("${B[@]}" inspect "$(jq -r '.[0].id' <<<"$j")")" \
	"Pulled from:"
kyb_daemon_node_store_clean b && pass "no staging leftovers after the pull" || fail "no staging leftovers after the pull"
# kybernated logs each step of the pull, with its bytes and rate.
log_b=$(cat "$KYB_TMP/node-b/kybernated.log")
expect_match "the daemon logs the resolve with the digest" "Resolved $IMG:v1 to $DIGEST in [0-9.]+ s" "$log_b"
expect_match "the daemon logs the fetch with bytes and rate" \
	"Fetched, verified and unpacked $IMG@$DIGEST: [1-9][0-9]* bytes in [0-9.]+ s \([0-9.]+ MiB/s\)" "$log_b"
expect_match "the daemon logs the adoption with bytes and rate" \
	"Pulled $IMG@$DIGEST as checkpoint $(jq -r '.[0].id' <<<"$j") \([1-9][0-9]* bytes, checksum in [0-9.]+ s, [0-9.]+ MiB/s\)" \
	"$log_b"

kyb_expect_counter_restored "runc restore on node B from the path kybernated resolved the image to" \
	"$RUNC_B" "$bundle" "$ID" "$p" "$KYB_TMP/out2.log" "$((LAST + 1))"

# ---- once: by digest, the row is used ------------------------------------------

gets1=$(blob_gets)
out2=$("${B[@]}" resolve "$IMG@$DIGEST" --namespace "$NS" --container-id "$ID" -q 2>&1) ||
	fail "resolve by digest on node B" "$out2"
expect_eq "resolve by digest answers the same path" "$p" "$out2"
expect_eq "still one row" 1 "$(kyb_daemon_node_rows b)"
expect_eq "no blob fetched again" "$gets1" "$(blob_gets)"
expect_contains "the daemon says it used the cached row" "$(cat "$KYB_TMP/node-b/kybernated.log")" "cached, not pulled again"
# The tenant rule holds for the cached row too.
kyb_expect_refused b "the cached row for another namespace (tenant rule)" "tenant rule" \
	"${B[@]}" resolve "$IMG@$DIGEST" --namespace other-ns --container-id "$ID"

kyb_finish
