#!/usr/bin/env bash
# Sync of a large UnixFS file from a trustless HTTP gateway against the same over QUIC,
# between processes on loopback (issue 22, item 5's third figure), and the gateway's peak
# RSS while it streams a DAG as one CAR (item 1's memory bound).
#
#   crates/bench/scripts/sync_gateway.sh [SIZE_MIB] [REPEATS] [DIR] [CAR_MIB]
#
# SIZE_MIB (default 1024) of random bytes are added once to A.db (`seedbank add`, the
# default profile: 1 MiB raw leaves). Each repetition, alternating the two transports:
#   1. `seedbank gateway --listen 127.0.0.1:0` on A.db (read-only), then
#      `seedbank --db B.db sync ROOT --gateway URL` into a fresh B.db, timed;
#   2. `seedbank serve` on A.db (offline, 127.0.0.1), then
#      `seedbank --db C.db sync ROOT --peer TICKET` into a fresh C.db, timed;
# each server stopped with SIGTERM after its sync. The first repetition checks both synced
# files against the input (`cat`). Timings are whole processes (start, open, fetch, verify,
# store, close). The summary gives each transport's median and spread (min..max) in s and
# MB/s, and gateway/QUIC.
# CAR_MIB (default 4096; 0 skips it): a file of that size is added to D.db (from
# /dev/urandom through stdin: no input file), `seedbank gateway` on it runs under
# `/usr/bin/time -v`, and `curl` fetches `/ipfs/ROOT?format=car&dag-scope=all` to
# /dev/null; the gateway's peak RSS and the stream's MB/s are printed.
# Needs a release build; SEEDBANK=/path/to/seedbank overrides. The databases go in a new
# directory under DIR (default $TMPDIR or /tmp); INPUT_DIR puts the input elsewhere (e.g.
# /dev/shm). Everything is deleted at the end.
set -euo pipefail

size_mib=${1:-1024}
repeats=${2:-3}
base=${3:-${TMPDIR:-/tmp}}
car_mib=${4:-4096}
bin=${SEEDBANK:-${CARGO_TARGET_DIR:-target}/release/seedbank}
[ -x "$bin" ] || { echo "no seedbank binary at $bin (cargo build --release)" >&2; exit 2; }

dir=$(mktemp -d "$base/sync-gateway.XXXXXX")
input_dir=$(mktemp -d "${INPUT_DIR:-$dir}/sync-input.XXXXXX")
server=
cleanup() {
    [ -n "$server" ] && { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
    rm -rf "$input_dir" "$dir"
}
trap cleanup EXIT

now() { date +%s.%N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
peak_rss_mib() { awk '/Maximum resident set size/ {printf "%.0f", $NF / 1024}' "$1"; }
cpu_of_time() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$1"; }
# Waits (bounded) for a server's first line of output in FILE.
first_line() {
    for _ in $(seq 1 300); do
        [ -s "$1" ] && { head -n 1 "$1"; return; }
        sleep 0.1
    done
    echo "server printed nothing" >&2
    exit 1
}
stop_server() { kill -TERM "$server"; wait "$server" || true; server=; }
# The gateway under `/usr/bin/time`: SIGTERM goes to time's child, so time reports.
stop_timed_server() { kill -TERM "$(pgrep -P "$server")"; wait "$server" || true; server=; }

input=$input_dir/input.bin
head -c $((size_mib << 20)) /dev/urandom >"$input"
root=$("$bin" --db "$dir/A.db" add "$input" | tail -n 1 | cut -f1)
bytes=$((size_mib << 20))
echo "# sync of $size_mib MiB (root $root): gateway (HTTP, CAR + raw) vs QUIC, $repeats run(s), $(nproc) CPUs, $dir"
printf '%-4s %-8s %8s %9s %9s %9s  %s\n' run via "sync s" "MB/s" "RSS MiB" "CPU s" "load avg"

gw_times=()
quic_times=()
for rep in $(seq 1 "$repeats"); do
    for via in gateway quic; do
        rm -rf "$dir"/B.db* "$dir"/out.txt
        if [ "$via" = gateway ]; then
            "$bin" --db "$dir/A.db" gateway --listen 127.0.0.1:0 >"$dir/out.txt" 2>/dev/null &
            server=$!
            url=$(first_line "$dir/out.txt")
            args=(--gateway "$url")
        else
            "$bin" --db "$dir/A.db" serve --listen 127.0.0.1:0 >"$dir/out.txt" 2>/dev/null &
            server=$!
            args=(--peer "$(first_line "$dir/out.txt")")
        fi
        load_now=$(load)
        t0=$(now)
        /usr/bin/time -v -o "$dir/sync.time" "$bin" --db "$dir/B.db" sync "$root" "${args[@]}" --json >"$dir/report.json"
        t1=$(now)
        stop_server
        grep -q '"complete": *true' "$dir/report.json" || { echo "incomplete sync via $via" >&2; cat "$dir/report.json" >&2; exit 1; }
        if [ "$rep" = 1 ]; then
            "$bin" --db "$dir/B.db" cat "$root" | cmp - "$input" || { echo "content differs via $via" >&2; exit 1; }
        fi
        s=$(echo "$t1 - $t0" | bc -l)
        printf '%-4s %-8s %8.2f %9.0f %9s %9s  %s\n' "$rep" "$via" "$s" "$(echo "$bytes / $s / 1000000" | bc -l)" \
            "$(peak_rss_mib "$dir/sync.time")" "$(cpu_of_time "$dir/sync.time")" "$load_now"
        if [ "$via" = gateway ]; then gw_times+=("$s"); else quic_times+=("$s"); fi
    done
done
rm -rf "$dir"/B.db* "$input"

stats() { printf '%s\n' "$@" | sort -g | awk -v b="$bytes" '{a[NR] = $1} END {m = a[int((NR + 1) / 2)]; printf "%.2f s (%.2f..%.2f), %.0f MB/s", m, a[1], a[NR], b / m / 1e6}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "gateway: median $(stats "${gw_times[@]}")"
echo "quic:    median $(stats "${quic_times[@]}")"
echo "gateway/quic (medians): $(echo "$(median "${gw_times[@]}") / $(median "${quic_times[@]}")" | bc -l | cut -c1-4)x the time"

[ "$car_mib" = 0 ] && exit 0
rm -rf "$dir"/A.db*
car_root=$(head -c $((car_mib << 20)) /dev/urandom | "$bin" --db "$dir/D.db" add - | tail -n 1 | cut -f1)
/usr/bin/time -v -o "$dir/gateway.time" "$bin" --db "$dir/D.db" gateway --listen 127.0.0.1:0 >"$dir/out.txt" 2>/dev/null &
server=$!
url=$(first_line "$dir/out.txt")
load_now=$(load)
read -r got secs < <(curl -sS -o /dev/null -w '%{size_download} %{time_total}\n' \
    -H 'Accept: application/vnd.ipld.car;version=1;order=dfs;dups=n' \
    "${url%/}/ipfs/$car_root?format=car&dag-scope=all")
stop_timed_server
echo "gateway CAR stream of $car_mib MiB (root $car_root): $got bytes in $secs s ($(echo "$got / $secs / 1000000" | bc -l | cut -d. -f1) MB/s), gateway peak RSS $(peak_rss_mib "$dir/gateway.time") MiB, load avg $load_now"
