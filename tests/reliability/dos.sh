#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# A read_group member against kybernated (issue 9, hole 3), measured on a real
# daemon with real runc and CRIU. Not run by tests/run: it takes a few minutes
# and loads the machine. Three patterns from nobody (a read_group member):
#   1. 300 idle connections, held for 20 s (idle_timeout is 10 s here);
#   2. 32 connections that send list requests for 45 s without reading;
#   3. 300 `inspect --verify` of a checkpoint that takes long to hash, each
#      client gone after 1 s;
# while root checkpoints a busybox counter (leave running), lists, asks for the
# status and resolves another checkpoint, in a loop. Prints: root's requests
# served and failed, the daemon's RSS peak (VmHWM and sampled VmRSS), and the
# most hashing children seen at once (and after the clients left).
#
#   tests/reliability/dos.sh         (as root, after make)
. "$(dirname "$0")/../lib/common.sh"

require_root
require_cmd runc criu jq setpriv python3
require_build kybernated kybernatectl

D=$KYB_TMP
STORE=$D/store
SOCK_DIR=$(mktemp -d /run/kyb-dos.XXXXXX)
chmod 0755 "$SOCK_DIR"
kyb_on_exit "rm -rf --one-file-system '$SOCK_DIR'"
SOCK=$SOCK_DIR/kybernated.sock
export KYBERNATE_SOCKET=$SOCK
NS=dos
RUNC_ROOT=$D/runc/$NS
CTL=$BUILD/kybernatectl
AS_NOBODY=(setpriv --reuid 65534 --regid 65534 --clear-groups)

cat >"$D/kybernated.conf" <<EOF
read_group = 65534
durable = no
idle_timeout = 10s
EOF
"$BUILD/kybernated" --config "$D/kybernated.conf" --store "$STORE" -S "$SOCK" --runc-root-base "$D/runc" \
	>>"$D/daemon.log" 2>&1 &
DAEMON=$!
kyb_on_exit "kill $DAEMON 2>/dev/null; wait $DAEMON 2>/dev/null"
kyb_wait 10 "$CTL" status || die "kybernated did not come up: $(tail -n 20 "$D/daemon.log")"
grep -q "^Cpus_allowed" /proc/$DAEMON/status || die "no /proc/$DAEMON/status"

# ---- a busybox counter to checkpoint ----------------------------------------------
kyb_rootfs_build "$D/bundle/rootfs"
(cd "$D/bundle" && runc spec)
jq '.process.terminal = false
    | .process.args = ["sh", "-c", "i=0; while true; do echo $i; i=$((i+1)); sleep 0.1; done"]
    | .linux.namespaces |= map(select(.type != "network"))' \
	"$D/bundle/config.json" >"$D/bundle/config.json.new"
mv "$D/bundle/config.json.new" "$D/bundle/config.json"
mkdir -p "$RUNC_ROOT"
(true | runc --root "$RUNC_ROOT" run -d -b "$D/bundle" dos-c1 2>&1 | cat >>"$D/out") &
kyb_on_exit "runc --root '$RUNC_ROOT' delete -f dos-c1 2>/dev/null"
kyb_wait 10 test -s "$D/out" || die "container did not start: $(cat "$D/out")"

"$CTL" checkpoint -q --name resolvable -n "$NS" dos-c1 >/dev/null || die "first checkpoint failed"
BIG=$("$CTL" checkpoint -q --name big -n "$NS" dos-c1) || die "second checkpoint failed"
# A 32 GiB sparse file makes hashing `big` take many seconds (its checksum then
# differs: inspect --verify still answers, with checksum_ok false).
truncate -s 32G "$STORE/checkpoints/$BIG/checkpoint/pad.img"
"$CTL" pin resolvable >/dev/null && "$CTL" pin big >/dev/null || die "pin failed"
"$CTL" resolve -q --count-restore -n "$NS" resolvable >/dev/null || die "resolve fails before the load"

# The daemon's forked children (hashing; runc's and CRIU's processes are not).
hashing_children() {
	ps -o comm= --ppid "$DAEMON" 2>/dev/null | grep -c '^kybernated$'
}

# ---- measurements ------------------------------------------------------------------
# sampler: every 0.1 s the daemon's VmRSS (kB) and its hashing children.
sampler() {
	local rss kids max_rss=0 max_kids=0
	while [ ! -e "$D/stop-sampler" ]; do
		rss=$(awk '/^VmRSS:/ { print $2 }' /proc/$DAEMON/status 2>/dev/null)
		kids=$(hashing_children)
		[ "${rss:-0}" -gt "$max_rss" ] && max_rss=$rss
		[ "$kids" -gt "$max_kids" ] && max_kids=$kids
		echo "$max_rss $max_kids" >"$D/sampler"
		sleep 0.1
	done
}

