#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# kybernated saves a container's writable layer with its checkpoint: a busybox
# counter under real runc, on an overlay rootfs (lower = the image, upper = the
# container's changes), writes a file, a nested directory and a symlink and
# deletes a file of the image; `kybernatectl checkpoint` leaves
# rootfs-diff.tar (readable by GNU tar) and deleted.files beside the CRIU
# images, the checksum covers them (a changed archive is refused at resolve),
# export carries them. A container on a plain directory gets no diff, and
# kybernate.json says why. A 4 GiB sparse file is saved as such (a small
# archive), and a layer over max_rootfs_diff_bytes fails the checkpoint
# cleanly.
. "$(dirname "$0")/../lib/common.sh"

require_root
require_cmd runc criu jq busybox tar
require_build kybernated kybernatectl
criu check >/dev/null 2>&1 || skip_all "criu check fails here (CRIU >= 4 is needed: run scripts/setup.sh)"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null ||
	skip_all "no overlay filesystem in this kernel"

D=$KYB_TMP
STORE=$D/store
SOCK=$D/kybernated.sock
export KYBERNATE_SOCKET=$SOCK
NS=rootfs-e2e
RUNC_ROOT=$D/runc/$NS
CTL=$BUILD/kybernatectl
DAEMON_PID=

stop_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}
kyb_on_exit 'stop_daemon'
kyb_on_exit '[ "$_kyb_fail" = 0 ] || tail -n 30 "$D/daemon.log" >&2'

"$BUILD/kybernated" --config /dev/null --store "$STORE" --runc-root-base "$D/runc" -S "$SOCK" \
	>>"$D/daemon.log" 2>&1 &
DAEMON_PID=$!
kyb_wait 10 "$CTL" status || die "kybernated did not come up: $(tail -n 20 "$D/daemon.log")"

# ---- the image and the container's overlay ----------------------------------------

kyb_rootfs_build "$D/lower"
echo "from the image" >"$D/lower/etc/motd"
mkdir -p "$D/upper" "$D/work" "$D/bundle/rootfs" "$D/plain"
mount -t overlay overlay -o "lowerdir=$D/lower,upperdir=$D/upper,workdir=$D/work" "$D/bundle/rootfs" ||
	skip_all "mount -t overlay failed"
kyb_on_exit "umount -l '$D/bundle/rootfs' 2>/dev/null"

(cd "$D/bundle" && runc spec)
# Writable rootfs, host network, no terminal. The shell changes its rootfs,
# then counts.
script='echo written-before-checkpoint >/hello.txt
mkdir -p /data/deep/er && echo nested >/data/deep/er/f
ln -s /hello.txt /hello.link
rm /etc/motd
echo modified >/etc/hostname
i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done'
jq --arg s "$script" '.process.terminal = false
    | .root.readonly = false
    | .process.args = ["sh", "-c", $s]
    | .linux.namespaces |= map(select(.type != "network"))
    | .annotations = {"io.kubernetes.cri.image-name": "docker.io/kybernate/busybox:test"}' \
	"$D/bundle/config.json" >"$D/bundle/config.json.new"
mv "$D/bundle/config.json.new" "$D/bundle/config.json"
# The same container on a plain directory (not a mount point).
cp -a "$D/bundle/config.json" "$D/plain/config.json"
cp -a "$D/lower" "$D/plain/rootfs"
mkdir -p "$RUNC_ROOT"

run_ctr() { # ID BUNDLE OUT
	(true | runc --root "$RUNC_ROOT" run -d -b "$2" "$1" 2>&1 | cat >>"$3") &
	kyb_wait 10 test -s "$3" || die "container $1 did not start: $(cat "$3")"
}
kill_ctr() {
	runc --root "$RUNC_ROOT" kill "$1" KILL 2>/dev/null
	sleep 0.2
	runc --root "$RUNC_ROOT" delete -f "$1" 2>/dev/null
}
kyb_on_exit 'for c in rootfs-c1 rootfs-c2; do kill_ctr $c; done'

