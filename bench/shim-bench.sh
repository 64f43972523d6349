#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Shim benchmark: containerd-shim-kybernate-v1 side by side with
# containerd-shim-runc-v2, in one run on the same private containerd.
#
#   BUILD=$PWD/build bench/shim-bench.sh [--ctd 1.6|1.7] [--runs N] [--many N]
#                                         [--no-docs] [--details]
#
# Measures (interleaved ours/runc where it is about time):
#   1. memory per shim with --many (20) containers running (ctr run -d ... sleep):
#      Rss and Pss from /proc/PID/smaps_rollup of every shim, mean and median;
#   2. memory of the one shim serving a "pod" of 1, 5 and 20 containers
#      (annotation io.kubernetes.cri.sandbox-id=<first container's id>, which
#      both shims use to group a pod's containers into one shim);
#   3. wall time of `ctr run --rm IMAGE ID true` (--runs, default 15, each, interleaved);
#   4. `ctr task exec` round trip (exec `true` in a running container).
# Prints a markdown table and replaces the "## Shim" section of
# docs/BENCHMARKS.md (unless --no-docs). Needs root and a built shim in $BUILD.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR source=../tests/lib/common.sh
. "$(dirname "$0")/../tests/lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

CTD_V=1.6
RUNS=15
MANY=20
POD_SIZES="1 5 20"
WRITE_DOCS=1
DETAILS=0
CMDLINE="bench/shim-bench.sh${*:+ $*}"

usage() {
	sed -n '4,19p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case $1 in
	--ctd)
		CTD_V=${2:-}
		shift
		;;
	--runs)
		RUNS=${2:-}
		shift
		;;
	--many)
		MANY=${2:-}
		shift
		;;
	--no-docs) WRITE_DOCS=0 ;;
	--details) DETAILS=1 ;;
	-h | --help) usage 0 ;;
	*)
		echo "unknown argument: $1" >&2
		usage 2 >&2
		;;
	esac
	shift
done
case $CTD_V in 1.6 | 1.7) ;; *) die "--ctd must be 1.6 or 1.7" ;; esac
if ! [[ $RUNS =~ ^[0-9]{1,3}$ ]] || [ "$RUNS" -lt 1 ] || [ "$RUNS" -gt 200 ]; then die "--runs must be 1..200"; fi
if ! [[ $MANY =~ ^[0-9]{1,3}$ ]] || [ "$MANY" -lt 1 ] || [ "$MANY" -gt 100 ]; then die "--many must be 1..100"; fi

require_root
require_cmd runc ctr awk sort
require_build containerd-shim-kybernate-v1
kyb_image_build

OURS_BIN=containerd-shim-kybernate-v1
RUNC_BIN=containerd-shim-runc-v2
NAME=bench-shim${CTD_V/./}
T0=$SECONDS
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- helpers ----------------------------------------------------------------------

# rt_of KIND: the runtime name for "ours" or "runc".
rt_of() { if [ "$1" = ours ]; then echo "$KYB_RUNTIME"; else echo "$KYB_RUNC_RUNTIME"; fi; }
bin_of() { if [ "$1" = ours ]; then echo "$OURS_BIN"; else echo "$RUNC_BIN"; fi; }

# ctrt ARGS...: ctr on our instance with a timeout (ctr_ is a function: timeout cannot run it).
ctrt() { timeout 120 "$CTD_CTR" --address "$CTD_ADDR" -n "$KYB_NS" "$@"; }

# shim_pids KIND: pids of the long-lived shims of that kind serving our containerd.
shim_pids() {
	local b p
	b=$(bin_of "$1")
	for p in $(_ctd_shim_pids "$CTD_ADDR"); do
		[ "$(basename "$(readlink "/proc/$p/exe" 2>/dev/null)")" = "$b" ] && echo "$p"
	done
	return 0
}

# mem PID: "RSS_KB PSS_KB USS_KB" from smaps_rollup (USS: Private_Clean + Private_Dirty).
mem() {
	awk '$1 == "Rss:" { r = $2 } $1 == "Pss:" { p = $2 } $1 ~ /^Private_(Clean|Dirty):$/ { u += $2 }
		END { if (r == "" || p == "") exit 1; print r, p, u }' "/proc/$1/smaps_rollup"
}

