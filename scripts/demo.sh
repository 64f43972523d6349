#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# `make demo`: what Kybernate is for, in a minute, on this machine alone. A pod
# moves from one node to another through a registry and keeps counting:
#   - a private registry (TLS with a throwaway CA, htpasswd) on 127.0.0.1;
#   - two private containerd "nodes" (A and B), each with its own kybernated
#     and store; node B may pull from the registry's ckpt/ into the Kubernetes
#     namespace kybernate-demo;
#   - the counter pod of manifests/cpu-test-pod.yaml started on node A through
#     CRI (tests/lib/cri-client.js standing in for kubelet), checkpointed with
#     `kybernatectl checkpoint --exit`, pushed with `kybernatectl push`;
#   - a pod on node B with RESTORE_FROM=<the image>: node B's kybernated pulls
#     it and the shim restores it; its count goes on where node A's stopped.
# Each step is printed with the time since the start. Nothing of the host's own
# containerd or kybernated is used or changed: every process, socket and
# directory is private (under /run/kyb-test, /var/lib/kyb-test and a /tmp
# directory) and removed at exit, also on Ctrl-C. The details of the run are
# in $BUILD/demo.log.
#
# Run it through `make demo` (which runs scripts/setup.sh first when something
# is missing, and builds), as root. Environment: BUILD (default build/),
# KYB_DEMO_CTD (containerd version of the nodes: 1.6, the default, or 1.7).
# Code is single-quoted on purpose; demo_exit runs from the exit trap:
# shellcheck disable=SC2016,SC2317
set -u -o pipefail

# Ctrl-C: bash runs an INT trap only once the command in the foreground has
# ended, and not at all when that command handled the signal itself (as
# kybernatectl does, failing its step). So the demo runs in a session of its
# own, which Ctrl-C does not reach, and this shell, waiting in `wait` (which a
# trapped signal interrupts at once), stops it with SIGTERM: the child cleans
# up everything it started (its exit trap) and says so.
if [ -z "${KYB_DEMO_CHILD:-}" ]; then
	KYB_DEMO_CHILD=1 setsid "$0" "$@" &
	child=$!
	trap 'printf "\ndemo: interrupted, cleaning up...\n"; kill -TERM $child 2>/dev/null' INT TERM
	while :; do
		wait "$child"
		rc=$?
		kill -0 "$child" 2>/dev/null || exit "$rc"
	done
fi

KYB_TEST=demo
# shellcheck source-path=SCRIPTDIR source=../tests/lib/common.sh
. "$(dirname "$0")/../tests/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../tests/lib/registry.sh
. "$(dirname "$0")/../tests/lib/registry.sh"
# shellcheck source-path=SCRIPTDIR source=../tests/lib/node.sh
. "$(dirname "$0")/../tests/lib/node.sh"

DEMO_LOG=$BUILD/demo.log
VERSION=${KYB_DEMO_CTD:-1.6}
NS=kybernate-demo
mkdir -p "$BUILD"
# The human reads fd 3; everything the helpers say goes to the log.
exec 3>&1 >"$DEMO_LOG" 2>&1
T0=$EPOCHREALTIME
DEMO_DONE=0

# elapsed: seconds since the start, two decimals.
elapsed() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }
# say TEXT: one step, with the time since the start.
say() {
	printf '[%6s s] %s\n' "$(elapsed)" "$*" >&3
	log "demo: $*"
}
# quit TEXT: the demo cannot go on.
quit() {
	printf '\ndemo: %s\n' "$*" >&3
	exit 1
}
# mib BYTES: BYTES in MiB, one decimal.
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# At exit (registered first, so it runs last, after every node and the
# registry are gone): what went wrong, if anything.
demo_exit() {
	if [ "$DEMO_DONE" = 1 ] || [ "$DEMO_STOPPED" = 1 ]; then
		printf '[%6s s] cleaned up: both nodes, their kybernated and the registry are gone\n' "$(elapsed)" >&3
		return 0
	fi
	{
		printf '\ndemo: did not finish; everything it started is cleaned up.\n'
		grep -hE '^(FAIL|SKIP): ' "$DEMO_LOG" | sed 's/^/  /'
		printf 'Last lines of %s:\n' "$DEMO_LOG"
		tail -n 15 "$DEMO_LOG" | sed 's/^/  | /'
	} >&3
}
kyb_on_exit demo_exit
DEMO_STOPPED=0
trap 'DEMO_STOPPED=1; trap "" TERM; exit 130' TERM

require_root
require_cmd runc criu containerd ctr jq skopeo zstd
require_cri
require_build containerd-shim-kybernate-v1 kybernated kybernatectl
[ "$VERSION" = 1.6 ] || [ "$VERSION" = 1.7 ] || quit "KYB_DEMO_CTD must be 1.6 or 1.7"

printf 'Kybernate demo: a pod moves from node A to node B through a registry and keeps counting.\n' >&3
printf 'Everything runs in private instances on this machine; details in %s.\n\n' "$DEMO_LOG" >&3

