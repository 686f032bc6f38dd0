#!/usr/bin/env bash
# Sync of a large file (or a directory of small files) between processes on loopback,
# against a local `add` of the same input (issue 21's target: sync >= 0.8x local add).
#
#   crates/bench/scripts/sync_loopback.sh [SIZE_MIB] [REPEATS] [DIR]
#
# SIZE_MIB (default 1024) of random bytes are written once (FILES=N instead writes a
# directory of N small files, 1 to 8 KiB each, and SIZE_MIB is ignored). Each repetition:
#   1. `seedbank --db A.db add INPUT` into a fresh A.db, timed (the local add);
#   2. PEERS (default 1) `seedbank serve` processes in the background (offline, 127.0.0.1):
#      the first on A.db, the others on copies of it;
#   3. `seedbank --db B.db sync ROOT --peer TICKET...` into a fresh B.db, timed: a second
#      process fetching the whole DAG from the servers over QUIC on loopback;
#   4. the servers stopped with SIGTERM.
# The first repetition also checks the synced content against the input (`cat` of a file;
# for a directory, `ls` of the root against A's).
# Both timings are whole processes (start, open, work, close), as a user runs them.
# Needs a release build (`cargo build --release`); SEEDBANK=/path/to/seedbank overrides.
# The databases go in a new directory under DIR (default $TMPDIR or /tmp); INPUT_DIR puts the
# input elsewhere (e.g. /dev/shm, to keep it off a nearly full disk: it is read from the
# page cache either way). SYNC_ARGS are added to the `sync` command line (e.g.
# "--fetches-in-flight 1", a hidden option, to compare with one fetch in flight per peer).
# The last line gives the median sync/add ratio of the repetitions
# and its spread (min..max).
set -euo pipefail

size_mib=${1:-1024}
repeats=${2:-3}
base=${3:-${TMPDIR:-/tmp}}
bin=${SEEDBANK:-${CARGO_TARGET_DIR:-target}/release/seedbank}
[ -x "$bin" ] || { echo "no seedbank binary at $bin (cargo build --release)" >&2; exit 2; }

dir=$(mktemp -d "$base/sync-loopback.XXXXXX")
input_dir=
servers=()
cleanup() { rm -rf "$input_dir" "$dir"; }
trap cleanup EXIT

