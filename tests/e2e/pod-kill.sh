#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A pod checkpoint killed midway (issue 12) leaves no pod frozen and nothing
# half-made: kybernated is killed (SIGKILL) while it dumps the second
# container of a pod of two, with the pod's cgroup parent set as kubelet sets
# it, and again right after it froze the pod; its next start thaws every
# container (and the pod's cgroup), removes the pending pod and member rows
# and their directories, and the counters go on. Then a pod checkpoint of the
# same pod succeeds. And a failure injected into the second container's dump
# (a runc wrapper that fails `checkpoint` of that container) leaves both
# containers running and thawed, and no pod checkpoint recorded. Through
# containerd 1.6's CRI plugin, a host-network pod (the freeze, not the
# network, is under test here).
# shellcheck disable=SC2016,SC2317
set -u -o pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

require_root
require_cmd runc criu containerd jq
require_cri
require_build containerd-shim-kybernate-v1 kybernated kybernatectl
criu check >/dev/null 2>&1 || skip_all "criu check fails here (CRIU >= 4 is needed: run scripts/setup.sh)"
kyb_image_build

CTL=$BUILD/kybernatectl
NS=team-k
POD=killme
UID_=podkill-$$
CG=/sys/fs/cgroup/freezer/kubepods/pod$UID_
[ -d /sys/fs/cgroup/freezer ] || skip_all "no cgroup v1 freezer here (the v2 freeze is not under test)"
COUNTER='i=0; while true; do echo $i; i=$((i+1)); sleep 0.2; done'

SOCK_DIR=$(mktemp -d /run/kybpodkill.XXXXXX)
kyb_on_exit "rm -rf --one-file-system '$SOCK_DIR'"
export KYBERNATE_SOCKET=$SOCK_DIR/kybernated.sock
STORE=$KYB_TMP/store
start_daemon() { kyb_daemon_start "$STORE" pod-kill "$@"; }
kyb_on_exit 'kyb_daemon_stop'
start_daemon

ctd_start "kybpodkill-$$" 1.6
kyb_image_import k8s.io

LOGS=$KYB_TMP/logs
mkdir -p "$LOGS"
jq -n --arg n "$POD" --arg ns "$NS" --arg u "$UID_" --arg d "$LOGS" '{metadata: {name: $n, uid: $u,
	namespace: $ns, attempt: 0}, log_directory: $d, linux: {cgroup_parent: ("/kubepods/pod" + $u),
	security_context: {namespace_options: {network: "NODE"}}}}' >"$KYB_TMP/pod.json"
P=$(cri runp "$KYB_TMP/pod.json" "$KYB_CRI_HANDLER") || die "RunPodSandbox failed"
kyb_on_exit "cri stopp '$P' >/dev/null 2>&1; cri rmp '$P' >/dev/null 2>&1"
IDS=()
for c in one two; do
	cri_ctr_json "$c" "$c.log" /bin/sh -c "$COUNTER" >"$KYB_TMP/$c.json"
	{ id=$(cri create "$P" "$KYB_TMP/$c.json" "$KYB_TMP/pod.json") && cri start "$id" >/dev/null; } ||
		die "container $c did not start"
	IDS+=("$id")
done

