#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A whole pod's checkpoint as one archive, through containerd 1.6's CRI
# plugin (tests/lib/cri-client.js standing in for kubelet, runtime handler
# "kybernate") and a private kybernated:
#   - a host-network pod with two busybox counters ("alpha" from 0, "beta"
#     from 1000) is checkpointed with `kybernatectl checkpoint --pod`, left
#     running, then stopped and removed;
#   - exporting one of its members alone is refused, naming the pod;
#   - `kybernatectl export` of the pod writes one archive: pod.json and
#     kybernate.json at the top, each member's checkpoint (checkpoint/,
#     config.dump, spec.dump, stats-dump) under members/<container>/;
#   - damaged archives (a member missing, pod.json naming a container the
#     archive lacks, a member without CRIU images, a member claiming another
#     container) are refused and leave no row, no checkpoint directory and
#     no staging directory behind;
#   - the pod checkpoint is deleted; `kybernatectl import` brings the pod
#     back, with new ids, its members ready and pointing at it;
#   - a new pod whose containers name the imported pod checkpoint
#     (RESTORE_FROM=<pod id>) continues both counts, each container from its
#     own member.
# Container commands are single-quoted on purpose:
# shellcheck disable=SC2016
set -u -o pipefail # no -e: a failed check must not end the suite
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

require_root
require_cmd runc criu ctr containerd jq tar
require_cri
require_build containerd-shim-kybernate-v1 kybernated kybernatectl
criu check >/dev/null 2>&1 || skip_all "criu check fails here (CRIU >= 4 is needed: run scripts/setup.sh)"
kyb_image_build

CTL=$BUILD/kybernatectl
# The PID keeps two runs apart (the runc root of k8s.io is shared).
N=kybpexp-$$
NS=kybpexp-ns
POD=pexp-$$
STORE=$KYB_TMP/store

# A private daemon socket; containerd passes its environment on to the shims.
SOCK_DIR=$(mktemp -d /run/kybpexp.XXXXXX)
kyb_on_exit "rm -rf --one-file-system '$SOCK_DIR'"
export KYBERNATE_SOCKET=$SOCK_DIR/kybernated.sock
"$BUILD/kybernated" --config /dev/null --store "$STORE" --socket "$KYBERNATE_SOCKET" \
	--runc-root-base /run/containerd/runc --durable=no >"$KYB_TMP/kybernated.log" 2>&1 &
DAEMON_PID=$!
kyb_on_exit "kill $DAEMON_PID 2>/dev/null; wait $DAEMON_PID 2>/dev/null; mkdir -p '$BUILD/test-logs'; cp '$KYB_TMP/kybernated.log' '$BUILD/test-logs/kybernated-pod-export.log'"
kyb_wait 10 "$CTL" status || die "kybernated did not come up: $(tail -n 20 "$KYB_TMP/kybernated.log")"

KYB_CTD_NS=k8s.io ctd_start "$N" 1.6
kyb_on_exit "rmdir /sys/fs/cgroup/*/kybpexp-pod-$N-* /sys/fs/cgroup/kybpexp-pod-$N-* 2>/dev/null"
kyb_image_import k8s.io

# pod_json NAME UID LOG_DIR: a host-network pod sandbox config in $NS, with
# a cgroup of its own (as kubelet gives each pod): the pod checkpoint freezes
# it, and only it.
pod_json() {
	jq -n --arg n "$1" --arg ns "$NS" --arg u "$2" --arg d "$3" '{metadata: {name: $n, uid: $u,
		namespace: $ns, attempt: 0}, log_directory: $d,
		linux: {cgroup_parent: ("/kybpexp-pod-" + $u),
			security_context: {namespace_options: {network: "NODE"}}}}'
}
# counter_json NAME START [RESTORE_ENV]: a container counting from START.
counter_json() {
	cri_ctr_json "$1" "$1/0.log" /bin/sh -c "i=$2; while true; do echo \$i; i=\$((i+1)); sleep 1; done" |
		jq --arg env "${3:-}" 'if $env != "" then .envs = [{key: "RESTORE_FROM", value: $env}] else . end'
}
# numbers LOG: the counter's numbers in a CRI log file, one a line.
numbers() { sed -nE 's/^[^ ]+ stdout F ([0-9]+)$/\1/p' "$1" 2>/dev/null; }
rm_pod() { cri stopp "$1" >/dev/null && cri rmp "$1" >/dev/null; }

