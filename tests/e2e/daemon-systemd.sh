#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
#
# kybernated and systemd: the units pass `systemd-analyze verify` (after the
# @SBINDIR@ substitution `make install` does), the daemon runs socket-activated
# through systemd-socket-activate (SOCK_SEQPACKET), and it sends READY=1 on
# $NOTIFY_SOCKET only once its catalog is open.
. "$(dirname "$0")/../lib/common.sh"

require_root
require_cmd systemd-analyze systemd-socket-activate perl
require_build kybernated kybernatectl

D=$KYB_TMP
CTL=$BUILD/kybernatectl

# ---- units ------------------------------------------------------------------------

mkdir -p "$D/units"
for u in kybernated.service kybernated.socket; do
	sed "s|@SBINDIR@|$BUILD|g; s|@BINDIR@|$BUILD|g" "$KYB_TOP/systemd/$u" >"$D/units/$u"
done
expect_ok "systemd-analyze verify accepts the units" \
	systemd-analyze verify "$D/units/kybernated.service" "$D/units/kybernated.socket"
expect_contains "service is Type=notify" "$(cat "$D/units/kybernated.service")" "Type=notify"
expect_contains "socket is a SEQPACKET listener" "$(cat "$D/units/kybernated.socket")" \
	"ListenSequentialPacket=/run/kybernate/kybernated.sock"

# ---- socket activation ---------------------------------------------------------------

SOCK=$D/activated.sock
systemd-socket-activate --seqpacket -l "$SOCK" \
	"$BUILD/kybernated" --config /dev/null --store "$D/store" >"$D/activate.log" 2>&1 &
ACT_PID=$!
kyb_on_exit "kill $ACT_PID 2>/dev/null; wait $ACT_PID 2>/dev/null"
kyb_wait 10 test -S "$SOCK" || die "systemd-socket-activate did not listen"
out=$("$CTL" -s "$SOCK" status 2>&1)
expect_contains "socket-activated daemon answers" "$out" "protocol 1"
expect_contains "daemon used the socket from systemd" "$(cat "$D/activate.log")" "from systemd"
expect_ok "second connection works too" "$CTL" -s "$SOCK" list
kill "$ACT_PID" 2>/dev/null
wait "$ACT_PID" 2>/dev/null

# ---- Type=notify -------------------------------------------------------------------------

# A tiny notify listener: prints the first datagram.
NSOCK=$D/notify.sock
perl -MSocket -e '
	socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die; bind($s, pack_sockaddr_un($ARGV[0])) or die;
	$SIG{ALRM} = sub { print "timeout\n"; exit 1 }; alarm 10;
	my $m; recv($s, $m, 4096, 0); print "$m\n";' "$NSOCK" >"$D/notify.out" &
NPID=$!
kyb_wait 5 test -S "$NSOCK"
NOTIFY_SOCKET=$NSOCK "$BUILD/kybernated" --config /dev/null --store "$D/store" -S "$D/n.sock" \
	>"$D/notify-daemon.log" 2>&1 &
DPID=$!
kyb_on_exit "kill $DPID 2>/dev/null; wait $DPID 2>/dev/null"
wait "$NPID"
expect_contains "daemon notifies READY=1" "$(cat "$D/notify.out")" "READY=1"
expect_ok "and it serves once ready" "$CTL" -s "$D/n.sock" status

kyb_finish
