#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# kybernated end to end against real runc and CRIU: a busybox counter started
# with runc directly (pipes for stdio) is checkpointed through the daemon,
# listed, inspected, resolved, restored by hand with `runc restore` from the
# resolved path, and counts on. Then the faults: bad references, a non-root
# peer, malformed/oversize/unknown-version datagrams, kill -9 in the middle of
# a checkpoint, a full store.
. "$(dirname "$0")/../lib/common.sh"

require_root
require_cmd runc criu jq setpriv perl busybox
require_build kybernated kybernatectl
criu check >/dev/null 2>&1 || skip_all "criu check fails here (CRIU >= 4 is needed: run scripts/setup.sh)"

D=$KYB_TMP
STORE=$D/store
# The socket's directory must be reachable by nobody for the SO_PEERCRED tests.
SOCK_DIR=$(mktemp -d /run/daemon-e2e.XXXXXX)
chmod 0755 "$SOCK_DIR"
kyb_on_exit "rm -rf --one-file-system '$SOCK_DIR'"
SOCK=$SOCK_DIR/kybernated.sock
export KYBERNATE_SOCKET=$SOCK
NS=daemon-e2e
RUNC_ROOT=$D/runc/$NS
CTL=$BUILD/kybernatectl
DAEMON_PID=

start_daemon() {
	"$BUILD/kybernated" --config /dev/null --store "$STORE" --runc-root-base "$D/runc" "$@" \
		>>"$D/daemon.log" 2>&1 &
	DAEMON_PID=$!
	kyb_wait 10 "$CTL" status || die "kybernated did not come up: $(tail -n 20 "$D/daemon.log")"
}

stop_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill "$DAEMON_PID" 2>/dev/null
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
}
kyb_on_exit 'stop_daemon'
kyb_on_exit 'cat "$D/daemon.log" >&2'

# ---- a busybox counter under runc -----------------------------------------------

kyb_rootfs_build "$D/bundle/rootfs"
(cd "$D/bundle" && runc spec)
# Host network (no netns to lock), no terminal, a counter every 0.1 s.
jq '.process.terminal = false
    | .process.args = ["sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done"]
    | .linux.namespaces |= map(select(.type != "network"))
    | .annotations = {"io.kubernetes.cri.sandbox-namespace": "tenant-a",
                      "io.kubernetes.cri.sandbox-name": "pod-a",
                      "io.kubernetes.cri.container-name": "counter",
                      "io.kubernetes.cri.image-name": "docker.io/kybernate/busybox:test"}' \
	"$D/bundle/config.json" >"$D/bundle/config.json.new"
mv "$D/bundle/config.json.new" "$D/bundle/config.json"
mkdir -p "$RUNC_ROOT"

# run_ctr ID OUT: starts the counter; stdio are pipes (CRIU cannot dump a
# container whose stdout is a regular file).
run_ctr() {
	(true | runc --root "$RUNC_ROOT" run -d -b "$D/bundle" "$1" 2>&1 | cat >>"$2") &
	kyb_wait 10 test -s "$2" || die "container $1 did not start: $(cat "$2")"
}
kill_ctr() {
	runc --root "$RUNC_ROOT" kill "$1" KILL 2>/dev/null
	sleep 0.2
	runc --root "$RUNC_ROOT" delete -f "$1" 2>/dev/null
}
kyb_on_exit 'for c in daemon-c1 daemon-c2 daemon-c3; do kill_ctr $c; done'

start_daemon

# One daemon per store and per socket.
out=$("$BUILD/kybernated" --config /dev/null --store "$STORE" -S "$D/other.sock" 2>&1)
expect_contains "second daemon on the same store refused" "$out" "Another kybernated is using the store"
out=$("$BUILD/kybernated" --config /dev/null --store "$D/other-store" 2>&1)
expect_contains "second daemon on the same socket refused" "$out" "Address already in use"
expect_ok "first daemon still serves" "$CTL" status

# allowed_restore_dirs over the store (here: its parent, and the store through a
# symlink) would let any tenant restore any checkpoint by path: refused at start.
ln -sfn "$STORE" "$D/store-link"
for dirs in "$D" "$D/store-link/checkpoints"; do
	printf 'allowed_restore_dirs = %s\n' "$dirs" >"$D/overlap.conf"
	rc=0
	out=$("$BUILD/kybernated" --config "$D/overlap.conf" --store "$STORE" -S "$D/overlap.sock" 2>&1) || rc=$?
	expect_eq "allowed_restore_dirs $dirs over the store: start refused (exit 1)" 1 "$rc"
	expect_contains "allowed_restore_dirs $dirs over the store: says why" "$out" "is the checkpoint store"