kyb_image_build
kyb_registry_start
say "private registry on https://$REG (TLS with a throwaway CA, htpasswd user $REG_USER)"
IMG=$REG/ckpt/counter:demo

kyb_node_start a "kybdemo-a-$$" "$VERSION"
say "node A: containerd $VERSION (CRI, runtime handler kybernate) + its own kybernated, store $(kyb_node_dir a)/store"
kyb_node_start b "kybdemo-b-$$" "$VERSION" "pull_allow = $REG/ckpt=$NS
registry_authfile = $REG_AUTHFILE
registry_cert_dir = $REG_CERT_DIR"
say "node B: containerd $VERSION + its own kybernated, pull_allow = $REG/ckpt=$NS"

# ---- node A ---------------------------------------------------------------------
kyb_node_use a
if ! kyb_pod_create cpu-test "$NS" "kybdemo-cpu-test-$$" "$(kyb_counter_json)" || ! cri start "$CTR_ID"; then
	quit "the counter pod did not start on node A"
fi
LOG_A=$POD_LOG
say "node A: pod $NS/cpu-test started through CRI (the counter of manifests/cpu-test-pod.yaml)"
kyb_wait_numbers 30 "$LOG_A" 5 || quit "the counter on node A does not count"
say "node A: counting: $(kyb_numbers "$LOG_A" | paste -sd' ')"

t=$EPOCHREALTIME
ID=$(kctl checkpoint -q --exit -n k8s.io "$CTR_ID" | tail -n 1)
[[ $ID =~ ^[0-9a-f]{32}$ ]] || quit "kybernatectl checkpoint on node A failed: $ID"
size=$(kctl list --json | jq -r --arg id "$ID" '.[] | select(.id == $id) | .size_bytes')
say "checkpointed on node A: $ID ($(mib "$size"), $(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f s", b - a }'); the pod's process stopped)"
T_FREEZE=$t

t=$EPOCHREALTIME
DIGEST=$(kctl push -q --authfile "$REG_AUTHFILE" --cert-dir "$REG_CERT_DIR" "$ID" "$IMG" | tail -n 1)
[[ $DIGEST =~ ^sha256: ]] || quit "kybernatectl push failed: $DIGEST"
say "pushed as $IMG ($(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f s", b - a }'), ${DIGEST:0:19}...)"
kyb_wait_eval 15 '[ "$(kyb_ctr_state "$CTR_ID")" = CONTAINER_EXITED ]' || true
kyb_pod_rm "$POD_ID" || quit "the pod on node A did not stop"
say "node A: pod removed"

# ---- node B ---------------------------------------------------------------------
kyb_node_use b
[ "$(kctl list --json | jq length)" = 0 ] || quit "node B's store is not empty"
say "node B: its store is empty; a pod $NS/cpu-restore with RESTORE_FROM=$IMG"
kyb_pod_create cpu-restore "$NS" "kybdemo-cpu-restore-$$" "$(kyb_counter_json "$IMG")" || quit "the pod on node B was not created"
t=$EPOCHREALTIME
out=$(cri start "$CTR_ID" 2>&1) || quit "the pod on node B did not start: $out"
LOG_B=$POD_LOG
say "node B: StartContainer: the image pulled, checked and restored by node B's kybernated and the shim ($(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f s", b - a }'); $(awk -v a="$T_FREEZE" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f s", b - a }') since the checkpoint on A began)"
kyb_wait_numbers 30 "$LOG_B" 4 || quit "the restored counter on node B does not count"
say "node B: counting on: $(kyb_numbers "$LOG_B" | paste -sd' ')"
src=$(kctl list --json | jq -r '.[0].source_image')
say "node B: its store now holds the checkpoint once, pulled from $src"
kept=$(cri exec "$CTR_ID" cat /kept 2>&1)
say "node B: /kept in the container's rootfs, written on node A: $kept"

# ---- side by side ------------------------------------------------------------------
# lines LOG: "HH:MM:SS  N" for each number of a CRI log.
lines() { sed -nE 's/^[^T]+T([0-9:]{8})[^ ]* stdout F ([0-9]+)$/\1  \2/p' "$1"; }
last_a=$(kyb_numbers "$LOG_A" | tail -n 1)
first_b=$(kyb_numbers "$LOG_B" | head -n 1)
{
	printf '\n  %-34s %s\n' "node A: the last lines of its log" "node B: the first lines of its log"
	paste -d'|' <(lines "$LOG_A" | tail -n 4) <(lines "$LOG_B" | head -n 4) |
		awk -F'|' '{ printf "  %-34s %s\n", $1, $2 }'
	printf '\n'
} >&3
if [ -n "$last_a" ] && [ "$first_b" = $((last_a + 1)) ]; then
	say "the count goes on: node A stopped at $last_a, node B went on with $first_b"
else
	quit "node B's first number ($first_b) is not node A's last ($last_a) + 1"
fi
# PID 1 ignores SIGTERM: SIGKILL after a second.
cri stop "$CTR_ID" 1 >/dev/null 2>&1
kyb_pod_rm "$POD_ID" >/dev/null 2>&1
DEMO_DONE=1
exit 0