# stats: numbers on stdin -> "n mean median min max".
stats() {
	sort -n | awk '{ v[NR] = $1; s += $1 }
		END {
			if (NR == 0) { print 0, 0, 0, 0, 0; exit }
			m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "%d %.1f %.1f %.1f %.1f\n", NR, s / NR, m, v[1], v[NR]
		}'
}

# order I: who goes first alternates from one round to the next.
order() { if [ $(($1 % 2)) -eq 1 ]; then echo ours runc; else echo runc ours; fi; }

mb() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }
ms_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }

# top_mappings PID: the mappings with the largest Pss (kB), for --details.
top_mappings() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { name = ($6 == "" ? "[anon]" : $6) }
		$1 == "Pss:" { pss[name] += $2 } $1 == "Rss:" { rss[name] += $2 }
		$1 == "Private_Dirty:" { pd[name] += $2 }
		END { for (n in pss) printf "    %6d kB Pss %6d kB Rss %6d kB Private_Dirty  %s\n", pss[n], rss[n], pd[n], n }' \
		"/proc/$1/smaps" | sort -rn | head -n 14 >&2
	awk '$1 ~ /^(Rss|Pss|Pss_Anon|Pss_File|Shared_Clean|Private_Clean|Private_Dirty):$/ { printf "    %s %s kB", $1, $2 }
		END { print "" }' "/proc/$1/smaps_rollup" >&2
}

# breakdown PID: where a shim's Pss goes, in kB, as "libsystemd+deps binary heap libc other".
breakdown() {
	awk -v self="$(readlink "/proc/$1/exe")" '
		/^[0-9a-f]+-[0-9a-f]+ / {
			n = $6
			if (n ~ /\/lib(systemd|gcrypt|gpg-error|lzma|zstd|lz4|cap)\.so/) k = "sd"
			else if (n == self) k = "bin"
			else if (n == "[heap]") k = "heap"
			else if (n ~ /\/(libc\.so|ld-linux)/) k = "libc"
			else k = "other"
		}
		$1 == "Pss:" { v[k] += $2 }
		END { print v["sd"] + 0, v["bin"] + 0, v["heap"] + 0, v["libc"] + 0, v["other"] + 0 }' "/proc/$1/smaps"
}

# cleanup_prefix PREFIX: kills and deletes every container whose id starts with PREFIX.
cleanup_prefix() {
	local ids id
	ids=$(ctrt container ls -q 2>/dev/null | grep "^$1" || true)
	[ -n "$ids" ] || return 0
	for id in $ids; do ctrt task kill -s KILL "$id" >/dev/null 2>&1 || true; done
	for id in $ids; do
		kyb_wait_eval 10 "[ \"\$(ctr_task_status $id)\" != RUNNING ]" || true
		ctrt task delete "$id" >/dev/null 2>&1 || true
		ctrt container delete "$id" >/dev/null 2>&1 || true
	done
}

# wait_no_shims KIND: waits until no shim of that kind is left (so the next
# measurement starts from zero).
wait_no_shims() {
	kyb_wait_eval 20 "[ -z \"\$(shim_pids $1)\" ]" || log "warning: $1 shims still running: $(shim_pids "$1" | tr '\n' ' ')"
}

declare -A R # results, keyed by "test.kind.field"

# ---- 1. memory per shim, one container per shim -----------------------------------------

