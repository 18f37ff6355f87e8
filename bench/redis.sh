#!/bin/sh
# bench/redis.sh — one redis run: redis-server under an allocator, driven by
# redis-benchmark over TCP on 127.0.0.1.
#
#   sh bench/redis.sh LIB REQUESTS
#
# LIB is the allocator to preload into redis-server; any EBB_* variables in
# the environment reach the server too.  Empty LIB means glibc: Debian's
# redis-server links libjemalloc.so.2, which comes before libc in its
# dependencies and so would provide malloc, so glibc is preloaded
# explicitly (the libc.so.6 that ldd shows for redis-server).  The clients
# (redis-benchmark, redis-cli) never get the preload.
#
# 1. Starts redis-server --port P --bind 127.0.0.1 --save '' --appendonly no
#    on a free port P (it tries ports until one binds).
# 2. Writes a few known values with redis-cli (strings, a 64 KiB value, a
#    list, a hash, a counter).
# 3. redis-benchmark -n REQUESTS -r 100000 -d 128 -P 16 -c 50 over the tests
#    set,get,incr,lpush,lpop,sadd,hset,zadd,mset.
# 4. Reads the known values back, checks them (any difference fails the
#    run), and reads the server's CPU time (/proc/PID/stat) and peak resident
#    set (VmHWM in /proc/PID/status); shuts the server down.
#
# Prints one line:
#   redis us_per_req=X cpu_s=Y rss_kib=Z requests=N checksum=0x...
# us_per_req is the mean over the tests of 1e6/requests-per-second: time per
# request, so lower is better, like a wall time.  checksum is a CRC of what
# the server answered in step 4, which must be the same under every
# allocator.  Exit status: 0, or 1 with a message on stderr.

set -u
[ $# -eq 2 ] || { sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
LIB=$1 REQUESTS=$2
TESTS=set,get,incr,lpush,lpop,sadd,hset,zadd,mset

for c in redis-server redis-cli redis-benchmark; do
    command -v $c >/dev/null 2>&1 || { echo "redis.sh: $c not found (Debian: redis-server, redis-tools)" >&2; exit 1; }
done

if [ -z "$LIB" ]; then
    LIB=$(ldd "$(command -v redis-server)" 2>/dev/null | awk '$1 == "libc.so.6" { print $3 }')
    [ -f "$LIB" ] || { echo "redis.sh: cannot find redis-server's libc.so.6 with ldd" >&2; exit 1; }
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ebbredis.XXXXXX") || exit 1
PID=
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill "$PID" 2>/dev/null
        sleep 0.2
        kill -9 "$PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "redis.sh: $*" >&2
    [ -s "$TMP/server.log" ] && sed 's/^/redis.sh:   server: /' "$TMP/server.log" | tail -n 5 >&2
    exit 1
}

# ---- 1. start the server on a free port -------------------------------------
PORT=
base=$((20000 + $$ % 20000))
try=0
while [ $try -lt 20 ]; do
    port=$((base + try * 7))
    try=$((try + 1))
    # A port some other process answers on is not free.
    redis-cli -h 127.0.0.1 -p $port ping >/dev/null 2>&1 && continue
    env LD_PRELOAD="$LIB" redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --logfile '' --databases 1 >"$TMP/server.log" 2>&1 &
    PID=$!
    i=0
    while [ $i -lt 100 ]; do
        if ! kill -0 "$PID" 2>/dev/null; then break; fi
        if [ "$(redis-cli -h 127.0.0.1 -p $port ping 2>/dev/null)" = PONG ]; then PORT=$port; break; fi
        sleep 0.05
        i=$((i + 1))
    done
    [ -n "$PORT" ] && break
    kill "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    PID=
    grep -q 'Address already in use' "$TMP/server.log" || die "redis-server did not start"
done
[ -n "$PORT" ] || die "no free port found"
if grep -q 'cannot be preloaded' "$TMP/server.log"; then die "the preload was refused"; fi
CLI="redis-cli -h 127.0.0.1 -p $PORT"

