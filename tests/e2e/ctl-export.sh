#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# kybernatectl end to end, against a real kybernated, runc and CRIU: a busybox
# counter started with runc directly (pipes for stdio) is checkpointed through
# `kybernatectl checkpoint`; list and inspect show it with its process tree
# (sh + sleep); `kybernatectl export` writes an archive that `checkpointctl
# show` accepts; `kybernatectl import` takes it back as a new checkpoint with
# the same tree; hostile archives are refused; pin/prune/--exit work; the
# re-imported copy restores with runc from the path `resolve` gives and the
# counter goes on; exit codes hold.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

require_root
require_cmd runc criu busybox jq tar
require_build kybernated kybernatectl

N=ctl-export # prefix of every name used here
NS=$N-ns
ID=$N-counter
RUNC_BASE=$KYB_TMP/runc
RUNC_ROOT=$RUNC_BASE/$NS
SOCK=$KYB_TMP/kybernated.sock
K=("$BUILD/kybernatectl" --socket "$SOCK")
CRIU=$(command -v criu)

# ---- the daemon ------------------------------------------------------------

mkdir -p "$RUNC_ROOT" "$KYB_TMP/store"
"$BUILD/kybernated" --store "$KYB_TMP/store" --socket "$SOCK" --runc-root-base "$RUNC_BASE" \
	--criu "$CRIU" >"$KYB_TMP/kybernated.log" 2>&1 &
daemon_pid=$!
kyb_on_exit "kill $daemon_pid 2>/dev/null; wait $daemon_pid 2>/dev/null; sed 's/^/  kybernated: /' '$KYB_TMP/kybernated.log' | tail -n 20"
kyb_wait 10 "${K[@]}" status || die "kybernated did not come up"

# ---- a runc container: busybox sh counting, with a sleep child --------------

bundle=$KYB_TMP/bundle
mkdir -p "$bundle/rootfs"
kyb_rootfs_build "$bundle/rootfs"
kyb_runc_counter "$RUNC_ROOT" "$bundle" "$ID" "$KYB_TMP/out.log"

# ---- checkpoint, list, inspect ------------------------------------------------

t_checkpoint() {
	local out rc=0
	out=$("${K[@]}" checkpoint "$NS/$ID" --name "$N-first" 2>"$KYB_TMP/ckpt.err") || rc=$?
	if [ "$rc" -eq 0 ] && [[ $out =~ ^[0-9a-f]{32}$ ]]; then
		pass "kybernatectl checkpoint prints the new id"
		CKPT=$out
	else
		fail "kybernatectl checkpoint prints the new id" "rc=$rc out='$out'" "$(cat "$KYB_TMP/ckpt.err")"
		kyb_finish
	fi
	expect_contains "checkpoint shows progress" "$(cat "$KYB_TMP/ckpt.err")" "[runc-checkpoint]"
	# Default: the container keeps running.
	local before after
	before=$(tail -n 1 "$KYB_TMP/out.log")
	kyb_wait 5 bash -c "[ \"\$(tail -n 1 '$KYB_TMP/out.log')\" != '$before' ]" &&
		pass "container keeps running after checkpoint" ||
		fail "container keeps running after checkpoint"
	after=$(runc --root "$RUNC_ROOT" state "$ID" | jq -r .status)
	expect_eq "runc state after checkpoint" running "$after"
}

t_list() {
	local j
	j=$("${K[@]}" list --json)
	expect_eq "list --json has the checkpoint, ready" "ready $N-first $NS $ID" \
		"$(jq -r --arg id "$CKPT" '.[] | select(.id == $id) | "\(.state) \(.name) \(.containerd_namespace) \(.container_id)"' <<<"$j")"
	expect_contains "list table shows it" "$("${K[@]}" list --namespace "$NS")" "${CKPT:0:12}  $N-first  ready"
	expect_eq "list filter on another namespace is empty" "[]" "$("${K[@]}" list --namespace "$N-other" --json | jq -c .)"
	expect_eq "list -q prints ids" "$CKPT" "$("${K[@]}" list -q --container-id "$ID")"
}

# tree_of REF: "pid:ppid:comm" per process, from inspect --json.
tree_of() {
	"${K[@]}" inspect "$1" --json | jq -r '.processes[] | "\(.pid):\(.ppid):\(.comm)"' | tr '\n' ' '
}