# root_loop NAME: root's requests until $D/stop-root exists; counts in $D/root-NAME.
root_loop() {
	local ok=0 bad=0 i=0 cmd
	while [ ! -e "$D/stop-root" ]; do
		for cmd in "status" "list" "resolve -q --count-restore -n $NS resolvable" \
			"checkpoint -q -n $NS dos-c1"; do
			# shellcheck disable=SC2086
			if timeout 60 "$CTL" $cmd >/dev/null 2>>"$D/root-errors"; then
				ok=$((ok + 1))
			else
				bad=$((bad + 1))
				echo "$(date +%T) $cmd failed" >>"$D/root-errors"
			fi
		done
		i=$((i + 1))
		# keep the store small: drop the new checkpoints now and then
		[ $((i % 5)) -eq 0 ] && "$CTL" prune --keep 2 >/dev/null 2>&1
		echo "$ok $bad" >"$D/root-$1"
	done
	touch "$D/root-done-$1"
}

# pattern NAME: starts sampler and root loop, runs the pattern's command, stops
# them and reports.
report() {
	local name=$1 ok bad rss kids hwm
	read -r ok bad <"$D/root-$name"
	read -r rss kids <"$D/sampler"
	hwm=$(awk '/^VmHWM:/ { print $2 }' /proc/$DAEMON/status)
	log "$name: root served $ok, failed $bad; daemon VmRSS max ${rss} kB (VmHWM ${hwm} kB); hashing children max $kids"
	expect_eq "$name: every root request served" 0 "$bad"
	echo "$name root_ok=$ok root_failed=$bad rss_max_kb=$rss hwm_kb=$hwm children_max=$kids" >>"$D/results"
}

run_pattern() {
	local name=$1
	shift
	rm -f "$D/stop-root" "$D/stop-sampler"
	sampler &
	local sp=$!
	root_loop "$name" &
	local rp=$!
	"$@"
	touch "$D/stop-root" "$D/stop-sampler"
	wait "$rp" "$sp"
	report "$name"
}

# ---- 1. 300 idle connections ---------------------------------------------------------
idle_connections() {
	"${AS_NOBODY[@]}" python3 - "$SOCK" <<'EOF'
import socket, sys, time
socks = []
for _ in range(300):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    socks.append(s)
time.sleep(20)
alive = 0
for s in socks:
    s.setblocking(False)
    try:
        alive += s.recv(1) != b""
    except BlockingIOError:
        alive += 1
    except OSError:
        pass
print(f"idle: {alive} of 300 connections still open after 20 s", file=sys.stderr)
EOF
}
run_pattern idle idle_connections

# ---- 2. 32 connections sending without reading --------------------------------------
no_read() {
	"${AS_NOBODY[@]}" python3 - "$SOCK" <<'EOF'
import socket, sys, time, select
# Request{version: 1, id: 1, list: {}}
LIST = bytes([0x08, 0x01, 0x10, 0x01, 0x62, 0x00])
socks = []
for _ in range(32):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(sys.argv[1])
    s.setblocking(False)
    socks.append(s)
sent = dropped = 0
end = time.time() + 45
live = list(socks)
while time.time() < end and live:
    _, w, _ = select.select([], live, [], 0.5)
    for s in w:
        try:
            s.send(LIST)
            sent += 1
        except BlockingIOError:
            pass
        except OSError:
            live.remove(s)
            dropped += 1
print(f"no-read: {sent} requests sent, {dropped} of 32 connections dropped by the daemon", file=sys.stderr)
EOF
}
run_pattern no-read no_read

# ---- 3. 300 inspect --verify, then gone ----------------------------------------------
verify_then_go() {
	local i pids=()
	for i in $(seq 300); do
		"${AS_NOBODY[@]}" timeout 1 "$CTL" inspect --verify big >/dev/null 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
	# root's own checkpoints and resolves hash too: stop them, then count.
	touch "$D/stop-root"
	kyb_wait 120 test -e "$D/root-done-verify"
	sleep 1
	local left
	left=$(hashing_children)
	log "verify: hashing children once the clients (and root's loop) were gone: $left"
	expect_eq "verify: no hashing child left after the clients went" 0 "$left"
}
run_pattern verify verify_then_go

log "results:"
cat "$D/results" >&2
grep -i "disconnecting\|refusing" "$D/daemon.log" | awk '{ $1 = ""; print }' | sort | uniq -c | sort -rn | head -5 >&2 || true
kyb_finish