run_ctr rootfs-c1 "$D/bundle" "$D/out1"
sleep 0.5

# ---- checkpoint: the diff is beside the images -----------------------------------------

out=$("$CTL" checkpoint --exit --name ovl -n "$NS" rootfs-c1 2>"$D/ckpt.err") || rc=$?
expect_eq "checkpoint of the overlay container succeeds" "0" "${rc:-0}" || cat "$D/ckpt.err" >&2
CKPT=$(echo "$out" | tail -n 1)
dir=$STORE/checkpoints/$CKPT
expect_ok "rootfs-diff.tar beside the images" test -f "$dir/rootfs-diff.tar"
expect_ok "deleted.files beside the images" test -f "$dir/deleted.files"

list=$(tar -tvf "$dir/rootfs-diff.tar" 2>&1)
expect_contains "GNU tar reads the diff: new file" "$list" " hello.txt"
expect_contains "diff: nested directory file" "$list" "data/deep/er/f"
expect_contains "diff: symlink kept as a link" "$list" "hello.link -> /hello.txt"
expect_contains "diff: modified image file" "$list" "etc/hostname"
expect_eq "diff: file content" "written-before-checkpoint" "$(tar -xOf "$dir/rootfs-diff.tar" hello.txt)"
case $list in
*etc/motd*) fail "diff does not archive the deleted file" ;;
*) pass "diff does not archive the deleted file" ;;
esac
expect_eq "deleted.files lists the deleted image file" '["/etc/motd"]' "$(jq -c . "$dir/deleted.files")"
expect_eq "kybernate.json: diff captured" "true" "$(jq -r .rootfsDiff.captured "$dir/kybernate.json")"
expect_eq "kybernate.json: upper directory" "$D/upper" "$(jq -r .rootfsDiff.upperdir "$dir/kybernate.json")"
expect_eq "kybernate.json: image recorded" "docker.io/kybernate/busybox:test" \
	"$(jq -r .imageRef "$dir/kybernate.json")"

# The catalog's size counts the diff files.
size=$("$CTL" list --json | jq -r '.[] | select(.name == "ovl") | (.size_bytes // .sizeBytes)')
sum=$(find "$dir" -type f ! -path "$dir/kybernate.json" -printf '%s\n' | awk '{ s += $1 } END { print s }')
expect_eq "checkpoint size includes rootfs-diff.tar and deleted.files" "$sum" "$size"

# ---- export carries the diff; the checksum covers it ---------------------------------

expect_ok "export" "$CTL" export "$CKPT" -o "$D/c.tar"
exp=$(tar -tf "$D/c.tar")
expect_contains "export has rootfs-diff.tar" "$exp" "rootfs-diff.tar"
expect_contains "export has deleted.files" "$exp" "deleted.files"
if command -v checkpointctl >/dev/null 2>&1; then
	out=$(checkpointctl show "$D/c.tar" 2>&1) || rc3=$?
	expect_eq "checkpointctl show accepts the export with a rootfs diff" "0" "${rc3:-0}" ||
		printf '%s\n' "$out" >&2
	expect_contains "checkpointctl show reports the rootfs diff" "$out" "ROOT FS DIFF SIZE"
else
	skip "checkpointctl checks" "checkpointctl not installed"
fi

expect_ok "resolve before tampering" "$CTL" resolve -q -n "$NS" ovl
# Same size, one byte different: only the checksum can tell.
printf 'X' | dd of="$dir/rootfs-diff.tar" bs=1 seek=600 conv=notrunc status=none
msg=$("$CTL" resolve -n "$NS" ovl 2>&1) && fail "resolve of a changed rootfs-diff.tar refused" ||
	expect_contains "resolve of a changed rootfs-diff.tar refused" "$msg" "checksum"