done

run_ctr daemon-c1 "$D/out1"
sleep 0.5

# ---- checkpoint, list, inspect ------------------------------------------------------

rc=0
out=$("$CTL" checkpoint --exit --name first -n "$NS" daemon-c1 2>"$D/ckpt.err") || rc=$?
expect_eq "checkpoint through kybernated succeeds" "0" "${rc:-0}" || cat "$D/ckpt.err" >&2
CKPT=$(echo "$out" | tail -n 1)
expect_eq "checkpoint id is 32 hex characters" "1" "$([[ $CKPT =~ ^[0-9a-f]{32}$ ]] && echo 1)"
expect_contains "checkpoint reported progress" "$(cat "$D/ckpt.err")" "runc"
sleep 0.3 # let cat drain the pipe of the stopped container
last=$(tail -n 1 "$D/out1")
log "counter stopped at $last"

json=$("$CTL" list --json)
expect_eq "list shows one ready checkpoint" "ready" "$(echo "$json" | jq -r '.[0].state')"
expect_eq "list: k8s namespace from the CRI annotations" "tenant-a" "$(echo "$json" | jq -r '.[0].k8s_namespace // .[0].k8sNamespace')"
expect_eq "list: image from the CRI annotations" "docker.io/kybernate/busybox:test" \
	"$(echo "$json" | jq -r '.[0].image_ref // .[0].imageRef')"
expect_eq "list filter by pod" "1" "$("$CTL" list --json -p pod-a | jq length)"
expect_eq "list filter by other pod" "0" "$("$CTL" list --json -p pod-b | jq length)"

dir=$STORE/checkpoints/$CKPT
for f in checkpoint/inventory.img config.dump spec.dump stats-dump kybernate.json; do
	expect_ok "checkpoint directory has $f" test -f "$dir/$f"
done
expect_fail "work directory was removed" test -e "$dir/work"
expect_eq "config.dump names the container" "daemon-c1" "$(jq -r .id "$dir/config.dump")"

ins=$("$CTL" inspect --json first 2>&1)
expect_contains "inspect by name shows the id" "$ins" "$CKPT"

# ---- resolve and restore by hand ----------------------------------------------------

path=$("$CTL" resolve -q --count-restore -n "$NS" --k8s-namespace tenant-a "${CKPT:0:8}")
expect_eq "resolve returns the image directory" "$dir/checkpoint" "$path"
expect_eq "restore count incremented" "1" "$("$CTL" list --json | jq -r '.[0].restore_count // .[0].restoreCount')"

runc --root "$RUNC_ROOT" delete -f daemon-c1 2>/dev/null
(true | runc --root "$RUNC_ROOT" restore -d --image-path "$path" --work-path "$D/restore-work" \
	-b "$D/bundle" daemon-c1 2>&1 | cat >>"$D/out2") &
kyb_wait 10 test -s "$D/out2"
sleep 0.3
first=$(head -n 1 "$D/out2")
expect_eq "restored counter continues where it stopped" "$((last + 1))" "$first" ||
	log "out2: $(head -n 5 "$D/out2")"
kill_ctr daemon-c1

# ---- export and import (the CLI tars the directory the daemon names) ----------------

expect_ok "export" "$CTL" export "$CKPT" -o "$D/c.tar"
imp=$("$CTL" import --name imported --json "$D/c.tar" 2>&1)
expect_eq "import adopts the archive as a ready checkpoint" "ready" "$(echo "$imp" | jq -r .state)" ||
	log "import: $imp"
IMP=$(echo "$imp" | jq -r .id)
expect_ne "import got a new id" "$CKPT" "$IMP"
expect_eq "import takes the identity from the archive" "tenant-a" \
	"$(echo "$imp" | jq -r '.k8s_namespace // .k8sNamespace')"
expect_eq "no staging directory left" "" "$(ls "$STORE/staging")"
expect_eq "imported checkpoint resolves (checksum verified)" "$STORE/checkpoints/$IMP/checkpoint" \
	"$("$CTL" resolve -q -n "$NS" --k8s-namespace tenant-a imported)"
expect_ok "delete the imported one" "$CTL" delete imported

# ---- references and tenant rules ------------------------------------------------------

