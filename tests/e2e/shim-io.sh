#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# The shim's stdio (shim/io.c) under real containerd 1.6, 1.7 and 2.1 through ctr:
# FIFOs both ways, stdin EOF with and without CloseIO, large output with
# backpressure, file:// and binary:// log URIs, and terminals.
. "$(dirname "$0")/../lib/common.sh"
require_root
require_cmd runc ctr script
require_build containerd-shim-kybernate-v1
kyb_image_build

RT=$KYB_RUNTIME
ctrx() { timeout -s KILL 60 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" "$@"; }

run_suite() {
	local v=$1 n t out
	n=kybio${v/./}
	t="[$v]"
	if [ "$v" != 1.6 ] && ! ctd_have "$v"; then
		skip "$t stdio suite" "containerd $v not installed (scripts/setup.sh)"
		return
	fi
	ctd_start "$n" "$v"
	kyb_image_import "$KYB_NS"

	# stdout and stderr FIFOs are kept apart
	out=$(ctrx run --rm --runtime "$RT" "$KYB_BUSYBOX" io1 sh -c 'echo to-out; echo to-err >&2' 2>/dev/null)
	expect_eq "$t stdout FIFO" to-out "$out"
	out=$(ctrx run --rm --runtime "$RT" "$KYB_BUSYBOX" io2 sh -c 'echo to-out; echo to-err >&2' 2>&1 >/dev/null)
	expect_eq "$t stderr FIFO" to-err "$out"

	# stdin: ctr hits EOF during create and sends no CloseIO; the EOF must still arrive
	out=$(echo data | ctrx run --rm --runtime "$RT" "$KYB_BUSYBOX" io3 cat 2>&1)
	expect_eq "$t piped stdin ends" data "$out"
	out=$( (echo l1; sleep 1; echo l2) | ctrx run --rm --runtime "$RT" "$KYB_BUSYBOX" io4 sh -c 'cat; echo end-$?' 2>&1)
	expect_eq "$t slow stdin ends after CloseIO" "$(printf 'l1\nl2\nend-0')" "$out"

	# more output than every buffer on the way holds, in order
	out=$(ctrx run --rm --runtime "$RT" "$KYB_BUSYBOX" io5 seq 1 300000 2>&1 | md5sum)
	expect_eq "$t large output intact" "$(seq 1 300000 | md5sum)" "$out"

	# file://
	ctrx run --rm --runtime "$RT" --log-uri "file://$KYB_TMP/$n/sub/out.log" "$KYB_BUSYBOX" io6 \
		sh -c 'echo to-file; echo err-file >&2' >/dev/null 2>&1
	out=$(sort "$KYB_TMP/$n/sub/out.log" 2>&1)
	expect_eq "$t file:// gets stdout and stderr" "$(printf 'err-file\nto-file')" "$out"

	# binary://: arguments from the query, CONTAINER_ID/CONTAINER_NAMESPACE only, fds 3/4/5
	cat >"$KYB_TMP/logger.sh" <<'SH'
#!/bin/sh
/usr/bin/env | /usr/bin/sort > "$2.env"
echo "$*" > "$2.args"
printf R >&5
exec 5>&-
/bin/cat <&4 > "$2.err" &
/bin/cat <&3 > "$2.out"
wait
SH
	chmod +x "$KYB_TMP/logger.sh"
	ctrx run --rm --runtime "$RT" --log-uri "binary://$KYB_TMP/logger.sh?out=$KYB_TMP/$n-bin" "$KYB_BUSYBOX" io7 \
		sh -c 'echo bin-out; echo bin-err >&2' >/dev/null 2>&1
	kyb_wait 10 test -s "$KYB_TMP/$n-bin.err"
	expect_eq "$t binary:// stdout" bin-out "$(cat "$KYB_TMP/$n-bin.out" 2>&1)"
	expect_eq "$t binary:// stderr" bin-err "$(cat "$KYB_TMP/$n-bin.err" 2>&1)"
	expect_eq "$t binary:// args" "out $KYB_TMP/$n-bin" "$(cat "$KYB_TMP/$n-bin.args" 2>&1)"
	out=$(grep -v '^PWD=' "$KYB_TMP/$n-bin.env" 2>&1)
	expect_eq "$t binary:// environment" "$(printf 'CONTAINER_ID=io7\nCONTAINER_NAMESPACE=%s' "$KYB_NS")" "$out"

	# terminals: run -t and exec -t, input and output through the pty
	# exec: timeout must be the session leader script starts, or its own process
	# group is not the terminal's foreground and ctr stops (SIGTTOU) on setting
	# raw mode; /bin/sh (dash, when SHELL is unset) would not exec it by itself
	out=$(script -qec "exec timeout -s KILL 30 $CTD_CTR --address $CTD_ADDR -n $KYB_NS run -t --rm --runtime $RT $KYB_BUSYBOX io8 sh -c 'tty; echo ok-run-tty'" /dev/null 2>&1 | tr -d '\r')
	expect_contains "$t run -t has a pty" "$out" /dev/pts/
	expect_contains "$t run -t output" "$out" ok-run-tty
	ctrx run -d --runtime "$RT" "$KYB_BUSYBOX" io9 sleep 1000 >/dev/null
	out=$(printf 'typed\n' | script -qec "exec timeout -s KILL 30 $CTD_CTR --address $CTD_ADDR -n $KYB_NS task exec -t --exec-id t1 io9 sh -c 'read x; echo got-\$x'" /dev/null 2>&1 | tr -d '\r')
	expect_contains "$t exec -t input reaches the process" "$out" got-typed
	ctr_ task kill -s KILL io9 >/dev/null 2>&1
	kyb_wait 10 sh -c "! \"$CTD_CTR\" --address \"$CTD_ADDR\" -n \"$KYB_NS\" task ls | grep -q '^io9 .*RUNNING'"
	ctr_ task rm io9 >/dev/null 2>&1
	ctr_ container rm io9 >/dev/null 2>&1

	ctd_stop "$n"
}

run_suite 1.6
run_suite 1.7
run_suite 2.1
kyb_finish
