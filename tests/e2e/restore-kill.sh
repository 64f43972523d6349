#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# A restore killed midway must never cost the container its files (issue 9).
# runc restore bind-mounts the rootfs at <runc root>/<id>/criu-root before it
# starts CRIU; killed then, the mount stays, and a later `runc delete --force`
# (no state.json) removed that directory recursively, through the mount: the
# rootfs was emptied (every top-level entry of an overlay's upper layer became
# a whiteout). A criu wrapper first in containerd's PATH kills runc, or the
# shim, the moment CRIU starts for the restore; then containerd's clean-up
# (ctr task rm, ctr container rm; containerd's delete action after a dead
# shim) must leave the rootfs whole and no mount behind. And the delete action
# alone, on a runc bundle with a host directory as rootfs and a leftover
# criu-root.
. "$(dirname "$0")/../lib/common.sh"
. "$(dirname "$0")/../lib/criu-kill.sh"
require_root
require_cmd runc ctr criu
require_build containerd-shim-kybernate-v1 kybernated kybernatectl
kyb_image_build

RT=$KYB_RUNTIME
D=$KYB_TMP
RUNC_BASE=/run/containerd/runc

# ---- the delete action on a host-directory rootfs with a leftover criu-root ------------------------
NS=kybrk-host
ID=hostdir1
B=$D/bundle-$ID
kyb_rootfs_build "$B/rootfs"
echo precious >"$B/rootfs/root/precious"
(cd "$B" && runc spec)
n_before=$(find "$B/rootfs" -xdev | wc -l)
ST=$RUNC_BASE/$NS/$ID
kyb_on_exit "kyb_umount_below '$ST'; rm -rf --one-file-system '$RUNC_BASE/$NS'"
mkdir -p "$ST/criu-root"
mount --rbind "$B/rootfs" "$ST/criu-root"
mkdir -p "$B/work/.criu.cgyard.test" # CRIU's cgroup yard: a tmpfs under the work dir
mount -t tmpfs none "$B/work/.criu.cgyard.test"
out=$(cd "$B" && "$BUILD/containerd-shim-kybernate-v1" -namespace "$NS" -id "$ID" -address /nonexistent.sock \
	-bundle "$B" delete 2>"$D/delete-action.err" | od -An -tx1 | tr -d ' \n')
expect_ne "delete action answers a DeleteResponse" "" "$out"
expect_eq "delete action: the host rootfs keeps every entry" "$n_before" "$(find "$B/rootfs" -xdev | wc -l)"
expect_eq "delete action: the host rootfs keeps its files" precious "$(cat "$B/rootfs/root/precious" 2>&1)"
expect_eq "delete action: no mount left below the runc state dir or the bundle" "" "$(mounts_below "$ST" "$B/work")"
expect_fail "delete action: runc's state dir is removed" test -e "$ST"

# ---- through containerd: a checkpoint of a counter, restores killed midway --------------------------
STORE=$D/store
export KYBERNATE_SOCKET=$D/kybernated.sock
kctl() { "$BUILD/kybernatectl" "$@"; }
"$BUILD/kybernated" --config /dev/null --store "$STORE" --socket "$KYBERNATE_SOCKET" >>"$D/daemon.log" 2>&1 &
DPID=$!
kyb_on_exit "kill $DPID 2>/dev/null"
kyb_wait 10 kctl status >/dev/null || die "kybernated did not come up: $(tail -n 20 "$D/daemon.log")"

W=$D/criu-wrapper
criu_kill_install "$W"
export KYB_CTD_PATH_PREFIX=$W
# Whatever a failed run leaves below runc's state dir goes, never through a mount (after containerd).
kyb_on_exit "kyb_rm_tree '$RUNC_BASE/kybrk'"
ctd_start kybrk 1.6
kyb_image_import "$KYB_NS"
ctrx() { "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" "$@"; }