expect_fail "resolve ../ refused" "$CTL" resolve -n "$NS" --k8s-namespace tenant-a "../$CKPT"
msg=$("$CTL" resolve -n "$NS" --k8s-namespace tenant-a /etc 2>&1)
expect_contains "absolute path outside allowed dirs refused" "$msg" "allowed_restore_dirs"
msg=$("$CTL" resolve -n "$NS" --k8s-namespace tenant-a 0123456789abcdef0123456789abcdef 2>&1)
expect_contains "unknown id refused" "$msg" "no checkpoint"
# Another tenant's checkpoint looks exactly like a missing one: same exit code and
# message as for a reference nobody has, naming nothing of the checkpoint.
missing() { # REF: what a tenant that sees nothing gets
	"$CTL" resolve -n nobody-ns --k8s-namespace nobody "$1" 2>&1
	echo "rc=$?"
}
other() { # NS K8S_NS REF
	"$CTL" resolve -n "$1" --k8s-namespace "$2" "$3" 2>&1
	echo "rc=$?"
}
expect_eq "other Kubernetes namespace: as if missing" "$(missing "$CKPT")" "$(other "$NS" tenant-b "$CKPT")"
expect_eq "other containerd namespace: as if missing" "$(missing "$CKPT")" "$(other other-ns tenant-a "$CKPT")"
expect_eq "other tenant by name: as if missing" "$(missing first)" "$(other "$NS" tenant-b first)"
expect_eq "other tenant by short id: as if missing" "$(missing "${CKPT:0:8}")" \
	"$(other "$NS" tenant-b "${CKPT:0:8}")"
msg=$(other "$NS" tenant-b "${CKPT:0:8}")
expect_eq "refusal by short id names no id" "" "$(echo "$msg" | grep -o "$CKPT")"
expect_eq "other tenant by namespace/pod/container: as if missing" \
	"$(missing tenant-a/pod-a/counter)" "$(other "$NS" tenant-b tenant-a/pod-a/counter)"
msg=$(other "$NS" tenant-b tenant-a/pod-a/counter)
expect_eq "refusal by namespace/pod/container names no id" "" "$(echo "$msg" | grep -o "$CKPT")"
msg=$("$CTL" resolve -n "$NS" --k8s-namespace tenant-a --image-ref docker.io/library/nginx:1.25 "$CKPT" 2>&1)
expect_contains "other image refused" "$msg" "image mismatch"
expect_ok "same image, short form, accepted" "$CTL" resolve -n "$NS" --k8s-namespace tenant-a \
	--image-ref kybernate/busybox:test "$CKPT"
msg=$("$CTL" resolve -n "$NS" --k8s-namespace tenant-a "$(printf 'a\tb')" 2>&1)
expect_contains "control characters refused" "$msg" "control characters"
expect_eq "namespace/pod/container resolves the newest" "$dir/checkpoint" \
	"$("$CTL" resolve -q -n "$NS" --k8s-namespace tenant-a tenant-a/pod-a/counter)"

# A changed file makes resolve refuse.
cp "$dir/config.dump" "$D/config.dump.bak"
echo '{}' >"$dir/config.dump"
msg=$("$CTL" resolve -n "$NS" --k8s-namespace tenant-a "$CKPT" 2>&1)
expect_contains "tampered checkpoint refused" "$msg" "verification"
cp "$D/config.dump.bak" "$dir/config.dump"

# ---- peers that are not root -----------------------------------------------------------

msg=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" status 2>&1)
expect_contains "socket mode keeps nobody out" "$msg" "ermission denied"
chmod 0666 "$SOCK"
msg=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" delete "$CKPT" 2>&1)
expect_contains "SO_PEERCRED: nobody may not delete" "$msg" "uid 65534"
msg=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" list 2>&1)
expect_contains "SO_PEERCRED: nobody may not list without read_group" "$msg" "uid 65534"
chmod 0600 "$SOCK"
expect_eq "checkpoint still there" "1" "$("$CTL" list --json | jq length)"

# A read_group member may list but not change anything.
stop_daemon
start_daemon --read-group=nogroup
expect_eq "read_group: socket is group accessible" "660 nogroup" "$(stat -c '%a %G' "$SOCK")"
expect_eq "read_group member may list" "1" \
	"$(setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" list --json | jq length)"
msg=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" delete "$CKPT" 2>&1)
expect_contains "read_group member may not delete" "$msg" "uid 65534"
stop_daemon
start_daemon

# ---- raw datagrams: malformed, oversize, unknown version --------------------------------