bench_many() {
	local kind=$1 rt i p r s u pids rss pss uss st
	rt=$(rt_of "$kind")
	log "1. $MANY containers with the $kind shim"
	for i in $(seq 1 "$MANY"); do
		ctrt run -d --runtime "$rt" "$KYB_BUSYBOX" "bench-m-$kind-$i" sleep 600 >/dev/null ||
			die "ctr run -d bench-m-$kind-$i ($rt) failed"
	done
	[ "$(ctrt task ls | grep -c "^bench-m-$kind-.*RUNNING")" -eq "$MANY" ] || die "not all $kind containers are RUNNING"
	sleep 2 # let the shims settle
	pids=$(shim_pids "$kind")
	[ "$(echo "$pids" | grep -c .)" -eq "$MANY" ] ||
		die "expected $MANY $kind shims, found $(echo "$pids" | grep -c .)"
	rss=() pss=() uss=()
	for p in $pids; do
		read -r r s u < <(mem "$p") || die "cannot read /proc/$p/smaps_rollup"
		rss+=("$r")
		pss+=("$s")
		uss+=("$u")
	done
	st=$(printf '%s\n' "${rss[@]}" | stats)
	read -r _ "R[many.$kind.rss_mean]" "R[many.$kind.rss_med]" _ _ <<<"$st"
	st=$(printf '%s\n' "${pss[@]}" | stats)
	read -r _ "R[many.$kind.pss_mean]" "R[many.$kind.pss_med]" _ _ <<<"$st"
	st=$(printf '%s\n' "${uss[@]}" | stats)
	read -r _ "R[many.$kind.uss_mean]" "R[many.$kind.uss_med]" _ _ <<<"$st"
	R[many.$kind.pss_sum]=$(printf '%s\n' "${pss[@]}" | awk '{ s += $1 } END { print s }')
	if [ "$kind" = ours ]; then
		R[many.ours.breakdown]=$(breakdown "${pids%%$'\n'*}")
	else
		R[runc_shim_path]=$(readlink "/proc/${pids%%$'\n'*}/exe")
	fi
	if [ "$DETAILS" = 1 ]; then
		log "largest mappings of one $kind shim (pid ${pids%%$'\n'*}):"
		top_mappings "${pids%%$'\n'*}"
	fi
	cleanup_prefix "bench-m-$kind-"
	wait_no_shims "$kind"
}

# ---- 2. one shim serving a pod of N containers --------------------------------------------

bench_pod() {
	local kind=$1 n=$2 rt i id sb pids p r s u
	rt=$(rt_of "$kind")
	sb=bench-p$n-$kind-1
	log "2. pod of $n container(s) with the $kind shim"
	for i in $(seq 1 "$n"); do
		id=bench-p$n-$kind-$i
		ctrt run -d --runtime "$rt" --annotation "io.kubernetes.cri.sandbox-id=$sb" \
			"$KYB_BUSYBOX" "$id" sleep 600 >/dev/null || die "ctr run -d $id ($rt) failed"
	done
	[ "$(ctrt task ls | grep -c "^bench-p$n-$kind-.*RUNNING")" -eq "$n" ] || die "not all pod containers are RUNNING"
	sleep 2
	pids=$(shim_pids "$kind")
	[ "$(echo "$pids" | grep -c .)" -eq 1 ] ||
		die "a pod of $n should have one $kind shim, found $(echo "$pids" | grep -c .)"
	p=$pids
	read -r r s u < <(mem "$p") || die "cannot read /proc/$p/smaps_rollup"
	R[pod$n.$kind.uss]=$u
	R[pod$n.$kind.rss]=$r
	R[pod$n.$kind.pss]=$s
	if [ "$DETAILS" = 1 ]; then
		log "largest mappings of the $kind shim serving $n containers (pid $p):"
		top_mappings "$p"
	fi
	# containers first, the "sandbox" last
	for i in $(seq "$n" -1 1); do cleanup_prefix "bench-p$n-$kind-$i\$"; done
	wait_no_shims "$kind"
}

# ---- 3. ctr run --rm true ----------------------------------------------------------------

bench_run_rm() {
	local i kind t0 rt
	local -A times=()
	log "3. ctr run --rm ... true, $RUNS runs each, interleaved"
	for kind in ours runc; do # warm-up
		ctrt run --rm --runtime "$(rt_of "$kind")" "$KYB_BUSYBOX" "bench-w-$kind" true >/dev/null ||
			die "ctr run --rm ($kind) failed"
	done
	for i in $(seq 1 "$RUNS"); do
		for kind in $(order "$i"); do
			rt=$(rt_of "$kind")
			t0=$(now_ns)
			ctrt run --rm --runtime "$rt" "$KYB_BUSYBOX" "bench-r-$kind-$i" true >/dev/null ||
				die "ctr run --rm bench-r-$kind-$i ($rt) failed"
			times[$kind]+="$(ms_since "$t0") "
		done
	done
	for kind in ours runc; do
		# shellcheck disable=SC2086 # the times are a space-separated list
		read -r _ _ "R[run.$kind.med]" "R[run.$kind.min]" "R[run.$kind.max]" < <(printf '%s\n' ${times[$kind]} | stats)
		log "   $kind: ${times[$kind]}"
	done
}