# ---- 2. known values --------------------------------------------------------
awk 'BEGIN { s = ""; for (i = 0; i < 65536; i++) s = s sprintf("%c", 97 + (i * 7 + int(i / 26)) % 26); printf "%s", s }' \
    >"$TMP/big"
{
    echo "SET bench:str hello"
    echo "APPEND bench:str -world"
    echo "INCRBY bench:n 41"
    echo "INCR bench:n"
    echo "HSET bench:h f1 v1 f2 v2 f3 v3"
    i=0
    while [ $i -lt 200 ]; do
        echo "RPUSH bench:list item-$i-$((i * i))"
        i=$((i + 1))
    done
} | $CLI >/dev/null 2>"$TMP/cli.err" || die "redis-cli (writing) failed: $(head -n 1 "$TMP/cli.err")"
$CLI -x SET bench:big <"$TMP/big" >/dev/null || die "redis-cli SET bench:big failed"

# ---- 3. the benchmark -------------------------------------------------------
redis-benchmark -h 127.0.0.1 -p "$PORT" -n "$REQUESTS" -r 100000 -d 128 -P 16 -c 50 \
    -t "$TESTS" --csv >"$TMP/bench.csv" 2>"$TMP/bench.err" || die "redis-benchmark failed: $(head -n 2 "$TMP/bench.err")"
kill -0 "$PID" 2>/dev/null || die "redis-server died during the benchmark"

# ---- 4. read back, measure, stop ------------------------------------------------
printf '%s\n' "GET bench:str" "GET bench:n" "HGETALL bench:h" "LLEN bench:list" \
    "LINDEX bench:list 0" "LINDEX bench:list 199" "LRANGE bench:list 50 54" \
    "STRLEN bench:big" "GETRANGE bench:big 40000 40031" | $CLI >"$TMP/answers" 2>&1 ||
    die "redis-cli (reading) failed"
$CLI --no-raw GET bench:big | tr -d '"\n' >"$TMP/big.back"
cat >"$TMP/expect" <<EOF
hello-world
42
f1
v1
f2
v2
f3
v3
200
item-0-0
item-199-39601
item-50-2500
item-51-2601
item-52-2704
item-53-2809
item-54-2916
65536
$(cut -c 40001-40032 "$TMP/big")
EOF
cmp -s "$TMP/answers" "$TMP/expect" || die "wrong answers from the server: $(diff "$TMP/expect" "$TMP/answers" | head -n 4 | tr '\n' ' ')"
cmp -s "$TMP/big.back" "$TMP/big" || die "the 64 KiB value came back different"
[ -s "$TMP/bench.csv" ] || die "redis-benchmark printed nothing"

TICKS=$(getconf CLK_TCK 2>/dev/null || echo 100)
# utime and stime are fields 14 and 15 (the name field has no spaces).
CPU=$(awk -v t="$TICKS" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$PID/stat") || die "cannot read /proc/$PID/stat"
HWM=$(awk '/^VmHWM:/ { print $2 }' "/proc/$PID/status") || die "cannot read /proc/$PID/status"
$CLI shutdown nosave >/dev/null 2>&1
i=0
while kill -0 "$PID" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
wait "$PID" 2>/dev/null
rc=$?
PID=
[ "$rc" = 0 ] || die "redis-server exited with status $rc"

# mean of 1e6/rps over the tests (the csv has a header line first)
US=$(awk -F, 'NR > 1 { gsub(/"/, "", $2); if ($2 > 0) { s += 1e6 / $2; n++ } }
              END { if (n > 0) printf "%.4f", s / n }' "$TMP/bench.csv")
NT=$(awk 'NR > 1' "$TMP/bench.csv" | wc -l)
[ -n "$US" ] && [ "$NT" -ge 9 ] || die "could not read requests/s for all tests from redis-benchmark: $(head -c 300 "$TMP/bench.csv")"
SUM=$(cat "$TMP/answers" "$TMP/big.back" | cksum | awk '{ printf "0x%08x", $1 }')
echo "redis us_per_req=$US cpu_s=$CPU rss_kib=$HWM requests=$((REQUESTS * NT)) checksum=$SUM"