now() { date +%s.%N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
peak_rss_mib() { awk '/Maximum resident set size/ {printf "%.0f", $NF / 1024}' "$1"; }
# User plus system CPU seconds from `/usr/bin/time -v`, and of a running process.
cpu_of_time() { awk -F': ' '/User time|System time/ {s += $2} END {printf "%.1f", s}' "$1"; }
cpu_of_pid() { awk -v hz="$(getconf CLK_TCK)" '{sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz}' "/proc/$1/stat"; }

peers=${PEERS:-1}
files=${FILES:-}
input_dir=$(mktemp -d "${INPUT_DIR:-$dir}/sync-input.XXXXXX")
if [ -n "$files" ]; then
    input=$input_dir/tree
    mkdir -p "$input"
    for i in $(seq 1 "$files"); do
        sub=$input/d$((i % 100))
        [ -d "$sub" ] || mkdir -p "$sub"
        head -c $((1024 + (i * 7919) % 7168)) /dev/urandom >"$sub/f$i"
    done
    what="$files small files"
else
    input=$input_dir/input.bin
    head -c $((size_mib << 20)) /dev/urandom >"$input"
    what="$size_mib MiB"
fi
sync
bytes=$(du -sb "$input" | cut -f1)
echo "# sync on loopback vs local add: $what, $peers peer(s), $repeats run(s), $(nproc) CPUs, $dir"
printf '%-4s %8s %9s %8s %9s %8s %9s %9s %8s %15s  %s\n' run "add s" "add MB/s" "sync s" "sync MB/s" "sync/add" "add RSS" "sync RSS" "add CPU" "sync CPU c+s" "load avg (add | sync)"

servers=()
cleanup() {
    for pid in "${servers[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$input_dir" "$dir"
}
ratios=()
for rep in $(seq 1 "$repeats"); do
    rm -f "$dir"/A.db* "$dir"/B.db* "$dir"/P*.db* "$dir"/ticket*
    load_add=$(load)
    t0=$(now)
    root=$(/usr/bin/time -v -o "$dir/add.time" "$bin" --db "$dir/A.db" add "$input" | tail -n 1 | cut -f1)
    t1=$(now)
    dbs=("$dir/A.db")
    for p in $(seq 2 "$peers"); do
        for f in "$dir"/A.db*; do cp "$f" "$dir/P$p.db${f#"$dir"/A.db}"; done
        dbs+=("$dir/P$p.db")
    done
    servers=()
    tickets=()
    for p in $(seq 1 "$peers"); do
        "$bin" --db "${dbs[$((p - 1))]}" serve --ticket-file "$dir/ticket$p" >"$dir/serve$p.out" 2>"$dir/serve$p.err" &
        servers+=($!)
    done
    for p in $(seq 1 "$peers"); do
        for _ in $(seq 1 300); do [ -s "$dir/ticket$p" ] && break; sleep 0.1; done
        [ -s "$dir/ticket$p" ] || { echo "serve $p wrote no ticket:" >&2; cat "$dir/serve$p.err" >&2; exit 1; }
        tickets+=(--peer "$(cat "$dir/ticket$p")")
    done
    load_sync=$(load)
    serve_cpu0=0
    for pid in "${servers[@]}"; do serve_cpu0=$(awk -v a="$serve_cpu0" -v b="$(cpu_of_pid "$pid")" 'BEGIN {print a + b}'); done
    t2=$(now)
    /usr/bin/time -v -o "$dir/sync.time" "$bin" --db "$dir/B.db" sync "$root" "${tickets[@]}" ${SYNC_ARGS:-} >"$dir/sync.out"
    t3=$(now)
    serve_cpu1=0
    for pid in "${servers[@]}"; do serve_cpu1=$(awk -v a="$serve_cpu1" -v b="$(cpu_of_pid "$pid")" 'BEGIN {print a + b}'); done
    serve_cpu=$(awk -v a="$serve_cpu0" -v b="$serve_cpu1" 'BEGIN {printf "%.1f", b - a}')
    for pid in "${servers[@]}"; do kill "$pid"; wait "$pid" || true; done
    servers=()
    if [ "$rep" = 1 ]; then
        if [ -n "$files" ]; then
            cmp -s <("$bin" --db "$dir/A.db" ls "$root") <("$bin" --db "$dir/B.db" ls "$root") \
                || { echo "synced directory differs from the added one" >&2; exit 1; }
            "$bin" --db "$dir/B.db" missing "$root" >/dev/null || { echo "blocks missing after sync" >&2; exit 1; }
        else
            "$bin" --db "$dir/B.db" cat "$root" | cmp -s - "$input" || { echo "synced bytes differ from the input" >&2; exit 1; }
        fi
    fi
    line=$(awk -v r="$rep" -v b="$bytes" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" \
        -v ar="$(peak_rss_mib "$dir/add.time")" -v sr="$(peak_rss_mib "$dir/sync.time")" \
        -v ac="$(cpu_of_time "$dir/add.time")" -v sc="$(cpu_of_time "$dir/sync.time")" -v vc="$serve_cpu" \
        -v la="$load_add" -v ls="$load_sync" 'BEGIN {
        a = t1 - t0; s = t3 - t2;
        printf "%-4s %8.1f %9.0f %8.1f %9.0f %7.2fx %5s MiB %5s MiB %7.1fs %7.1f+%.1fs  %s | %s\n",
            r, a, b / a / 1e6, s, b / s / 1e6, a / s, ar, sr, ac, sc, vc, la, ls }')
    echo "$line"
    ratios+=("$(echo "$line" | awk '{print $6}' | tr -d x)")
done
echo "root $root"
printf '%s\n' "${ratios[@]}" | sort -n | awk '{v[NR] = $1} END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
    printf "sync/add median %.2fx (min %.2fx, max %.2fx, %d runs)\n", m, v[1], v[NR], NR }'
echo "last sync report:"
sed 's/^/  /' "$dir/sync.out"