COUNTER='echo hello-from-before > /tmp/written; rm -f /bin/yes; i=0; while true; do echo $i; i=$((i+1)); usleep 200000; done'
ctrx run -d --runtime "$RT" "$KYB_BUSYBOX" cnt sh -c "$COUNTER" >/dev/null
kyb_on_exit "ctr_ task kill -s KILL cnt >/dev/null 2>&1"
sleep 2
CKPT=$(kctl checkpoint -q --namespace "$KYB_NS" cnt)
expect_ne "checkpoint of the counter" "" "$CKPT"
ctr_ task kill -s KILL cnt >/dev/null 2>&1
kyb_wait 20 sh -c "! \"$CTD_CTR\" --address \"$CTD_ADDR\" -n \"$KYB_NS\" task ls | grep -q '^cnt '"
ctr_ task rm cnt >/dev/null 2>&1
ctr_ container rm cnt >/dev/null 2>&1

# killed_restore NAME TARGET: a restore whose TARGET is killed when CRIU starts,
# then containerd's clean-up; the rootfs before and after, and what is mounted.
killed_restore() {
	local name=$1 target=$2 id=rk-$2 bundle after
	bundle=$(ctd_bundle "$id")
	criu_kill_arm "$W" "$target"
	timeout -s KILL 120 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run -d --runtime "$RT" \
		--env "RESTORE_FROM=$CKPT" "$KYB_BUSYBOX" "$id" sh -c 'echo FRESH-START; sleep 100' \
		>"$D/$id.out" 2>&1
	expect_ne "$name: the restore fails" 0 "$?"
	expect_contains "$name: the wrapper killed $target" "$(cat "$W/killed" 2>/dev/null)" "$target"
	expect_ok "$name: the rootfs was listed before the kill" test -s "$W/before.list"
	expect_contains "$name: the listing has the restored file" "$(cat "$W/before.list")" "./tmp/written"
	# containerd's clean-up (after a dead shim it runs the shim's delete action itself)
	[ "$target" != shim ] ||
		kyb_wait 30 sh -c "! \"$CTD_CTR\" --address \"$CTD_ADDR\" -n \"$KYB_NS\" task ls | grep -q '^$id '"
	ctr_ task rm -f "$id" >/dev/null 2>&1
	kyb_wait 30 sh -c "! \"$CTD_CTR\" --address \"$CTD_ADDR\" -n \"$KYB_NS\" task ls | grep -q '^$id '"
	expect_eq "$name: the task is gone" "" "$(ctr_task_status "$id")"
	after=$(snapshot_listing "$id" "$D/view-$id")
	expect_eq "$name: every file of the rootfs is still there, unchanged" \
		"$(cat "$W/before.list")" "$after"
	if [ "$(cat "$W/before.list")" != "$after" ]; then
		diff <(cat "$W/before.list") <(echo "$after") | head -n 20 >&2
	fi
	expect_eq "$name: no mount left below runc's state dir, the bundle or containerd's state" "" \
		"$(mounts_below "$RUNC_BASE/$KYB_NS/$id" "$bundle" "$CTD_ROOT/io.containerd.runtime.v2.task")"
	expect_ok "$name: ctr container rm" ctr_ container rm "$id"
	expect_eq "$name: no mount left after container rm" "" \
		"$(mounts_below "$RUNC_BASE/$KYB_NS/$id" "$bundle" "$CTD_ROOT/io.containerd.runtime.v2.task")"
}
killed_restore "runc killed, then ctr task rm" runc
killed_restore "shim killed, then containerd's delete action" shim
criu_kill_disarm "$W"

# The image's own files, through a fresh container of the same image.
expect_eq "a fresh container of the image has its files" ok \
	"$(timeout -s KILL 60 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run --rm --runtime "$RT" "$KYB_BUSYBOX" fresh \
		sh -c 'test -e /bin/yes && test -x /bin/sh && [ "$(ls /bin | wc -l)" -gt 100 ] && echo ok' 2>&1)"
# And a restore not interrupted still works through the wrapper.
timeout -s KILL 120 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" run -d --runtime "$RT" \
	--env "RESTORE_FROM=$CKPT" "$KYB_BUSYBOX" rk-ok sh -c 'echo FRESH-START; sleep 100' >/dev/null 2>&1
kyb_on_exit "ctr_ task kill -s KILL rk-ok >/dev/null 2>&1"
expect_eq "a restore through the disarmed wrapper runs" RUNNING "$(ctr_task_status rk-ok)"
kyb_finish