t_inspect() {
	local tree human
	tree=$(tree_of "$CKPT")
	# In its PID namespace the container's sh is pid 1, its sleep a child of it.
	if [[ $tree =~ ^1:0:sh\ ([0-9]+):1:sleep\ $ ]]; then
		pass "inspect process tree: sh (pid 1) + sleep ($tree)"
	else
		fail "inspect process tree: sh (pid 1) + sleep" "got: '$tree'"
	fi
	TREE=$tree
	human=$("${K[@]}" inspect "${CKPT:0:8}" --verify)
	expect_contains "inspect by id prefix shows the tree" "$human" "Process tree:
  1  sh
    "
	expect_contains "inspect --verify: checksum matches" "$human" "checksum matches"
	expect_contains "inspect shows the container" "$human" "Container ID:    $ID"
	expect_contains "inspect shows the image sizes" "$human" "CRIU images:"
	expect_contains "inspect shows CRIU's dump statistics" "$human" "Freezing time:"
	local scanned
	scanned=$("${K[@]}" inspect "$CKPT" --json | jq -r '.criu_dump_stats.pages_scanned // 0')
	if [ "$scanned" -gt 0 ] 2>/dev/null; then pass "inspect --json: pages_scanned $scanned"; else fail "inspect --json: pages_scanned > 0" "got '$scanned'"; fi
	expect_eq "inspect by name gives the same id" "$CKPT" "$("${K[@]}" inspect "$N-first" --json | jq -r .checkpoint.id)"
}

# ---- export, checkpointctl, import -----------------------------------------------

t_export() {
	ARCHIVE=$KYB_TMP/$N.tar
	expect_ok "kybernatectl export" "${K[@]}" export "$N-first" -o "$ARCHIVE"
	local members
	members=$(tar -tf "$ARCHIVE")
	expect_contains "archive has checkpoint/pstree.img" "$members" "checkpoint/pstree.img"
	expect_contains "archive has config.dump" "$members" "config.dump"
	expect_contains "archive has spec.dump" "$members" "spec.dump"
	expect_fail "export refuses to overwrite" "${K[@]}" export "$N-first" -o "$ARCHIVE"

	if command -v checkpointctl >/dev/null 2>&1; then
		local out rc=0
		out=$(checkpointctl show "$ARCHIVE" 2>&1) || rc=$?
		expect_eq "checkpointctl show accepts the archive" 0 "$rc" || printf '%s\n' "$out" >&2
		expect_contains "checkpointctl show names the container" "$out" "${ID:0:12}"
		out=$(checkpointctl inspect --ps-tree "$ARCHIVE" 2>&1) || true
		expect_contains "checkpointctl inspect --ps-tree sees sh and sleep" "$out" "sleep"
		out=$(checkpointctl inspect --stats "$ARCHIVE" 2>&1) || true
		expect_contains "checkpointctl inspect --stats reads stats-dump" "$out" "Pages scanned"
	else
		skip "checkpointctl show accepts the archive" "checkpointctl is not installed (scripts/setup.sh installs it)"
	fi
}

t_import() {
	local out rc=0 id2
	out=$("${K[@]}" import "$ARCHIVE" --name "$N-imported" 2>&1) || rc=$?
	id2=$(tail -n 1 <<<"$out")
	if [ "$rc" -eq 0 ] && [[ $id2 =~ ^[0-9a-f]{32}$ ]] && [ "$id2" != "$CKPT" ]; then
		pass "kybernatectl import gives a new id"
	else
		fail "kybernatectl import gives a new id" "rc=$rc out='$out'"
		return
	fi
	expect_eq "list shows the imported checkpoint" "ready $N-imported" \
		"$("${K[@]}" list --json | jq -r --arg id "$id2" '.[] | select(.id == $id) | "\(.state) \(.name)"')"
	expect_eq "imported checkpoint has the same process tree" "$TREE" "$(tree_of "$N-imported")"
	expect_contains "imported checkpoint verifies" "$("${K[@]}" inspect "$N-imported" --verify)" "checksum matches"
	rc=0
	"${K[@]}" import "$ARCHIVE" --name "$N-imported" >/dev/null 2>&1 || rc=$?
	expect_eq "import with a taken name: exit 6 (conflict)" 6 "$rc"
	expect_ok "delete the imported checkpoint" "${K[@]}" delete "$N-imported"
	rc=0
	"${K[@]}" inspect "$N-imported" >/dev/null 2>&1 || rc=$?
	expect_eq "inspect after delete: exit 4 (not found)" 4 "$rc"
}