# ---- 4. ctr task exec true -----------------------------------------------------------------

bench_exec() {
	local i kind t0 rt
	local -A times=()
	log "4. ctr task exec ... true, $RUNS runs each, interleaved"
	for kind in ours runc; do
		ctrt run -d --runtime "$(rt_of "$kind")" "$KYB_BUSYBOX" "bench-e-$kind" sleep 600 >/dev/null ||
			die "ctr run -d bench-e-$kind failed"
		ctrt task exec --exec-id warm "bench-e-$kind" true || die "ctr task exec ($kind) failed"
	done
	for i in $(seq 1 "$RUNS"); do
		for kind in $(order "$i"); do
			t0=$(now_ns)
			ctrt task exec --exec-id "x$i" "bench-e-$kind" true || die "ctr task exec x$i ($kind) failed"
			times[$kind]+="$(ms_since "$t0") "
		done
	done
	for kind in ours runc; do
		# shellcheck disable=SC2086 # the times are a space-separated list
		read -r _ _ "R[exec.$kind.med]" "R[exec.$kind.min]" "R[exec.$kind.max]" < <(printf '%s\n' ${times[$kind]} | stats)
		log "   $kind: ${times[$kind]}"
	done
	cleanup_prefix bench-e-
}

# ---- run ---------------------------------------------------------------------------------

ctd_start "$NAME" "$CTD_V"
kyb_image_import "$KYB_NS" "$KYB_BUSYBOX_TAR"
kyb_on_exit 'cleanup_prefix bench-'

bench_many ours
bench_many runc
for n in $POD_SIZES; do
	bench_pod ours "$n"
	bench_pod runc "$n"
done
bench_run_rm
bench_exec

# ---- report ------------------------------------------------------------------------------

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "-"; else printf "%.2f", a / b }'; }