# raw HEXBYTES|big: sends one datagram, prints the response's error field.
raw() {
	perl -MSocket -e '
		socket(my $s, AF_UNIX, SOCK_SEQPACKET, 0) or die "socket: $!";
		connect($s, pack_sockaddr_un($ARGV[0])) or die "connect: $!";
		my $m = $ARGV[1] eq "big" ? "\x0a" x 150000 : pack("H*", $ARGV[1]);
		defined(send($s, $m, 0)) or die "send: $!";
		my $r; defined(recv($s, $r, 1 << 20, 0)) or die "recv: $!";
		# Find field 3 (error, varint) among the top-level fields.
		my ($i, $err) = (0, 0);
		my $varint = sub { my ($v, $sh) = (0, 0); while (1) { my $b = ord(substr($r, $i++, 1));
			$v |= ($b & 0x7f) << $sh; $sh += 7; last unless $b & 0x80 } $v };
		while ($i < length $r) { my $k = $varint->(); my ($f, $t) = ($k >> 3, $k & 7);
			if ($t == 0) { my $v = $varint->(); $err = $v if $f == 3 }
			elsif ($t == 2) { my $l = $varint->(); $i += $l } else { last } }
		print "$err\n";' "$SOCK" "$1"
}
expect_eq "malformed datagram gets EBADMSG" "74" "$(raw ffffffff)"
expect_eq "oversize datagram gets EMSGSIZE" "90" "$(raw big)"
# version = 2, op = status
expect_eq "unknown version gets EPROTONOSUPPORT" "93" "$(raw 08028a0100)"
# version = 1, no op
expect_eq "request without op gets EOPNOTSUPP" "95" "$(raw 0801)"
expect_ok "daemon keeps serving after bad input" "$CTL" status

# ---- kill -9 in the middle of a checkpoint ---------------------------------------------

# A runc wrapper that stalls the checkpoint step (and records its pid) so the
# daemon can be killed while the row is pending.
cat >"$D/slow-runc" <<EOF
#!/bin/sh
for a in "\$@"; do
	if [ "\$a" = checkpoint ]; then echo \$\$ >"$D/slow.pid"; sleep 30; exit 1; fi
done
exec runc "\$@"
EOF
chmod +x "$D/slow-runc"
stop_daemon
start_daemon --runc "$D/slow-runc"
run_ctr daemon-c2 "$D/out3"
("$CTL" checkpoint -q -n "$NS" daemon-c2 >/dev/null 2>&1 &)
kyb_wait 10 test -s "$D/slow.pid" || fail "slow checkpoint started"
pending=$("$CTL" list --json --state pending | jq -r '.[0].id')
expect_eq "row is pending while runc runs" "1" "$([[ $pending =~ ^[0-9a-f]{32}$ ]] && echo 1)"
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
kyb_wait 5 sh -c "! kill -0 $(cat "$D/slow.pid")" && pass "runc dies with the daemon (no orphan)" ||
	fail "runc dies with the daemon (no orphan)"
kill "$(cat "$D/slow.pid")" 2>/dev/null
# What an interrupted CRIU run can leave: a directory without a row holding a
# bind mount of someone's files (the rm -rf-through-mounts trap), and a
# half-unpacked import.
mkdir -p "$D/victim" "$STORE/checkpoints/stray/work/criu-root" "$STORE/staging/half"
echo precious >"$D/victim/file"
mount --bind "$D/victim" "$STORE/checkpoints/stray/work/criu-root"
kyb_on_exit "umount -l '$STORE/checkpoints/stray/work/criu-root' 2>/dev/null"
start_daemon
expect_fail "restart removed the directory without a row" test -e "$STORE/checkpoints/stray"
expect_eq "clean-up did not delete through the mount" "precious" "$(cat "$D/victim/file")"
expect_fail "restart removed the unfinished import" test -e "$STORE/staging/half"
expect_eq "restart removed the pending row" "0" "$("$CTL" list --json --state pending | jq length)"
expect_fail "restart removed the pending directory" test -e "$STORE/checkpoints/$pending"
expect_contains "restart logged the clean-up" "$(cat "$D/daemon.log")" "Removing checkpoint $pending"
expect_eq "ready checkpoint survived kill -9" "ready" "$("$CTL" list --json | jq -r '.[0].state')"

# SIGTERM while a checkpoint runs: the daemon stops accepting, lets the
# operation end (here: fail, as the stalled runc is killed), then exits.
stop_daemon
rm -f "$D/slow.pid"
start_daemon --runc "$D/slow-runc"
("$CTL" checkpoint -q -n "$NS" daemon-c2 >/dev/null 2>&1 &)
kyb_wait 10 test -s "$D/slow.pid" || fail "slow checkpoint started again"
kill -TERM "$DAEMON_PID"
sleep 1
expect_ok "SIGTERM: daemon waits for the running checkpoint" kill -0 "$DAEMON_PID"
kill "$(cat "$D/slow.pid")" 2>/dev/null
kyb_wait 10 sh -c "! kill -0 $DAEMON_PID" && pass "SIGTERM: daemon exits once it ended" ||
	fail "SIGTERM: daemon exits once it ended"