t_hostile_archives() {
	local evil=$KYB_TMP/evil rc n_before n_after
	mkdir -p "$evil/d"
	echo x >"$evil/d/f"
	ln -s /etc/passwd "$evil/d/link"
	n_before=$("${K[@]}" list --json | jq length)

	tar -C "$evil" -cf "$KYB_TMP/link.tar" d
	rc=0
	out=$("${K[@]}" import "$KYB_TMP/link.tar" 2>&1) || rc=$?
	expect_eq "import of an archive with a symlink fails (exit 1)" 1 "$rc"
	expect_contains "... and says why" "$out" "links or special files"

	tar -P -cf "$KYB_TMP/abs.tar" "$evil/d/f"
	rc=0
	out=$("${K[@]}" import "$KYB_TMP/abs.tar" 2>&1) || rc=$?
	expect_eq "import of an archive with an absolute path fails (exit 1)" 1 "$rc"
	expect_contains "... and says why" "$out" "leaves the archive"

	tar -C "$evil/d" -cf "$KYB_TMP/dotdot.tar" --transform 's,^,../../,' f
	rc=0
	"${K[@]}" import "$KYB_TMP/dotdot.tar" >/dev/null 2>&1 || rc=$?
	expect_eq "import of an archive with ../ fails (exit 1)" 1 "$rc"

	head -c 3000 "$ARCHIVE" >"$KYB_TMP/truncated.tar"
	rc=0
	out=$("${K[@]}" import "$KYB_TMP/truncated.tar" 2>&1) || rc=$?
	expect_eq "import of a truncated archive fails (exit 1)" 1 "$rc"
	expect_contains "... and says why" "$out" "truncated"

	gzip -c "$ARCHIVE" >"$KYB_TMP/c.tar.gz"
	rc=0
	out=$("${K[@]}" import "$KYB_TMP/c.tar.gz" 2>&1) || rc=$?
	expect_eq "import of a gzip archive fails (exit 1)" 1 "$rc"
	expect_contains "... with a hint" "$out" "gzip-compressed"

	n_after=$("${K[@]}" list --json | jq length)
	expect_eq "refused imports add no checkpoint" "$n_before" "$n_after"
	expect_eq "refused imports leave nothing in staging" "" "$(ls -A "$KYB_TMP/store/staging" 2>&1)"

	local id3
	id3=$(gzip -dc "$KYB_TMP/c.tar.gz" | "${K[@]}" import - --name "$N-stdin" 2>&1) || true
	expect_eq "import - (standard input) works" "ready" \
		"$("${K[@]}" list --json | jq -r --arg id "$id3" '.[] | select(.id == $id) | .state')"
	expect_ok "delete it" "${K[@]}" delete "$N-stdin"
}

t_retention() {
	local out second j
	expect_ok "pin the first checkpoint" "${K[@]}" pin "$N-first"
	out=$("${K[@]}" checkpoint --namespace "$NS" "$ID" --name "$N-second" --exit --quiet 2>&1) ||
		{ fail "checkpoint --namespace NS ID --exit" "$out"; return; }
	second=$(tail -n 1 <<<"$out")
	pass "checkpoint --namespace NS ID --exit"
	# runc checkpoint without --leave-running destroys the container.
	local st
	st=$(runc --root "$RUNC_ROOT" state "$ID" 2>/dev/null | jq -r .status) || true
	if [ "$st" != running ]; then pass "the container is gone (--exit)"; else fail "the container is gone (--exit)" "still running"; fi
	expect_eq "options recorded: leave_running false" false \
		"$("${K[@]}" inspect "$second" --json | jq -r .checkpoint.options.leave_running)"
	j=$("${K[@]}" prune --keep 1 --older-than 0s --dry-run --json)
	expect_eq "prune --keep 1 keeps the pinned one" 0 "$(jq '.deleted | length' <<<"$j")"
	expect_ok "unpin the first checkpoint" "${K[@]}" unpin "$N-first"
	j=$("${K[@]}" prune --keep 1 --older-than 0s --dry-run --json)
	expect_eq "prune --dry-run would delete the older one" "$CKPT" "$(jq -r '.deleted[].id' <<<"$j")"
	expect_eq "... but did not" 2 "$("${K[@]}" list --json --container-id "$ID" | jq length)"
	expect_ok "prune --keep 1" "${K[@]}" prune --keep 1 --older-than 0s
	expect_eq "only the newest checkpoint is left" "$second" "$("${K[@]}" list -q --container-id "$ID")"
}