CTD_SERVER_VERSION=$(ctrt version 2>/dev/null | awk '/^Server:/ { s = 1 } s && $1 == "Version:" { print $2; exit }')
RUNC_VERSION=$(runc --version | awk 'NR == 1 { print $3 }')
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM_GB=$(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
CG=v1
[ -e /sys/fs/cgroup/cgroup.controllers ] && CG=v2
REV=$(git -C "$KYB_TOP" rev-parse --short HEAD 2>/dev/null || echo unknown)
git -C "$KYB_TOP" diff --quiet HEAD -- shim common 2>/dev/null || REV="$REV (+ uncommitted changes in shim/ or common/)"
SHIM_SIZE=$(stat -c %s "$BUILD/$OURS_BIN")
RUNC_SHIM_PATH=${R[runc_shim_path]:-$(command -v "$RUNC_BIN")}
RUNC_SHIM_SIZE=$(stat -c %s "$RUNC_SHIM_PATH")

report() {
	local n
	echo "| measure | kybernate shim | runc v2 shim | ours / runc |"
	echo "|---|---:|---:|---:|"
	echo "| PSS per shim, $MANY containers, mean (median) | $(mb "${R[many.ours.pss_mean]}") MB ($(mb "${R[many.ours.pss_med]}")) | $(mb "${R[many.runc.pss_mean]}") MB ($(mb "${R[many.runc.pss_med]}")) | $(ratio "${R[many.ours.pss_mean]}" "${R[many.runc.pss_mean]}") |"
	echo "| RSS per shim, $MANY containers, mean (median) | $(mb "${R[many.ours.rss_mean]}") MB ($(mb "${R[many.ours.rss_med]}")) | $(mb "${R[many.runc.rss_mean]}") MB ($(mb "${R[many.runc.rss_med]}")) | $(ratio "${R[many.ours.rss_mean]}" "${R[many.runc.rss_mean]}") |"
	echo "| USS (private pages) per shim, $MANY containers, mean (median) | $(mb "${R[many.ours.uss_mean]}") MB ($(mb "${R[many.ours.uss_med]}")) | $(mb "${R[many.runc.uss_mean]}") MB ($(mb "${R[many.runc.uss_med]}")) | $(ratio "${R[many.ours.uss_mean]}" "${R[many.runc.uss_mean]}") |"
	echo "| PSS of all $MANY shims together | $(mb "${R[many.ours.pss_sum]}") MB | $(mb "${R[many.runc.pss_sum]}") MB | $(ratio "${R[many.ours.pss_sum]}" "${R[many.runc.pss_sum]}") |"
	for n in $POD_SIZES; do
		echo "| pod of $n container(s): PSS / USS / RSS of its one shim | $(mb "${R[pod$n.ours.pss]}") / $(mb "${R[pod$n.ours.uss]}") / $(mb "${R[pod$n.ours.rss]}") MB | $(mb "${R[pod$n.runc.pss]}") / $(mb "${R[pod$n.runc.uss]}") / $(mb "${R[pod$n.runc.rss]}") MB | $(ratio "${R[pod$n.ours.pss]}" "${R[pod$n.runc.pss]}") (PSS) |"
	done
	echo "| \`ctr run --rm IMAGE ID true\`, median (min-max), $RUNS runs | ${R[run.ours.med]} ms (${R[run.ours.min]}-${R[run.ours.max]}) | ${R[run.runc.med]} ms (${R[run.runc.min]}-${R[run.runc.max]}) | $(ratio "${R[run.ours.med]}" "${R[run.runc.med]}") |"
	echo "| \`ctr task exec ID true\`, median (min-max), $RUNS runs | ${R[exec.ours.med]} ms (${R[exec.ours.min]}-${R[exec.ours.max]}) | ${R[exec.runc.med]} ms (${R[exec.runc.min]}-${R[exec.runc.max]}) | $(ratio "${R[exec.ours.med]}" "${R[exec.runc.med]}") |"
}

# intro: the part of the "## Shim" section that does not depend on the run.
intro() {
	echo "## Shim"
	echo
	echo "containerd-shim-kybernate-v1 (\`$KYB_RUNTIME\`) side by side with containerd-shim-runc-v2"
	echo "(\`$KYB_RUNC_RUNTIME\`), each table from one run of \`bench/shim-bench.sh\` on one private"
	echo "containerd. Memory is Rss/Pss from \`/proc/PID/smaps_rollup\` of each long-lived shim"
	echo "process (1 MB = 1024 kB; USS = Private_Clean + Private_Dirty, what the shim alone"
	echo "costs). A pod is containers sharing the annotation \`io.kubernetes.cri.sandbox-id\`"
	echo "(set with \`ctr run --annotation\`), which both shims group into one process. Times"
	echo "are wall time of the whole \`ctr\` command (ctr's own start-up included), ours and"
	echo "runc interleaved (who goes first alternates), after one warm-up run each."
	echo "Targets (issues 2 and 3): PSS per shim at most a tenth of the runc v2 shim's, a small"
	echo "fraction at every pod size, and \`ctr run --rm\` and exec no slower."
	echo
	echo "Findings (2026-11-28, from \`--details\`, a two-program comparison and valgrind massif):"
	echo "over a third of our shim's PSS is libsystemd. Debian 12's libsystemd (252) links libgcrypt,"
	echo "libgpg-error, liblzma, libzstd, liblz4 and libcap, and every library's relocated data and"
	echo ".bss are private to each process: 20 copies of a trivial program calling"
	echo "\`sd_event_default()\` have 293 kB PSS (232 kB USS) each, the same program without"
	echo "libsystemd 107 kB (93 kB). Another 44 kB of USS is the shim binary's \`.data.rel.ro\`"
	echo "(mostly protobuf-c descriptors, written by the loader because the binary is PIE; a"
	echo "\`-no-pie\` relink measured 0.36 -> 0.32 MB USS). The heap stays small: massif's largest"
	echo "item is a 64 KiB ttrpc read buffer per connection (containerd opens one per task, 21"
	echo "for a pod of 20), mostly never touched. The runc shim's PSS falls as more copies share"
	echo "its Go binary (4.4 MB with 5 running, 2.9 MB with 20, containerd 1.6), so against 1.6's"
	echo "shim with 20 containers we are at about 0.15, not 0.10; against 1.7's shim, and against"
	echo "the 4.5 MB reference of issue 2, we are below a tenth. Without libsystemd's"
	echo "chain of libraries the shim would be near 0.28 MB PSS (about 0.1 of 1.6's)."
}

# subsection: this run's numbers, "### containerd VERSION".
subsection() {
	echo "### containerd $CTD_V"
	echo
	report
	echo
	local sd bin heap libc other
	read -r sd bin heap libc other <<<"${R[many.ours.breakdown]}"
	echo "- Where one of our $MANY shims' PSS goes: libsystemd and the libraries it pulls in"
	echo "  (libgcrypt, libgpg-error, liblzma, libzstd, liblz4, libcap) $sd kB, the shim binary $bin kB,"
	echo "  heap $heap kB, libc and ld.so $libc kB, the rest (stack, libraries' .bss, libprotobuf-c,"
	echo "  libcjson) $other kB."
	echo "- The pod rows measure the only shim of its kind on the machine, so its file pages (for"
	echo "  runc, the pages of its Go binary) count in full; with many pods they are shared as in"
	echo "  the first rows. Per extra container of a pod: ours +$(awk -v a="${R[pod20.ours.uss]:-0}" -v b="${R[pod1.ours.uss]:-0}" 'BEGIN { printf "%.0f", (a - b) / 19 }') kB USS,"
	echo "  runc +$(awk -v a="${R[pod20.runc.uss]:-0}" -v b="${R[pod1.runc.uss]:-0}" 'BEGIN { printf "%.0f", (a - b) / 19 }') kB USS."
	echo "- Machine: $(nproc) CPUs ($CPU), ${MEM_GB} GiB, kernel $(uname -r), cgroup $CG,"
	echo "  containerd $CTD_SERVER_VERSION, runc $RUNC_VERSION; $(date -u '+%Y-%m-%d %H:%M UTC'); load average"
	echo "  at the start $LOAD0."
	echo "- Binaries: our shim $((SHIM_SIZE / 1024)) KiB (kybernate $REV, \`-O2 -g\`, not stripped),"
	echo "  $RUNC_SHIM_PATH $((RUNC_SHIM_SIZE / 1024)) KiB."
	echo "- Command: \`sudo BUILD=\$PWD/${BUILD#"$KYB_TOP"/} $CMDLINE\` (took $((SECONDS - T0)) s)."
}

SUB=$(subsection)
echo
intro
echo
echo "$SUB"

if [ "$WRITE_DOCS" = 1 ]; then
	doc=$KYB_TOP/docs/BENCHMARKS.md
	mkdir -p "$(dirname "$doc")"
	if [ ! -s "$doc" ]; then
		printf '<!-- SPDX-License-Identifier: Apache-2.0 -->\n# Benchmarks\n\nMeasured numbers for Kybernate, each section written by the script named in it\n(re-run it to refresh the section). Sections are independent: each one compares\nlike with like within one run on one machine.\n' >"$doc"
	fi
	# The subsection of the other containerd version, kept from the file.
	other=1.7
	[ "$CTD_V" = 1.7 ] && other=1.6
	awk -v v="$other" '
		/^## / { in_shim = ($0 ~ /^## Shim[[:space:]]*$/); keep = 0 }
		in_shim && /^### / { keep = ($0 == "### containerd " v) }
		in_shim && keep { print }' "$doc" >"$KYB_TMP/other.md"
	{
		intro
		for v in 1.6 1.7; do
			echo
			if [ "$v" = "$CTD_V" ]; then echo "$SUB"; else cat "$KYB_TMP/other.md"; fi
		done
	} >"$KYB_TMP/section.md"
	docs_write_section "Shim" "$KYB_TMP/section.md" "containerd $CTD_V"
fi