cp "$dir/deleted.files" "$D/deleted.bak"
echo '["/etc/passwd"]' >"$dir/deleted.files"
msg=$("$CTL" resolve -n "$NS" ovl 2>&1) && fail "resolve of a changed deleted.files refused" ||
	expect_contains "resolve of a changed deleted.files refused" "$msg" "checksum"

# ---- a rootfs that is not an overlay: no diff, and the reason -----------------------

run_ctr rootfs-c2 "$D/plain" "$D/out2"
sleep 0.3
out=$("$CTL" checkpoint --exit --name plain -n "$NS" rootfs-c2 2>"$D/ckpt2.err") || rc2=$?
expect_eq "checkpoint of the plain-directory container succeeds" "0" "${rc2:-0}" || cat "$D/ckpt2.err" >&2
CK2=$(echo "$out" | tail -n 1)
dir2=$STORE/checkpoints/$CK2
expect_fail "no rootfs-diff.tar without an overlay" test -e "$dir2/rootfs-diff.tar"
expect_eq "kybernate.json: nothing captured" "false" "$(jq -r .rootfsDiff.captured "$dir2/kybernate.json")"
expect_contains "kybernate.json says why" "$(jq -r .rootfsDiff.note "$dir2/kybernate.json")" \
	"not an overlay"
expect_ok "the plain checkpoint resolves" "$CTL" resolve -q -n "$NS" plain

# ---- --exit: containerd deletes the stopped container right after the dump -------------
# A runc wrapper plays containerd: right after a successful dump it unmounts the
# rootfs, removes the bundle's config.json and the snapshot's upper directory.
# The writable layer was saved before the dump, so the checkpoint is whole:
# images, the spec read before the dump, and the files.
stop_daemon
mkdir -p "$D/upper3" "$D/work3" "$D/bundle3/rootfs"
mount -t overlay overlay -o "lowerdir=$D/lower,upperdir=$D/upper3,workdir=$D/work3" "$D/bundle3/rootfs"
kyb_on_exit "umount -l '$D/bundle3/rootfs' 2>/dev/null"
cp "$D/bundle/config.json" "$D/bundle3/config.json"
cp "$D/bundle3/config.json" "$D/config3.orig"
cat >"$D/runc-then-delete" <<EOF
#!/bin/sh
runc "\$@"
rc=\$?
case " \$* " in
*" checkpoint "*)
	[ \$rc -eq 0 ] && umount -l "$D/bundle3/rootfs" && rm -f "$D/bundle3/config.json" && rm -rf "$D/upper3" ;;
esac
exit \$rc
EOF
chmod +x "$D/runc-then-delete"
"$BUILD/kybernated" --config /dev/null --store "$STORE" --runc-root-base "$D/runc" -S "$SOCK" \
	--runc "$D/runc-then-delete" >>"$D/daemon.log" 2>&1 &
DAEMON_PID=$!
kyb_wait 10 "$CTL" status >/dev/null || die "kybernated did not come back"
run_ctr rootfs-c3 "$D/bundle3" "$D/out3"
kyb_on_exit 'kill_ctr rootfs-c3'
sleep 0.5
rc=0
out=$("$CTL" checkpoint --exit -n "$NS" rootfs-c3 2>"$D/ckpt3.err") || rc=$?
expect_eq "--exit checkpoint survives containerd deleting the container" 0 "$rc" || cat "$D/ckpt3.err" >&2
CK3=$(echo "$out" | tail -n 1)
dir3=$STORE/checkpoints/$CK3
expect_ok "its images are kept" test -s "$dir3/checkpoint/pstree.img"
expect_ok "spec.dump is the spec read before the dump" cmp "$D/config3.orig" "$dir3/spec.dump"
expect_eq "its files were saved before containerd removed them" "written-before-checkpoint" \
	"$(tar -xOf "$dir3/rootfs-diff.tar" hello.txt 2>&1)"
expect_eq "kybernate.json: diff captured" "true" "$(jq -r .rootfsDiff.captured "$dir3/kybernate.json")"
expect_ok "the checkpoint verifies and resolves" "$CTL" resolve -q -n "$NS" "$CK3"

