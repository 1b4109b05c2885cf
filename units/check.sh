#!/usr/bin/env bash
# units/check.sh: lint the Warren units offline (no systemd as PID 1 needed).
#
#  1. `systemd-analyze verify` of every unit, in a scratch root that holds
#     the host's own systemd units, the Warren units, a stand-in
#     /usr/bin/warren and the helper scripts from image/extra: any output
#     (a warning too) fails the check.
#  2. systemd-sysusers and systemd-tmpfiles apply units/sysusers.d and
#     units/tmpfiles.d to that root, and `systemctl preset` enables the
#     image's set from units/system-preset.
#  3. `systemd-analyze security --offline=yes` of every service: each
#     exposure score is printed and checked against units/security-thresholds.
#
# Usage: units/check.sh [--scores]   (--scores: print "unit score" lines only)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
scores_only=0
[ "${1:-}" = --scores ] && scores_only=1

for tool in systemd-analyze systemd-sysusers systemd-tmpfiles systemctl; do
	command -v "$tool" >/dev/null || { echo "units-check: $tool is missing: apt-get install systemd (make deps does)" >&2; exit 1; }
done

root=$(mktemp -d /tmp/warren-units-check.XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/lib/systemd/system" "$root/usr/bin" "$root/usr/sbin" "$root/etc" \
	"$root/usr/lib/sysusers.d" "$root/usr/lib/tmpfiles.d" "$root/usr/lib/systemd/system-preset" \
	"$root/usr/lib/warren" "$root/run" "$root/var/lib"
cp -a /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/"
cp "$here"/*.service "$here"/*.socket "$root/usr/lib/systemd/system/"
for d in "$here"/*.*.d; do cp -r "$d" "$root/usr/lib/systemd/system/"; done
cp "$here"/sysusers.d/*.conf "$root/usr/lib/sysusers.d/"
cp "$here"/tmpfiles.d/*.conf "$root/usr/lib/tmpfiles.d/"
cp "$here"/system-preset/*.preset "$root/usr/lib/systemd/system-preset/"
cp "$repo"/image/extra/usr/lib/warren/* "$root/usr/lib/warren/"
for b in warren true; do
	printf '#!/bin/sh\nexit 0\n' >"$root/usr/bin/$b"
	chmod 0755 "$root/usr/bin/$b"
done
ln -s ../bin/true "$root/usr/sbin/nologin" 2>/dev/null || true
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"

units=()
for f in "$here"/*.service "$here"/*.socket; do units+=("$(basename "$f")"); done
services=()
for f in "$here"/*.service; do services+=("$(basename "$f")"); done

fail=0
if [ $scores_only = 0 ]; then
	out=$(cd "$root/usr/lib/systemd/system" && systemd-analyze verify --root="$root" "${units[@]}" 2>&1) || fail=1
	if [ -n "$out" ] || [ $fail = 1 ]; then
		echo "units-check: systemd-analyze verify:" >&2
		echo "$out" >&2
		fail=1
	else
		echo "units-check: systemd-analyze verify: ${#units[@]} units clean"
	fi

	if ! out=$(systemd-sysusers --root="$root" 2>&1) || ! grep -q '^warren:' "$root/etc/group" || ! grep -q '^warren-view:' "$root/etc/group" || ! grep -q '^warren-ingress:' "$root/etc/group" || ! grep -q '^warren-manager:' "$root/etc/passwd"; then
		echo "units-check: systemd-sysusers: $out" >&2
		fail=1
	fi
	# A dynamic user takes User= or else the unit's name, and systemd
	# refuses to start the unit when that name is a user or group already
	# (warren-ingress.service against group warren-ingress).
	for s in "${services[@]}"; do
		grep -qx 'DynamicUser=yes' "$here/$s" || continue
		name=$(sed -n 's/^User=//p' "$here/$s" | tail -n1)
		name=${name:-${s%.service}}
		if grep -q "^$name:" "$root/etc/passwd" "$root/etc/group"; then
			echo "units-check: $s: its dynamic user's name $name is a user or group of sysusers.d already: systemd would refuse to start it (status=217/USER); set User= to a free name" >&2
			fail=1
		fi
	done
	if ! out=$(systemd-tmpfiles --root="$root" --create 2>&1) || [ "$(stat -c %a "$root/run/warren")" != 751 ]; then
		echo "units-check: systemd-tmpfiles: $out" >&2
		fail=1
	fi
	if ! out=$(systemctl --root="$root" preset "${units[@]}" 2>&1) ||
		[ ! -L "$root/etc/systemd/system/sockets.target.wants/warren-manager.socket" ] ||
		[ ! -L "$root/etc/systemd/system/sockets.target.wants/warren-manager-read.socket" ] ||
		[ ! -L "$root/etc/systemd/system/sockets.target.wants/warren-manager-ingress.socket" ] ||
		[ ! -L "$root/etc/systemd/system/multi-user.target.wants/warren-agent.service" ] ||
		[ -e "$root/etc/systemd/system/sockets.target.wants/warren-ingress.socket" ]; then
		echo "units-check: systemctl preset: $out" >&2
		fail=1
	else
		echo "units-check: sysusers.d, tmpfiles.d and presets apply"
	fi
fi

# Thresholds: "unit max # why".
declare -A max
while read -r unit limit _; do
	case $unit in '' | '#'*) continue ;; esac
	max[$unit]=$limit
done <"$here/security-thresholds"

[ $scores_only = 1 ] || printf '%-32s %8s %8s\n' "unit" "exposure" "max"
for s in "${services[@]}"; do
	line=$(cd "$root/usr/lib/systemd/system" && systemd-analyze security --offline=yes --root="$root" --no-pager "$s" 2>&1 | grep 'Overall exposure level' || true)
	score=$(sed -n 's/.*: \([0-9.]*\) .*/\1/p' <<<"$line")
	if [ -z "$score" ]; then
		echo "units-check: no exposure score for $s" >&2
		fail=1
		continue
	fi
	if [ $scores_only = 1 ]; then
		echo "$s $score"
		continue
	fi
	limit=${max[$s]:-}
	verdict=ok
	if [ -z "$limit" ]; then
		verdict="NO THRESHOLD (add a line to units/security-thresholds)"
		fail=1
	elif awk -v s="$score" -v m="$limit" 'BEGIN { exit !(s > m) }'; then
		verdict="OVER THRESHOLD"
		fail=1
	fi
	printf '%-32s %8s %8s  %s\n' "$s" "$score" "${limit:--}" "$verdict"
done
for u in "${!max[@]}"; do
	[ -e "$here/$u" ] || { echo "units-check: security-thresholds names $u, which is not in units/" >&2; fail=1; }
done

if [ $fail = 1 ]; then
	echo "units-check: FAILED" >&2
	exit 1
fi
[ $scores_only = 1 ] || echo "units-check: ok"