# The exported and re-imported copy of the --exit checkpoint restores with
# plain runc from the path `kybernatectl resolve` gives, and counts on.
t_restore_imported() {
	local second id p last first_after rc=0
	second=$("${K[@]}" list -q --container-id "$ID" | head -n 1)
	expect_ok "export the --exit checkpoint" "${K[@]}" export "$second" -o "$KYB_TMP/second.tar"
	id=$("${K[@]}" import "$KYB_TMP/second.tar" --name "$N-restore" 2>/dev/null) ||
		{ fail "import the --exit checkpoint"; return; }
	p=$("${K[@]}" resolve "$N-restore" --namespace "$NS" --container-id "$ID" -q 2>&1) || rc=$?
	if [ "$rc" -ne 0 ] || [ ! -f "$p/pstree.img" ]; then
		fail "resolve gives the imported image path" "rc=$rc '$p'"
		return
	fi
	pass "resolve gives the imported image path"
	last=$(tail -n 1 "$KYB_TMP/out.log")
	rc=0
	kyb_runc_restore "$RUNC_ROOT" "$bundle" "$ID" "$p" "$KYB_TMP/out2.log" || rc=$?
	if [ "$rc" -ne 0 ]; then
		fail "runc restore from the imported copy" "$(tail -n 5 "$KYB_TMP/out2.log.work/restore.log" 2>/dev/null)"
		return
	fi
	pass "runc restore from the imported copy"
	kyb_wait 10 test -s "$KYB_TMP/out2.log" || true
	first_after=$(head -n 1 "$KYB_TMP/out2.log")
	expect_eq "the restored counter continues where it stopped" "$((last + 1))" "$first_after"
	expect_contains "the checkpoint still verifies after the restore" \
		"$("${K[@]}" inspect "$N-restore" --verify)" "checksum matches"
}

t_exit_codes() {
	local rc=0 out
	out=$("$BUILD/kybernatectl" --socket "$KYB_TMP/no-such.sock" status 2>&1) || rc=$?
	expect_eq "daemon not reachable: exit 3" 3 "$rc"
	expect_contains "daemon not reachable: clear message" "$out" "kybernated is not running (cannot connect to $KYB_TMP/no-such.sock)"
	rc=0
	KYBERNATE_SOCKET=$KYB_TMP/no-such.sock "$BUILD/kybernatectl" list >/dev/null 2>&1 || rc=$?
	expect_eq "KYBERNATE_SOCKET is honoured" 3 "$rc"
	rc=0
	"${K[@]}" prune --older-than 7x >/dev/null 2>&1 || rc=$?
	expect_eq "bad duration: exit 2" 2 "$rc"
	rc=0
	"${K[@]}" inspect "../../etc" >/dev/null 2>&1 || rc=$?
	expect_eq "reference with ../: exit 2" 2 "$rc"
	rc=0
	"${K[@]}" delete 0123456789abcdef0123456789abcdef >/dev/null 2>&1 || rc=$?
	expect_eq "unknown id: exit 4" 4 "$rc"
	if command -v setpriv >/dev/null; then
		rc=0
		out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "${K[@]}" list 2>&1) || rc=$?
		expect_eq "non-root peer: exit 5" 5 "$rc"
		expect_contains "non-root peer: says permission denied" "$out" "permission denied"
	fi
	local v
	for v in list inspect delete prune pin unpin export import checkpoint status resolve; do
		"${K[@]}" "$v" --help | grep -q "^Usage: kybernatectl $v" || { fail "$v --help"; return; }
	done
	pass "every verb has --help"
}

t_checkpoint
t_list
t_inspect
t_export
t_import
t_hostile_archives
t_retention
t_restore_imported
t_exit_codes
kyb_finish