# ---- the writable layer is saved with the container frozen, before the dump ------------
# A runc wrapper notes, when runc checkpoint starts, the container's status and
# whether rootfs-diff.tar exists already; with $D/fail-dump present it fails
# the dump instead.
stop_daemon
cat >"$D/witness-runc" <<EOF
#!/bin/sh
case " \$* " in
*" checkpoint "*)
	root= images= id=
	for a in "\$@"; do
		case "\$prev" in --root) root=\$a ;; --image-path) images=\$a ;; esac
		prev=\$a id=\$a
	done
	status=\$(runc --root "\$root" state "\$id" | jq -r .status)
	test -e "\${images%/*}/rootfs-diff.tar" && diff=diff-saved || diff=no-diff
	echo "\$status \$diff" >"$D/witness"
	[ -e "$D/fail-dump" ] && { echo "dump failed on purpose" >&2; exit 1; } ;;
esac
exec runc "\$@"
EOF
chmod +x "$D/witness-runc"
"$BUILD/kybernated" --config /dev/null --store "$STORE" --runc-root-base "$D/runc" -S "$SOCK" \
	--runc "$D/witness-runc" >>"$D/daemon.log" 2>&1 &
DAEMON_PID=$!
kyb_wait 10 "$CTL" status >/dev/null || die "kybernated did not come back"
mkdir -p "$D/upper4" "$D/work4" "$D/bundle4/rootfs"
mount -t overlay overlay -o "lowerdir=$D/lower,upperdir=$D/upper4,workdir=$D/work4" "$D/bundle4/rootfs"
kyb_on_exit "umount -l '$D/bundle4/rootfs' 2>/dev/null"
cp "$D/bundle/config.json" "$D/bundle4/config.json"
run_ctr rootfs-c4 "$D/bundle4" "$D/out4"
kyb_on_exit 'kill_ctr rootfs-c4'
sleep 0.3
state4() { runc --root "$RUNC_ROOT" state rootfs-c4 | jq -r .status; }

expect_ok "checkpoint, the container keeps running" "$CTL" checkpoint -q -n "$NS" rootfs-c4
expect_eq "the dump starts with the container paused and its files saved" "paused diff-saved" \
	"$(cat "$D/witness" 2>&1)"
expect_eq "the container we paused runs again" "running" "$(state4)"
n=$(wc -l <"$D/out4")
kyb_wait 5 sh -c "[ \$(wc -l <'$D/out4') -gt $n ]" && pass "and keeps counting" || fail "and keeps counting"

runc --root "$RUNC_ROOT" pause rootfs-c4
expect_ok "checkpoint of a paused container (as containerd asks)" \
	"$CTL" checkpoint -q -n "$NS" rootfs-c4
expect_eq "its files saved before the dump" "paused diff-saved" "$(cat "$D/witness" 2>&1)"
expect_eq "a container paused by someone else stays paused" "paused" "$(state4)"
expect_fail "seen frozen in its cgroup, not paused again" grep -q "runc pause of rootfs-c4 failed" "$D/daemon.log"
runc --root "$RUNC_ROOT" resume rootfs-c4

touch "$D/fail-dump"
msg=$("$CTL" checkpoint -q -n "$NS" rootfs-c4 2>&1) &&
	fail "a failed dump fails the checkpoint" ||
	expect_contains "a failed dump fails the checkpoint" "$msg" "dump failed on purpose"
expect_eq "after a failed dump the container we paused runs again" "running" "$(state4)"
rm -f "$D/fail-dump"

# ---- a sparse file keeps its holes ------------------------------------------------------
# 4 GiB apparent, a few KiB on disk: rootfs-diff.tar stays small (GNU sparse
# entry), and GNU tar, like the shim's apply, gives back the same sparse file.
runc --root "$RUNC_ROOT" exec rootfs-c4 sh -c 'truncate -s 4G /sparse &&
	echo at-the-start | dd of=/sparse conv=notrunc 2>/dev/null &&
	echo in-the-middle | dd of=/sparse bs=1 seek=2147483648 conv=notrunc 2>/dev/null'
