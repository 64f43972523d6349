#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# push_to (issue 10, item 3): a kybernated configured with
# `push_to = REGISTRY/REPOSITORY` pushes every checkpoint it takes there as
# REPOSITORY:<checkpoint id>, in the background, and a node that does not
# have a checkpoint resolves its id by pulling that image (under its
# pull_allow rules and the tenant rule). Two "nodes" on one machine and a
# private registry (TLS from a test CA, htpasswd auth), as in daemon-pull.sh:
#   - a busybox counter run with runc on A is checkpointed; A pushes it by
#     itself, `skopeo inspect` shows the tag <id> with our annotations, and
#     inspect/list --json on A say where it went;
#   - B (pull_allow for the repository) resolves the bare id: it pulls it,
#     runc restores from the path it answers and the count goes on; B never
#     pushes its pulled copy; a second resolve uses the row;
#   - refusals leave no row: an id the registry does not have ("not found"
#     as without push_to), a node whose pull_allow does not allow the
#     repository, the tenant rule;
#   - A killed mid-push (a skopeo that waits) and started again: the
#     checkpoint ends up pushed, no skopeo left, nothing left in staging;
#   - registry down: the checkpoint is ready and restorable on A, the failure
#     logged, the push pending; registry and A started again: pushed.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/registry.sh
. "$(dirname "$0")/../lib/registry.sh"

require_root
require_cmd runc criu busybox jq
require_build kybernated kybernatectl
kyb_registry_start