# run_pod NAME UID LOGDIR [RESTORE_ENV]: the pod with alpha and beta started; POD_ID.
POD_ID=""
run_pod() {
	local c start ctr
	POD_ID=""
	mkdir -p "$3/alpha" "$3/beta"
	pod_json "$1" "$2" "$3" >"$KYB_TMP/$2.pod.json"
	POD_ID=$(cri runp "$KYB_TMP/$2.pod.json" kybernate) || return 1
	for c in alpha beta; do
		start=0
		[ "$c" = alpha ] || start=1000
		counter_json "$c" "$start" "${4:-}" >"$KYB_TMP/$2.$c.json"
		ctr=$(cri create "$POD_ID" "$KYB_TMP/$2.$c.json" "$KYB_TMP/$2.pod.json") || return 1
		cri start "$ctr" >/dev/null || return 1
	done
}

# host_holds: the node's own loopback TCP holds (iptables rules a pod
# restore adds in the pod's network namespace) naming one of our pod
# checkpoints; there must never be any (a host-network pod's namespace is
# the node's). drop_host_holds removes them, so that a failure here does
# not cut the node's loopback TCP.
host_holds() {
	local id
	for id in ${PODCK:-} ${NEWCK:-}; do
		iptables -S INPUT 2>/dev/null | grep -F "kybernate-restore:$id"
	done
	return 0
}
# shellcheck disable=SC2317 # run at exit (kyb_on_exit)
drop_host_holds() {
	local rule
	host_holds | while read -r rule; do
		eval "iptables ${rule/#-A/-D}"
	done
}
kyb_on_exit drop_host_holds