expect_eq "the container wrote a 4 GiB sparse file" 4294967296 "$(stat -c %s "$D/upper4/sparse")"
rc=0
out=$("$CTL" checkpoint --name sparse -n "$NS" rootfs-c4 2>"$D/ckpt5.err") || rc=$?
expect_eq "checkpoint with a 4 GiB sparse file succeeds" 0 "$rc" || cat "$D/ckpt5.err" >&2
ID5=$(echo "$out" | tail -n 1)
dir5=$STORE/checkpoints/$ID5
tsize=$(stat -c %s "$dir5/rootfs-diff.tar" 2>/dev/null || echo missing)
expect_ok "rootfs-diff.tar is small ($tsize bytes)" test "$tsize" -lt 1048576
expect_contains "GNU tar lists the real size and name" "$(tar -tvf "$dir5/rootfs-diff.tar" 2>&1)" \
	"4294967296"
mkdir -p "$D/x5"
expect_ok "GNU tar extracts it" tar -xf "$dir5/rootfs-diff.tar" -C "$D/x5"
expect_eq "same apparent size" 4294967296 "$(stat -c %s "$D/x5/sparse" 2>&1)"
expect_eq "same data at the start" at-the-start "$(head -n 1 "$D/x5/sparse")"
expect_eq "same data in the middle" in-the-middle \
	"$(dd if="$D/x5/sparse" bs=1 skip=2147483648 count=13 2>/dev/null)"
# The MiB at the start, around the data in the middle and at the end (reading
# all 4 GiB of zeros took half a minute of CPU).
for mib in 0 2048 4095; do
	expect_eq "same content in MiB $mib" \
		"$(dd if="$D/upper4/sparse" bs=1M skip=$mib count=1 2>/dev/null | md5sum)" \
		"$(dd if="$D/x5/sparse" bs=1M skip=$mib count=1 2>/dev/null | md5sum)"
done
expect_ok "still sparse ($(du -k "$D/x5/sparse" | cut -f1) KiB on disk)" \
	test "$(du -k "$D/x5/sparse" | cut -f1)" -lt 1024
expect_ok "export of the sparse checkpoint" "$CTL" export "$ID5" -o "$D/c5.tar"
if command -v checkpointctl >/dev/null 2>&1; then
	expect_ok "checkpointctl show reads it" checkpointctl show "$D/c5.tar"
	expect_ok "checkpointctl inspect reads it" checkpointctl inspect "$D/c5.tar"
else
	skip "checkpointctl on the sparse checkpoint" "checkpointctl not installed"
fi
rm -rf "$D/x5" "$D/c5.tar"

# ---- max_rootfs_diff_bytes: a writable layer over it fails the checkpoint cleanly ------
stop_daemon
printf 'max_rootfs_diff_bytes = 1M\n' >"$D/limit.conf"
"$BUILD/kybernated" --config "$D/limit.conf" --store "$STORE" --runc-root-base "$D/runc" -S "$SOCK" \
	>>"$D/daemon.log" 2>&1 &
DAEMON_PID=$!
kyb_wait 10 "$CTL" status >/dev/null || die "kybernated did not come back"
runc --root "$RUNC_ROOT" exec rootfs-c4 sh -c 'dd if=/dev/zero of=/big bs=1024 count=2048 2>/dev/null'
rows=$("$CTL" list --json | jq length)
dirs=$(ls "$STORE/checkpoints" | wc -l)
msg=$("$CTL" checkpoint -q -n "$NS" rootfs-c4 2>&1) && fail "a layer over the limit fails the checkpoint" ||
	expect_contains "a layer over the limit fails the checkpoint" "$msg" \
		"over the limit of 1048576 bytes (max_rootfs_diff_bytes)"