N=dpush
NS=$N-ns
ID=$N-counter
ID2=$N-counter2
SKOPEO=(skopeo --insecure-policy)
REGOPTS=(--authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR")
REPO=$REG/ckpt/$N
AUTH=("registry_authfile = $REG_AUTHFILE" "registry_cert_dir = $REG_CERT_DIR")

# A's skopeo waits (a read on a FIFO, at most 60 s) before a copy while
# $SLOW exists: a push that is still running when the test kills kybernated.
SLOW=$KYB_TMP/slow
mkdir -p "$KYB_TMP/abin"
mkfifo "$KYB_TMP/slow.fifo"
printf '#!/bin/bash\nif [ "$2" = copy ] && [ -e "%s" ]; then read -r -t 60 <>"%s" || true; fi\nexec %s "$@"\n' \
	"$SLOW" "$KYB_TMP/slow.fifo" "$(command -v skopeo)" >"$KYB_TMP/abin/skopeo"
chmod +x "$KYB_TMP/abin/skopeo"

A_CONF=("push_to = $REPO" "${AUTH[@]}")
start_a() { PATH=$KYB_TMP/abin:$PATH kyb_daemon_node_start a "${A_CONF[@]}"; }
start_a
A_PID=$KYB_NODE_PID
kyb_daemon_node_start b "push_to = $REPO" "pull_allow = $REG/ckpt=$NS,other-ns" "${AUTH[@]}"
kyb_daemon_node_start c "push_to = $REPO" "pull_allow = $REG/elsewhere=$NS" "${AUTH[@]}"
A=("$BUILD/kybernatectl" --socket "$KYB_TMP/node-a/sock")
B=("$BUILD/kybernatectl" --socket "$KYB_TMP/node-b/sock")
C=("$BUILD/kybernatectl" --socket "$KYB_TMP/node-c/sock")
RUNC_A=$KYB_TMP/node-a/runc/$NS
RUNC_B=$KYB_TMP/node-b/runc/$NS

# A tag or digest in push_to is a configuration error that says why.
printf 'push_to = %s:v1\n' "$REPO" >"$KYB_TMP/bad.conf"
rc=0
out=$(timeout 10 "$BUILD/kybernated" --config "$KYB_TMP/bad.conf" --store "$KYB_TMP/bad-store" \
	--socket "$KYB_TMP/bad.sock" 2>&1) || rc=$?
expect_ne "kybernated refuses a push_to with a tag" 0 "$rc"
expect_contains "the message names push_to" "$out" "push_to is HOST[:PORT]/REPOSITORY"

pushed_image() { "${A[@]}" inspect "$1" --json | jq -r '.checkpoint.pushed_image // empty'; }
is_pushed() { [ -n "$(pushed_image "$1")" ]; }
tags() { "${SKOPEO[@]}" list-tags "${REGOPTS[@]}" "docker://$REPO" | jq -r '.Tags | sort | join(" ")'; }
remote_digest() { "${SKOPEO[@]}" inspect "${REGOPTS[@]}" "docker://$REPO:$1" | jq -r .Digest; }
# expect_pushed NAME ID: within 60 s node A records checkpoint ID as pushed,
# and the registry's tag ID has the digest it recorded.
expect_pushed() {
	kyb_wait 60 is_pushed "$2" && pass "$1" || fail "$1" "$(tail -n 5 "$KYB_TMP/node-a/kybernated.log")"
	expect_eq "$1: the registry has the tag $2, of the recorded digest" "$(pushed_image "$2" | sed 's/.*@//')" \
		"$(remote_digest "$2")"
}

# ---- node A: a checkpoint is pushed by itself -------------------------------------

bundle=$KYB_TMP/bundle
kyb_daemon_node_counter_checkpoint a "$bundle" "$ID" "$KYB_TMP/out.log"

expect_pushed "node A pushed the checkpoint by itself" "$CKPT"
PUSHED=$(pushed_image "$CKPT")
expect_match "pushed_image is push_to:<id>@digest" "^$REPO:$CKPT@sha256:[0-9a-f]{64}\$" "$PUSHED"
DIGEST=${PUSHED#*@}
raw=$("${SKOPEO[@]}" inspect --raw "${REGOPTS[@]}" "docker://$REPO:$CKPT")
expect_eq "the image carries our checkpoint id annotation" "$CKPT" \
	"$(jq -r '.annotations["io.kybernate.checkpoint.id"]' <<<"$raw")"
expect_eq "the image carries our checksum annotation" "$SUM" \
	"$(jq -r '.annotations["io.kybernate.checkpoint.checksum"]' <<<"$raw")"
expect_eq "the image carries CRI-O's detection key" "$ID" \
	"$(jq -r '.annotations["io.kubernetes.cri-o.annotations.checkpoint.name"]' <<<"$raw")"
expect_eq "list --json shows where it went" "$PUSHED" \
	"$("${A[@]}" list --json | jq -r --arg id "$CKPT" '.[] | select(.id == $id) | .pushed_image')"
expect_eq "no push pending once pushed" "null" \
	"$("${A[@]}" inspect "$CKPT" --json | jq -r .checkpoint.push_pending)"
expect_contains "inspect shows where it was pushed" "$("${A[@]}" inspect "$CKPT")" "Pushed to:"
kyb_daemon_node_store_clean a && pass "node A: no staging leftovers after the push" || fail "node A: no staging leftovers after the push"

# ---- refusals: no row, nothing left --------------------------------------------

expect_eq "node B starts empty" 0 "$(kyb_daemon_node_rows b)"
UNKNOWN=0123456789abcdef0123456789abcdef
kyb_expect_refused b "an id the registry does not have" "no checkpoint with id, id prefix or name '$UNKNOWN'" \
	"${B[@]}" resolve "$UNKNOWN" --namespace "$NS" --container-id "$ID"
kyb_expect_refused b "an id the registry does not have, it was asked" "not in the registry either" \
	"${B[@]}" resolve "$UNKNOWN" --namespace "$NS" --container-id "$ID"
kyb_expect_refused a "a node that pulls nothing answers 'not found' as without push_to" "no checkpoint with id" \
	"${A[@]}" resolve "$UNKNOWN" --namespace "$NS" --container-id "$ID"
kyb_expect_refused c "push_to repository not allowed by pull_allow" "no pull_allow rule allows it" \
	"${C[@]}" resolve "$CKPT" --namespace "$NS" --container-id "$ID"
kyb_expect_refused b "the image's own namespace is not the target's (tenant rule)" "tenant rule" \
	"${B[@]}" resolve "$CKPT" --namespace other-ns --container-id "$ID"

# ---- node B: resolve by the id pulls, runc restores -------------------------------

out=$("${B[@]}" resolve "$CKPT" --namespace "$NS" --container-id "$ID" --json 2>"$KYB_TMP/resolve.err") ||
	fail "resolve of the id on node B" "$(cat "$KYB_TMP/resolve.err")"
p=$(jq -r .image_path <<<"$out")
expect_match "resolve answers an image path in B's store" "^$KYB_TMP/node-b/store/checkpoints/[0-9a-f]{32}/checkpoint\$" "$p"
expect_eq "B has the pulled checkpoint as one row" 1 "$(kyb_daemon_node_rows b)"
j=$("${B[@]}" list --json)
expect_eq "the row records its source image by digest" "$REPO@$DIGEST" "$(jq -r '.[0].source_image' <<<"$j")"
expect_eq "the pulled copy has node A's checksum" "$SUM" "$(jq -r '.[0].checksum' <<<"$j")"
expect_eq "B does not push its pulled copy" "null null" \
	"$(jq -r '.[0] | "\(.pushed_image) \(.push_pending)"' <<<"$j")"
kyb_daemon_node_store_clean b && pass "no staging leftovers after the pull" || fail "no staging leftovers after the pull"

kyb_expect_counter_restored "runc restore on node B from the path kybernated resolved the id to" \
	"$RUNC_B" "$bundle" "$ID" "$p" "$KYB_TMP/out2.log" "$((LAST + 1))"

out2=$("${B[@]}" resolve "$CKPT" --namespace "$NS" --container-id "$ID" -q 2>&1) ||
	fail "second resolve of the id on node B" "$out2"
expect_eq "a second resolve answers the same path" "$p" "$out2"
expect_eq "still one row" 1 "$(kyb_daemon_node_rows b)"
expect_contains "the second resolve used the cached row" "$(cat "$KYB_TMP/node-b/kybernated.log")" \
	"cached, not pulled again"
expect_eq "the repository holds A's checkpoint only" "$CKPT" "$(tags)"

# ---- node A killed mid-push, started again ------------------------------------------

bundle2=$KYB_TMP/bundle2
mkdir -p "$bundle2/rootfs"
kyb_rootfs_build "$bundle2/rootfs"
kyb_runc_counter "$RUNC_A" "$bundle2" "$ID2" "$KYB_TMP/out3.log"
touch "$SLOW"
K=$("${A[@]}" checkpoint -q "$NS/$ID2" 2>&1 | tail -n 1)
[[ $K =~ ^[0-9a-f]{32}$ ]] || die "second checkpoint on node A failed: $K"
# ([s]: the pattern must not match the command line of whoever runs pgrep)
slow_skopeo() { pgrep -f "$KYB_TMP/abin/[s]kopeo" >/dev/null; }
kyb_wait 20 slow_skopeo && pass "the push of $K is under way" || fail "the push of $K is under way"
expect_eq "the checkpoint is ready while it is pushed" ready "$("${A[@]}" inspect "$K" --json | jq -r .checkpoint.state)"
expect_eq "its push is pending" true "$("${A[@]}" inspect "$K" --json | jq -r .checkpoint.push_pending)"
kill -KILL "$A_PID"
wait "$A_PID" 2>/dev/null || true
no_slow_skopeo() { ! slow_skopeo; }
kyb_wait 10 no_slow_skopeo && pass "killing kybernated kills its push (no skopeo left)" ||
	fail "killing kybernated kills its push (no skopeo left)" "$(pgrep -a -f "$KYB_TMP/abin/[s]kopeo")"
rm -f "$SLOW"
expect_ne "the registry has no tag $K yet" "$K" "$(tags | tr ' ' '\n' | grep -x "$K" || true)"
start_a
A_PID=$KYB_NODE_PID
expect_pushed "after the restart the interrupted push is done" "$K"
expect_contains "the start-up says what it pushes" "$(cat "$KYB_TMP/node-a/kybernated.log")" \
	"1 checkpoint(s) still to push to $REPO"
kyb_daemon_node_store_clean a && pass "no stray staging directories after the restart" ||
	fail "no stray staging directories after the restart" "$(ls -A "$KYB_TMP/node-a/store/staging")"

# ---- the registry down: the checkpoint is ready, the push waits ---------------------

kyb_registry_stop
D=$("${A[@]}" checkpoint -q "$NS/$ID2" 2>&1 | tail -n 1)
[[ $D =~ ^[0-9a-f]{32}$ ]] || die "checkpoint with the registry down failed: $D"
expect_eq "with the registry down the checkpoint is ready" ready \
	"$("${A[@]}" inspect "$D" --json | jq -r .checkpoint.state)"
kyb_wait 60 grep -q "Push of checkpoint $D to $REPO:$D failed" "$KYB_TMP/node-a/kybernated.log" &&
	pass "the failed push is logged" || fail "the failed push is logged" "$(tail -n 5 "$KYB_TMP/node-a/kybernated.log")"
expect_eq "its push stays pending" "true " \
	"$("${A[@]}" inspect "$D" --json | jq -r '"\(.checkpoint.push_pending) \(.checkpoint.pushed_image // "")"')"
out=$("${A[@]}" resolve "$D" --namespace "$NS" --container-id "$ID2" -q 2>&1) ||
	fail "the unpushed checkpoint resolves on A" "$out"
expect_eq "the unpushed checkpoint resolves on A" "$KYB_TMP/node-a/store/checkpoints/$D/checkpoint" "$out"
kyb_daemon_node_store_clean a && pass "a failed push leaves nothing in staging" || fail "a failed push leaves nothing in staging"

# The registry again, on its address; kybernated A started again pushes.
kyb_registry_resume
kill "$A_PID"
wait "$A_PID" 2>/dev/null || true
start_a
A_PID=$KYB_NODE_PID
expect_pushed "after the registry is back and a restart the push is done" "$D"
expect_eq "the repository holds node A's three checkpoints" "$(printf '%s\n' "$CKPT" "$K" "$D" | sort | xargs)" "$(tags)"

kyb_finish
