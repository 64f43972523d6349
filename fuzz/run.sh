#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# fuzz/run.sh [SECONDS|-runs=N] [TARGET...]: builds the libFuzzer targets
# (make fuzz) and runs each (default: all of fuzz/fuzz-*.c) for SECONDS
# (default 60) or N executions, niced, on a copy of its seed corpus
# fuzz/corpus/<TARGET without "fuzz-"> in build-fuzz/run/<TARGET>/corpus (the
# committed seeds are never written). Prints per target the seeds, the
# executions and executions per second, the final coverage (libFuzzer's cov:
# and ft:) and the crashes; exits 1 if any target crashed, leaked or timed out,
# with the reproducer in build-fuzz/crashes/<TARGET>-*.
#
# Environment: FUZZ_NO_SEEDS=1 starts every target from an empty corpus (the
# baseline the seeds are measured against); FUZZ_NO_BUILD=1 skips make;
# FUZZ_ARGS adds libFuzzer options.
set -euo pipefail
TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
FB=build-fuzz

limit=(-max_total_time=60)
what="60 s"
case ${1:-} in
-runs=[0-9]*) limit=("$1") what="${1#-runs=} runs" && shift ;;
[0-9]*) limit=(-max_total_time="$1") what="$1 s" && shift ;;
esac
if [ $# -eq 0 ]; then
	for f in fuzz/fuzz-*.c; do set -- "$@" "$(basename "$f" .c)"; done
fi

mkdir -p "$FB"
if [ -z "${FUZZ_NO_BUILD:-}" ]; then
	nice make -j2 fuzz >"$FB/make.log" 2>&1 || {
		tail -n 30 "$FB/make.log" >&2
		echo "run.sh: make fuzz failed (log: $FB/make.log)" >&2
		exit 2
	}
fi
mkdir -p "$FB/run" "$FB/crashes"

crashed=0
printf '%-22s %6s %11s %8s %7s %7s %8s  %s\n' target seeds executions exec/s cov ft crashes log
for t in "$@"; do
	t=fuzz-${t#fuzz-}
	bin=$FB/fuzz/$t
	[ -x "$bin" ] || {
		echo "run.sh: no target $bin" >&2
		exit 2
	}
	run=$FB/run/$t
	rm -rf "$run"
	mkdir -p "$run/corpus"
	seeds=0
	if [ -z "${FUZZ_NO_SEEDS:-}" ] && [ -d "fuzz/corpus/${t#fuzz-}" ]; then
		cp -p "fuzz/corpus/${t#fuzz-}"/* "$run/corpus/" 2>/dev/null || true
		seeds=$(find "$run/corpus" -type f | wc -l)
	fi
	rc=0
	# shellcheck disable=SC2086
	nice -n 10 "$bin" "${limit[@]}" -print_final_stats=1 -timeout=30 \
		-artifact_prefix="$TOP/$FB/crashes/$t-" ${FUZZ_ARGS:-} "$run/corpus" >"$run.log" 2>&1 || rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run.log" | tail -n 1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$run.log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$run.log" | tail -n 1 | cut -d' ' -f2)
	ft=$(grep -o 'ft: [0-9]*' "$run.log" | tail -n 1 | cut -d' ' -f2)
	n_crash=0
	if [ "$rc" -ne 0 ]; then
		n_crash=$(grep -c 'Test unit written to' "$run.log" || true)
		[ "$n_crash" -gt 0 ] || n_crash=1
		crashed=1
	fi
	printf '%-22s %6s %11s %8s %7s %7s %8s  %s\n' "$t" "$seeds" "${execs:-?}" "${eps:-?}" \
		"${cov:-?}" "${ft:-?}" "$n_crash" "$run.log"
	if [ "$rc" -ne 0 ]; then
		grep -E 'ERROR|SUMMARY|Test unit written' "$run.log" | head -n 5 | sed 's/^/    /'
	fi
done
echo "($what per target$([ -n "${FUZZ_NO_SEEDS:-}" ] && echo ", no seeds"))"
exit $crashed