expect_contains "the message says how big the layer is" "$msg" "writable layer $D/upper4 is "
expect_eq "the container runs again" "running" "$(state4)"
expect_eq "no row left" "$rows" "$("$CTL" list --json | jq length)"
expect_eq "no directory left" "$dirs" "$(ls "$STORE/checkpoints" | wc -l)"
runc --root "$RUNC_ROOT" exec rootfs-c4 rm /big

# ---- kill -9 mid-checkpoint: the container is not left frozen ----------------------------
# The daemon pauses a running container before saving its writable layer. Killed
# at any step, the next start must resume it (the row says it ran) and remove
# the pending row and its directory; one paused by someone else stays paused.
# A runc wrapper stops where $D/stall-at says: after the pause, instead of the
# dump, or (a sparse 1 GiB ballast file added after the dump) in the checksum.
# The capture is a forked child of the daemon and may take only milliseconds:
# to be in it for sure when the kill comes, the daemon runs in a cpu cgroup of
# its own, cut to 1% of a CPU after the pause (the child inherits the cgroup)
# and given back after the kill. The dump stalls too should the kill be late.
stop_daemon
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
	CPU_CG=/sys/fs/cgroup/kyb-rootfs-$$
	grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control ||
		echo +cpu >/sys/fs/cgroup/cgroup.subtree_control || die "no cpu controller"
	CPU_LIMIT="echo '1000 100000' >$CPU_CG/cpu.max" CPU_UNLIMIT="echo max >$CPU_CG/cpu.max"
else
	CPU_CG=/sys/fs/cgroup/cpu/kyb-rootfs-$$
	CPU_LIMIT="echo 1000 >$CPU_CG/cpu.cfs_quota_us" CPU_UNLIMIT="echo -1 >$CPU_CG/cpu.cfs_quota_us"
fi
mkdir "$CPU_CG" || die "cannot make the cgroup $CPU_CG"
kyb_on_exit "stop_daemon; kyb_wait 5 rmdir '$CPU_CG'"
cat >"$D/stall-runc" <<EOF
#!/bin/sh
at=\$(cat "$D/stall-at" 2>/dev/null)
case " \$* " in
*" pause "*)
	runc "\$@" || exit
	[ "\$at" = pause ] && { echo \$\$ >"$D/stall.pid"; exec sleep 30; }
	[ "\$at" = capture ] && $CPU_LIMIT
	exit 0 ;;