# rows: the number of catalog rows (pods, members, all states); dirs: the
# checkpoint directories and staging directories in the store.
rows() { "$CTL" list --json 2>/dev/null | jq 'length'; }
dirs() { find "$STORE/checkpoints" "$STORE/staging" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# ---- the pod, checkpointed whole -------------------------------------------------

logdir=$KYB_TMP/pods/${NS}_${POD}
if ! run_pod "$POD" "$N-a" "$logdir"; then
	fail "pod with two counters runs" "pod '$POD_ID'"
	kyb_finish
fi
kyb_wait_eval 20 '[ "$(numbers "$logdir/beta/0.log" | wc -l)" -ge 2 ] && [ "$(numbers "$logdir/alpha/0.log" | wc -l)" -ge 2 ]' ||
	fail "both counters count" "$(tail -n 3 "$logdir"/*/0.log)"
LO_A=$(numbers "$logdir/alpha/0.log" | tail -n 1)
LO_B=$(numbers "$logdir/beta/0.log" | tail -n 1)
if PODCK=$("$CTL" checkpoint --pod "$NS/$POD" 2>"$KYB_TMP/ckpt.err") && [[ $PODCK =~ ^[0-9a-f]{32}$ ]]; then
	pass "kybernatectl checkpoint --pod prints the pod checkpoint's id"
else
	fail "kybernatectl checkpoint --pod prints the pod checkpoint's id" "'$PODCK'" "$(cat "$KYB_TMP/ckpt.err")"
	rm_pod "$POD_ID"
	kyb_finish
fi
HI_A=$(numbers "$logdir/alpha/0.log" | tail -n 1)
HI_B=$(numbers "$logdir/beta/0.log" | tail -n 1)
expect_ok "the pod is stopped and removed" rm_pod "$POD_ID"

info=$("$CTL" inspect "$PODCK" --json | jq .checkpoint)
expect_eq "the pod checkpoint has two members" "alpha beta" \
	"$(jq -r '[.members[].k8s_container] | sort | join(" ")' <<<"$info")"
MEMBER_A=$(jq -r '.members[] | select(.k8s_container == "alpha") | .id' <<<"$info")

# ---- export --------------------------------------------------------------------

out=$("$CTL" export "$MEMBER_A" -o "$KYB_TMP/member.tar" 2>&1)
rc=$?
expect_ne "exporting a member alone fails" 0 "$rc"
expect_contains "the refusal names the member's pod" "$out" "member of pod checkpoint $PODCK"
expect_contains "the refusal says why" "$out" "restored alone"
expect_eq "no archive is left of the refused export" "" "$(ls "$KYB_TMP"/member.tar* 2>/dev/null)"

ARCHIVE=$KYB_TMP/pod.tar
if out=$("$CTL" export "$PODCK" -o "$ARCHIVE" 2>&1); then
	pass "kybernatectl export of the pod checkpoint"
else
	fail "kybernatectl export of the pod checkpoint" "$out"
	kyb_finish
fi
expect_contains "export names the pod and its members" "$out" "pod checkpoint $PODCK"
list=$(tar -tf "$ARCHIVE" | sed 's|^\./||; s|/$||' | sort)
for f in pod.json kybernate.json members members/alpha/checkpoint/inventory.img members/alpha/config.dump \
	members/alpha/spec.dump members/alpha/stats-dump members/beta/checkpoint/inventory.img members/beta/spec.dump; do
	expect_eq "the archive holds $f" "$f" "$(grep -x -F "$f" <<<"$list")"
done
expect_eq "nothing but pod.json, kybernate.json and members/ at the top" "kybernate.json members pod.json" \
	"$(grep -v / <<<"$list" | sort | xargs)"
tar -xOf "$ARCHIVE" pod.json >"$KYB_TMP/pod.json" 2>/dev/null || tar -xOf "$ARCHIVE" ./pod.json >"$KYB_TMP/pod.json"
expect_eq "pod.json names both containers" "alpha beta" "$(jq -r '[.members[].container] | sort | join(" ")' "$KYB_TMP/pod.json")"

# ---- damaged archives leave nothing behind -------------------------------------

src=$KYB_TMP/unpacked
mkdir -p "$src" && tar -xf "$ARCHIVE" -C "$src"
ROWS=$(rows) DIRS=$(dirs)
# damaged NAME EDIT: a copy of the archive changed by EDIT (run in its tree) is refused.
damaged() {
	local t=$1 d=$KYB_TMP/damaged-$RANDOM out
	cp -a "$src" "$d"
	(cd "$d" && eval "$2")
	tar -cf "$d.tar" -C "$d" .
	if out=$("$CTL" import "$d.tar" 2>&1); then
		fail "import refuses an archive with $t" "it imported: $out"
	else
		pass "import refuses an archive with $t"
		log "import said: $out"
	fi
	expect_eq "no row is left of the archive with $t" "$ROWS" "$(rows)"
	expect_eq "no directory is left of the archive with $t" "$DIRS" "$(dirs)"
}
damaged "a member missing" 'rm -rf members/beta'
damaged "pod.json naming a container not in the archive" \
	'jq ".members[0].container = \"gamma\"" pod.json >p && mv p pod.json'
damaged "a member without CRIU images" 'rm -f members/beta/checkpoint/inventory.img'
damaged "a member claiming another container" \
	'jq ".k8sContainer = \"alpha\"" members/beta/kybernate.json >k && mv k members/beta/kybernate.json'
damaged "a member in another namespace" \
	'jq ".k8sNamespace = \"elsewhere\"" members/beta/kybernate.json >k && mv k members/beta/kybernate.json'

# An archive whose pod has no kybernate.json: the pod's identity comes from its members.
d=$KYB_TMP/no-pod-metadata
cp -a "$src" "$d" && rm -f "$d/kybernate.json" && tar -cf "$d.tar" -C "$d" .
if id=$("$CTL" import "$d.tar" 2>"$KYB_TMP/import.err") && [[ $id =~ ^[0-9a-f]{32}$ ]]; then
	expect_eq "a pod without kybernate.json takes its namespace and name from its members" "true $NS $POD" \
		"$("$CTL" inspect "$id" --json | jq -r '.checkpoint | [.is_pod, .k8s_namespace, .k8s_pod] | join(" ")')"
	expect_ok "that pod checkpoint is deleted" "$CTL" delete "$id"
else
	fail "an archive whose pod has no kybernate.json is imported" "'$id'" "$(cat "$KYB_TMP/import.err")"
fi
expect_eq "nothing is left of it" "$DIRS" "$(dirs)"

# ---- a changed member fails the export -------------------------------------------

MEMBER_B=$(jq -r '.members[] | select(.k8s_container == "beta") | .id' <<<"$info")
printf x >>"$STORE/checkpoints/$MEMBER_B/checkpoint/inventory.img"
out=$("$CTL" export "$PODCK" -o "$KYB_TMP/changed.tar" 2>&1)
rc=$?
expect_ne "export of a pod whose member changed fails" 0 "$rc"
expect_contains "the failure names the changed member and its pod" "$out" \
	"checkpoint $MEMBER_B, a member of pod checkpoint $PODCK failed verification"
expect_eq "no archive is left of the failed export" "" "$(ls "$KYB_TMP"/changed.tar* 2>/dev/null)"

# ---- delete, import, restore -----------------------------------------------------

expect_ok "the pod checkpoint is deleted" "$CTL" delete "$PODCK"
expect_eq "its members went with it" "" "$("$CTL" list --json | jq -r '.[].id' | grep -F -e "$PODCK" -e "$MEMBER_A")"
if NEWCK=$("$CTL" import "$ARCHIVE" 2>"$KYB_TMP/import.err") && [[ $NEWCK =~ ^[0-9a-f]{32}$ ]]; then
	pass "kybernatectl import of the pod archive prints the pod checkpoint's id"
else
	fail "kybernatectl import of the pod archive prints the pod checkpoint's id" "'$NEWCK'" "$(cat "$KYB_TMP/import.err")"
	kyb_finish
fi
expect_ne "the imported pod checkpoint has a new id" "$PODCK" "$NEWCK"
info=$("$CTL" inspect "$NEWCK" --json | jq .checkpoint)
expect_eq "the imported pod checkpoint is a ready pod of $NS/$POD" "true ready $NS $POD" \
	"$(jq -r '[.is_pod, .state, .k8s_namespace, .k8s_pod] | join(" ")' <<<"$info")"
expect_eq "the imported pod has both members" "alpha beta" \
	"$(jq -r '[.members[].k8s_container] | sort | join(" ")' <<<"$info")"
for c in alpha beta; do
	mid=$(jq -r --arg c "$c" '.members[] | select(.k8s_container == $c) | .id' <<<"$info")
	m=$("$CTL" inspect "$mid" --json | jq .checkpoint)
	expect_eq "member $c is ready, in the imported pod, of $NS/$POD/$c" "ready $NEWCK $NS $POD $c" \
		"$(jq -r '[.state, .pod_checkpoint_id, .k8s_namespace, .k8s_pod, .k8s_container] | join(" ")' <<<"$m")"
	expect_eq "member $c's directory matches pod.json's id" "$mid" \
		"$(jq -r --arg c "$c" '.members[] | select(.container == $c) | .id' "$STORE/checkpoints/$NEWCK/pod.json")"
done
expect_eq "the store holds the pod and its two members, nothing else" 3 "$(dirs)"
expect_eq "the imported pod's directory holds pod.json and kybernate.json only" "kybernate.json pod.json" \
	"$(cd "$STORE/checkpoints/$NEWCK" && echo *)"
expect_fail "the imported pod's member is not exported alone" "$CTL" export "$mid" -o "$KYB_TMP/m2.tar"

logdir=$KYB_TMP/pods/${NS}_${POD}-r
if run_pod "$POD-r" "$N-r" "$logdir" "$NEWCK"; then
	pass "a pod naming the imported pod checkpoint starts"
else
	fail "a pod naming the imported pod checkpoint starts" "pod '$POD_ID'" "$(tail -n 20 "$KYB_TMP/kybernated.log")"
fi
kyb_wait_eval 20 '[ -n "$(numbers "$logdir/alpha/0.log")" ] && [ -n "$(numbers "$logdir/beta/0.log")" ]' || true
expect_eq "no loopback TCP hold in the node's network namespace (a host-network pod)" "" "$(host_holds)"
first=$(numbers "$logdir/alpha/0.log" | head -n 1)
if [[ $first =~ ^[0-9]+$ ]] && [ "$first" -gt "$LO_A" ] && [ "$first" -le $((HI_A + 1)) ]; then
	pass "alpha continues its count ($LO_A < $first <= $HI_A + 1)"
else
	fail "alpha continues its count" "before '$LO_A', after '$HI_A', first after restore '$first'"
fi
first=$(numbers "$logdir/beta/0.log" | head -n 1)
if [[ $first =~ ^[0-9]+$ ]] && [ "$first" -gt "$LO_B" ] && [ "$first" -le $((HI_B + 1)) ]; then
	pass "beta continues its count from its own member ($LO_B < $first <= $HI_B + 1)"
else
	fail "beta continues its count from its own member" "before '$LO_B', after '$HI_B', first after restore '$first'"
fi
[ -z "$POD_ID" ] || expect_ok "the restored pod is stopped and removed" rm_pod "$POD_ID"
kyb_finish
