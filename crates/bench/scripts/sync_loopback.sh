#!/usr/bin/env bash
# Sync of a large file between two processes on loopback, against a local `add` of the same
# file (issue 21's target: sync >= 0.8x local add).
#
#   crates/bench/scripts/sync_loopback.sh [SIZE_MIB] [REPEATS] [DIR]
#
# SIZE_MIB (default 1024) of random bytes are written once. Each repetition:
#   1. `seedbank --db A.db add FILE` into a fresh A.db, timed (the local add);
#   2. `seedbank --db A.db serve` in the background (offline, 127.0.0.1);
#   3. `seedbank --db B.db sync ROOT --peer TICKET` into a fresh B.db, timed: a second
#      process fetching the whole DAG from the first over QUIC on loopback;
#   4. the server stopped with SIGTERM.
# The first repetition also checks `seedbank --db B.db cat ROOT` against the input.
# Both timings are whole processes (start, open, work, close), as a user runs them.
# Needs a release build (`cargo build --release`); SEEDBANK=/path/to/seedbank overrides.
# The databases go in a new directory under DIR (default $TMPDIR or /tmp); INPUT_DIR puts the
# input elsewhere (e.g. /dev/shm, to keep it off a nearly full disk: it is read from the
# page cache either way).
set -euo pipefail

size_mib=${1:-1024}
repeats=${2:-3}
base=${3:-${TMPDIR:-/tmp}}
bin=${SEEDBANK:-${CARGO_TARGET_DIR:-target}/release/seedbank}
[ -x "$bin" ] || { echo "no seedbank binary at $bin (cargo build --release)" >&2; exit 2; }

dir=$(mktemp -d "$base/sync-loopback.XXXXXX")
input_dir=
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$input_dir" "$dir"
}
trap cleanup EXIT

now() { date +%s.%N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
peak_rss_mib() { awk '/Maximum resident set size/ {printf "%.0f", $NF / 1024}' "$1"; }
# User plus system CPU seconds from `/usr/bin/time -v`, and of a running process.
cpu_of_time() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$1"; }
cpu_of_pid() { awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz}' "/proc/$1/stat"; }

input_dir=$(mktemp -d "${INPUT_DIR:-$dir}/sync-input.XXXXXX")
input=$input_dir/input.bin
head -c $((size_mib << 20)) /dev/urandom >"$input"
sync
bytes=$(stat -c %s "$input")
echo "# sync on loopback vs local add: $size_mib MiB, $repeats run(s), $(nproc) CPUs, $dir"
printf '%-4s %8s %9s %8s %9s %8s %9s %9s %8s %15s  %s\n' run "add s" "add MB/s" "sync s" "sync MB/s" "sync/add" "add RSS" "sync RSS" "add CPU" "sync CPU c+s" "load avg (add | sync)"

for rep in $(seq 1 "$repeats"); do
    rm -f "$dir"/A.db* "$dir"/B.db* "$dir/ticket"
    load_add=$(load)
    t0=$(now)
    root=$(/usr/bin/time -v -o "$dir/add.time" "$bin" --db "$dir/A.db" add "$input" | tail -n 1 | cut -f1)
    t1=$(now)
    "$bin" --db "$dir/A.db" serve --ticket-file "$dir/ticket" >"$dir/serve.out" 2>"$dir/serve.err" &
    server=$!
    for _ in $(seq 1 300); do [ -s "$dir/ticket" ] && break; sleep 0.1; done
    [ -s "$dir/ticket" ] || { echo "serve wrote no ticket:" >&2; cat "$dir/serve.err" >&2; exit 1; }
    load_sync=$(load)
    serve_cpu0=$(cpu_of_pid "$server")
    t2=$(now)
    /usr/bin/time -v -o "$dir/sync.time" "$bin" --db "$dir/B.db" sync "$root" --peer "$(cat "$dir/ticket")" >"$dir/sync.out"
    t3=$(now)
    serve_cpu=$(awk -v a="$serve_cpu0" -v b="$(cpu_of_pid "$server")" 'BEGIN {printf "%.1f", b - a}')
    kill "$server"
    wait "$server" || true
    server=
    if [ "$rep" = 1 ]; then
        "$bin" --db "$dir/B.db" cat "$root" | cmp -s - "$input" || { echo "synced bytes differ from the input" >&2; exit 1; }
    fi
    awk -v r="$rep" -v b="$bytes" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" \
        -v ar="$(peak_rss_mib "$dir/add.time")" -v sr="$(peak_rss_mib "$dir/sync.time")" \
        -v ac="$(cpu_of_time "$dir/add.time")" -v sc="$(cpu_of_time "$dir/sync.time")" -v vc="$serve_cpu" \
        -v la="$load_add" -v ls="$load_sync" 'BEGIN {
        a = t1 - t0; s = t3 - t2;
        printf "%-4s %8.1f %9.0f %8.1f %9.0f %7.2fx %5s MiB %5s MiB %7.1fs %7.1f+%.1fs  %s | %s\n",
            r, a, b / a / 1e6, s, b / s / 1e6, a / s, ar, sr, ac, sc, vc, la, ls }'
done
echo "root $root"
echo "last sync report:"
sed 's/^/  /' "$dir/sync.out"