count() { sed -nE 's/^[^ ]+ stdout F ([0-9]+)$/\1/p' "$LOGS/$1.log" | tail -n 1; }
# advancing NAME: the counter of container NAME moves on within 5 s.
advancing() {
	local a b
	a=$(count "$2")
	kyb_wait 5 sh -c "[ \"\$(sed -nE 's/^[^ ]+ stdout F ([0-9]+)\$/\\1/p' '$LOGS/$2.log' | tail -n 1)\" != '$a' ]"
	b=$(count "$2")
	if [ -n "$b" ] && [ "$b" != "$a" ]; then pass "$1: $2 counts on ($a -> $b)"; else fail "$1: $2 counts on" "stuck at '$a'"; fi
}
# all_thawed NAME: the pod's cgroup and each container's are THAWED.
all_thawed() {
	local f st bad=""
	for f in "$CG" "$CG"/*/; do
		st=$(cat "$f/freezer.state" 2>/dev/null)
		[ "$st" = THAWED ] || bad+="${f#"$CG"}=$st "
	done
	expect_eq "$1: the pod's cgroup and every container's are THAWED" "" "$bad"
}
# nothing_left NAME: no row and no directory of an unfinished checkpoint.
nothing_left() {
	expect_eq "$1: no checkpoint in the catalog" 0 "$("$CTL" list --json | jq length)"
	expect_eq "$1: no checkpoint directory in the store" "" "$(ls "$STORE/checkpoints" 2>/dev/null)"
}

kyb_wait 20 sh -c "[ -n \"\$(sed -nE 's/^[^ ]+ stdout F ([0-9]+)\$/\\1/p' '$LOGS/two.log' | tail -n 1)\" ]" ||
	die "the counters did not start"
[ -d "$CG" ] || die "the pod's cgroup $CG is not there (cgroup_parent not applied?)"

# kill_when NAME WHAT CMD...: starts the pod checkpoint, SIGKILLs kybernated
# as soon as CMD succeeds (polled), restarts it, checks what is left.
kill_when() {
	local t=$1 what=$2 i
	shift 2
	"$CTL" checkpoint --pod "$NS/$POD" >"$KYB_TMP/ck.out" 2>&1 &
	local ck=$!
	for i in $(seq 1 400); do
		"$@" && break
		sleep 0.025
	done
	if [ "$i" -ge 400 ]; then
		fail "$t: reached $what" "never seen"
	else
		pass "$t: killed kybernated $what"
	fi
	kill -KILL "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null
	wait "$ck" 2>/dev/null
	start_daemon
	all_thawed "$t"
	nothing_left "$t"
	advancing "$t" one
	advancing "$t" two
}

# 1. while runc checkpoint of the second container runs (the first is dumped, all frozen).
second_dump() {
	ls "$STORE"/checkpoints/*/checkpoint/inventory.img >/dev/null 2>&1 &&
		pgrep -f "checkpoint .*--image-path $STORE/checkpoints/" >/dev/null
}
kill_when "killed during the second dump" "during a dump with one member dumped" second_dump

# 2. right after the freeze: every container's freezer FROZEN.
frozen() { [ "$(cat "$CG/${IDS[0]}/freezer.state" 2>/dev/null)" = FROZEN ] && [ "$(cat "$CG/${IDS[1]}/freezer.state" 2>/dev/null)" = FROZEN ]; }
kill_when "killed with the pod frozen" "with both containers frozen" frozen

# 3. a failure in the second container's dump: nothing recorded, both run on.
W=$KYB_TMP/runc-fail
cat >"$W" <<'EOF2'
#!/bin/sh
# runc, except that `checkpoint` of container $KYB_FAIL_ID fails.
for a; do last=$a; done
case " $* " in
*" checkpoint "*) [ "$last" = "$KYB_FAIL_ID" ] && { echo "injected failure of $last" >&2; exit 1; } ;;
esac
exec runc "$@"
EOF2
chmod +x "$W"
kill "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
KYB_FAIL_ID=${IDS[1]} start_daemon --runc "$W"
if out=$("$CTL" checkpoint --pod "$NS/$POD" 2>&1); then
	fail "a failure in the second dump fails the pod checkpoint" "it succeeded: $out"
else
	pass "a failure in the second dump fails the pod checkpoint"
	expect_contains "the error names the container that failed" "$out" "two"
	expect_contains "the error says why" "$out" "runc checkpoint"
fi
all_thawed "after the failed dump"
nothing_left "after the failed dump"
advancing "after the failed dump" one
advancing "after the failed dump" two
for i in 0 1; do
	expect_eq "after the failed dump: container ${IDS[$i]:0:12} is running" running \
		"$(runc --root /run/containerd/runc/k8s.io state "${IDS[$i]}" 2>/dev/null | jq -r .status)"
done
kill "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
start_daemon

# 4. and the checkpoint then succeeds, the pod running on.
if id=$("$CTL" checkpoint --pod "$NS/$POD" 2>"$KYB_TMP/ck.err"); then
	pass "a pod checkpoint after the kills succeeds ($id)"
	expect_eq "it is a pod of 2 members" 2 "$("$CTL" inspect --json "$id" | jq '.checkpoint.members | length')"
else
	fail "a pod checkpoint after the kills succeeds" "$(cat "$KYB_TMP/ck.err")"
fi
all_thawed "after the checkpoint"
advancing "after the checkpoint" one

kyb_finish