*" checkpoint "*)
	case \$at in dump | capture) echo \$\$ >"$D/stall.pid"; exec sleep 30 ;; esac
	runc "\$@" || exit
	if [ "\$at" = checksum ]; then
		while [ \$# -gt 0 ] && [ "\$1" != --image-path ]; do shift; done
		truncate -s 1G "\$2/ballast.img"
	fi
	exit 0 ;;
esac
exec runc "\$@"
EOF
chmod +x "$D/stall-runc"
start_stall_daemon() {
	"$BUILD/kybernated" --config /dev/null --store "$STORE" --runc-root-base "$D/runc" -S "$SOCK" \
		--runc "$D/stall-runc" >>"$D/daemon.log" 2>&1 &
	DAEMON_PID=$!
	echo "$DAEMON_PID" >"$CPU_CG/cgroup.procs"
	kyb_wait 10 "$CTL" status >/dev/null || die "kybernated did not come back"
}
kill9_daemon() {
	kill -9 "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}
# catalog_consistent: no pending row, one directory per row, every row verifies.
catalog_consistent() {
	local rows dirs id
	[ "$("$CTL" list --json --state pending | jq length)" = 0 ] || {
		echo "pending rows left"
		return 1
	}
	rows=$("$CTL" list --json | jq -r '.[].id' | sort | tr '\n' ' ')
	dirs=$(ls "$STORE/checkpoints" | sort | tr '\n' ' ')
	[ "$rows" = "$dirs" ] || {
		echo "rows [$rows] != directories [$dirs]"
		return 1
	}
	for id in $rows; do
		"$CTL" inspect --verify "$id" >/dev/null 2>&1 || {
			echo "$id does not verify"
			return 1
		}
	done
}
counting4() {
	local n
	n=$(wc -l <"$D/out4")
	kyb_wait 5 sh -c "[ \$(wc -l <'$D/out4') -gt $n ]"
}
# pending_dir: the directory of the checkpoint in progress.
pending_dir() {
	local id
	id=$("$CTL" list --json --state pending 2>/dev/null | jq -r '.[0].id // empty')
	[ -n "$id" ] && echo "$STORE/checkpoints/$id"
}
# capture_running: the rootfs capture has begun, the dump not yet.
capture_running() {
	local dir
	dir=$(pending_dir) && [ -e "$dir/rootfs-diff.tar" ] && [ ! -s "$D/stall.pid" ]
}
# checksum_running: the dump is written and a child of the daemon (the checksum) runs.
checksum_running() {
	local dir
	dir=$(pending_dir) && [ -e "$dir/kybernate.json" ] &&
		[ -n "$(cat /proc/"$DAEMON_PID"/task/*/children 2>/dev/null | tr -d ' ')" ]
}
# A 128 MiB file in the writable layer makes the capture take a while.
runc --root "$RUNC_ROOT" exec rootfs-c4 dd if=/dev/zero of=/big bs=1M count=128 2>/dev/null
start_stall_daemon
for at in pause capture dump checksum; do
	rm -f "$D/stall.pid"
	echo "$at" >"$D/stall-at"
	("$CTL" checkpoint -q -n "$NS" rootfs-c4 >/dev/null 2>&1 &)
	case $at in
	pause | dump) kyb_wait 20 test -s "$D/stall.pid" || fail "kill at $at: runc reached the $at" ;;
	capture) kyb_wait_eval 20 capture_running || fail "kill at capture: the capture started" ;;
	checksum) kyb_wait_eval 60 checksum_running || fail "kill at checksum: the checksum started" ;;
	esac
	kill9_daemon
	eval "$CPU_UNLIMIT"
	[ "$at" = capture ] && { [ -s "$D/stall.pid" ] && fail "kill at capture came before the dump" ||
		pass "kill at capture came before the dump"; }
	if [ "$at" = checksum ]; then
		expect_eq "kill -9 in the checksum: the container runs already" "running" "$(state4)"
	else
		expect_eq "kill -9 at $at leaves the container paused" "paused" "$(state4)"
	fi
	rm -f "$D/stall-at"
	start_stall_daemon
	expect_eq "kill -9 at $at, restart: the container runs" "running" "$(state4)"
	counting4 && pass "kill -9 at $at, restart: it counts on" || fail "kill -9 at $at, restart: it counts on"
	msg=$(catalog_consistent) && pass "kill -9 at $at, restart: catalog consistent" ||
		fail "kill -9 at $at, restart: catalog consistent" "$msg"
	[ "$at" = checksum ] || expect_contains "kill -9 at $at, restart: logged the resume" \
		"$(tail -n 20 "$D/daemon.log")" "Resumed container rootfs-c4"
done
runc --root "$RUNC_ROOT" exec rootfs-c4 rm -f /big

# Paused by someone else (containerd) before the checkpoint: never resumed by us.
runc --root "$RUNC_ROOT" pause rootfs-c4
rm -f "$D/stall.pid"
echo dump >"$D/stall-at"
("$CTL" checkpoint -q -n "$NS" rootfs-c4 >/dev/null 2>&1 &)
kyb_wait 20 test -s "$D/stall.pid" || fail "kill of a paused container's checkpoint: the dump started"
kill9_daemon
rm -f "$D/stall-at"
start_stall_daemon
expect_eq "paused by someone else, kill -9 mid-dump, restart: stays paused" "paused" "$(state4)"
msg=$(catalog_consistent) && pass "paused by someone else: catalog consistent" ||
	fail "paused by someone else: catalog consistent" "$msg"
runc --root "$RUNC_ROOT" resume rootfs-c4

kyb_finish