wait "$DAEMON_PID" 2>/dev/null
DAEMON_PID=
start_daemon
expect_eq "no row left by the interrupted checkpoint" "1" "$("$CTL" list --json | jq length)"

# ---- delete, pin, prune ---------------------------------------------------------------

expect_ok "pin" "$CTL" pin "$CKPT"
expect_fail "delete of a pinned checkpoint refused" "$CTL" delete "$CKPT"
expect_ok "unpin" "$CTL" unpin "$CKPT"
expect_ok "delete" "$CTL" delete "$CKPT"
expect_fail "directory gone after delete" test -e "$dir"

# ---- kill -9 after the dump, before ready: the next start completes it -------------

# The daemon is killed once runc has finished (kybernate.json is written) and
# the checksum child runs. A runc wrapper adds a sparse 1 GiB ballast file to
# the images after the dump, so the checksum reads zeros for a good while
# instead of the few milliseconds real images of this size take. With --exit
# the container is gone by then: the files are all that is left of it, so they
# must become a ready checkpoint.
cat >"$D/ballast-runc" <<EOF
#!/bin/sh
runc "\$@" || exit
case " \$* " in
*" checkpoint "*)
	while [ \$# -gt 0 ] && [ "\$1" != --image-path ]; do shift; done
	truncate -s 1G "\$2/ballast.img" ;;
esac
EOF
chmod +x "$D/ballast-runc"
stop_daemon
start_daemon --runc "$D/ballast-runc"
run_ctr daemon-c3 "$D/out4"
kyb_wait 30 sh -c "[ \$(wc -l <'$D/out4') -ge 3 ]" || fail "container started"
("$CTL" checkpoint -q --exit -n "$NS" daemon-c3 >/dev/null 2>&1 &)
dumped() {
	ls "$STORE"/checkpoints/*/kybernate.json >/dev/null 2>&1 &&
		[ -n "$(cat /proc/"$DAEMON_PID"/task/*/children 2>/dev/null | tr -d ' ')" ]
}
if kyb_wait_eval 60 dumped; then
	kill -9 "$DAEMON_PID"
	wait "$DAEMON_PID" 2>/dev/null
	DAEMON_PID=
	last=$(tail -n 1 "$D/out4")
	start_daemon
	expect_contains "restart completed the dumped checkpoint" "$(cat "$D/daemon.log")" "Completed checkpoint"
	big=$("$CTL" list --json --container-id daemon-c3 | jq -r '.[0].id')
	expect_eq "the completed checkpoint is ready" "ready" \
		"$("$CTL" list --json --container-id daemon-c3 | jq -r '.[0].state')"
	bpath=$("$CTL" resolve -q --count-restore -n "$NS" --k8s-namespace tenant-a "$big")
	runc --root "$RUNC_ROOT" delete -f daemon-c3 2>/dev/null
	(true | runc --root "$RUNC_ROOT" restore -d --image-path "$bpath" --work-path "$D/restore-work3" \
		-b "$D/bundle" daemon-c3 2>&1 | cat >>"$D/out5") &
	kyb_wait 20 test -s "$D/out5"
	expect_eq "restored from the completed checkpoint, the count goes on" "$((last + 1))" \
		"$(head -n 1 "$D/out5")"
	kill_ctr daemon-c3
	expect_ok "delete the completed checkpoint" "$CTL" delete "$big"
else
	fail "checkpoint reached the checksum step"
fi
stop_daemon

# ---- a nearly full store ----------------------------------------------------------------

SMALL=$D/small
mkdir -p "$SMALL"
mount -t tmpfs -o size=400k tmpfs "$SMALL" || die "cannot mount a tmpfs"
kyb_on_exit "umount -l '$SMALL'"
stop_daemon
STORE=$SMALL/store
start_daemon
msg=$("$CTL" checkpoint -q -n "$NS" daemon-c2 2>&1)
rc=$?
expect_ne "checkpoint into a full store fails" "0" "$rc"
expect_contains "failure names the CRIU log" "$msg" "CRIU log kept at"
expect_eq "no row left after the failure" "0" "$("$CTL" list --json | jq length)"
expect_eq "no directory left after the failure" "" "$(ls "$STORE/checkpoints")"
expect_ok "daemon still serves after the failure" "$CTL" status
expect_eq "container still running after the failed checkpoint" "running" \
	"$(runc --root "$RUNC_ROOT" state daemon-c2 | jq -r .status)"
stop_daemon

kyb_finish
