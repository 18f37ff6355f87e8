# bench/modes.awk — the cost of ebbmalloc's safety modes, from the runs of
# `bench/run.sh --modes`: every variant's median wall time and peak RSS as a
# ratio to ebbmalloc's default mode, per workload, with geometric means.
#
#   awk -v MODE=text|md -v WLS="churn ..." -v VARS="ebbmalloc zero ..." \
#       -f bench/stats.awk -f bench/modes.awk RESULTS
#
# The first name of VARS is the base (ebbmalloc's default mode).  A variant
# named "scudo" (LLVM's hardened allocator) is compared with "secure" too.
# RESULTS is run.sh's file: workload allocator round value cpu rss_kib
# status; stats.awk reads it (only "ok" runs count) and gives median().

function fmt(x) { return x >= 100 ? sprintf("%.1f", x) : (x >= 10 ? sprintf("%.2f", x) : sprintf("%.3f", x)) }
function cell(num, den) { return (den > 0 && num > 0) ? sprintf("%.2f", num / den) : "—" }
function out(line) {
    if (MODE == "md") print "| " line " |"
    else { gsub(/ \|/, " ", line); gsub(/\*\*/, "", line); print "  " line }
}
END {
    if (MODE == "") MODE = "text"
    nw = split(WLS, wl, " ")
    nv = split(VARS, var, " ")
    base = var[1]
    for (i = 1; i <= nw; i++)
        for (j = 1; j <= nv; j++) {
            k = wl[i] SUBSEP var[j]
            if (n[k] > 0) { mt[k] = median(k, n[k], 1); mr[k] = median(k, n[k], 3) }
        }
    for (pass = 1; pass <= 2; pass++) {
        col = pass == 1 ? 1 : 3
        if (MODE == "md") {
            print ""
            print (pass == 1 ? "### Time: median wall time (redis: time per request), ratio to the default mode" \
                             : "### Memory: median peak RSS, ratio to the default mode")
            print ""
        } else {
            print (pass == 1 ? "time, ratio to the default mode:" : "peak RSS, ratio to the default mode:")
        }
        line = "workload | default" (pass == 1 ? "" : " MiB")
        sep = "---|---:"
        for (j = 2; j <= nv; j++) { line = line " | " var[j]; sep = sep "|---:" }
        out(line)
        if (MODE == "md") print "|" sep "|"
        for (j = 2; j <= nv; j++) { lg[j] = 0; cnt[j] = 0 }
        for (i = 1; i <= nw; i++) {
            kb = wl[i] SUBSEP base
            b = pass == 1 ? mt[kb] : mr[kb]
            line = wl[i] " | " (b > 0 ? (pass == 1 ? fmt(b) : sprintf("%.1f", b / 1024)) : "FAIL")
            for (j = 2; j <= nv; j++) {
                kv = wl[i] SUBSEP var[j]
                v = pass == 1 ? mt[kv] : mr[kv]
                line = line " | " cell(v, b)
                if (v > 0 && b > 0) { lg[j] += log(v / b); cnt[j]++ }
            }
            out(line)
        }
        line = "**geometric mean** |"
        for (j = 2; j <= nv; j++)
            line = line " | " (cnt[j] > 0 ? sprintf("%.2f (%d)", exp(lg[j] / cnt[j]), cnt[j]) : "—")
        out(line)
        if (pass == 1) for (j = 2; j <= nv; j++) gtime[var[j]] = cnt[j] > 0 ? exp(lg[j] / cnt[j]) : 0
    }
    # secure against scudo, on the workloads both ran
    ls = 0; cs = 0
    for (i = 1; i <= nw; i++) {
        a = mt[wl[i] SUBSEP "secure"]; c = mt[wl[i] SUBSEP "scudo"]
        if (a > 0 && c > 0) { ls += log(a / c); cs++ }
    }
    print ""
    if (cs > 0)
        printf "secure mode / scudo, time, geometric mean over %d workloads: %.2f\n", cs, exp(ls / cs)
    # The issue's aim is one allocation in 1000 under 3%: that is the strict
    # variant (every sample due taken); the budgeted one keeps its cost by
    # sampling less (the samples table says how much less).
    if ("strict" in gtime)
        printf "target: one allocation in 1000 guarded under 3%% (time geomean strict/default %.3f): %s\n",
            gtime["strict"], (gtime["strict"] > 0 && gtime["strict"] < 1.03) ? "PASS" : "MISS"
    if ("sample" in gtime)
        printf "with the default budget, sampling less (time geomean sample/default %.3f): %s\n",
            gtime["sample"], (gtime["sample"] > 0 && gtime["sample"] < 1.03) ? "under 3%" : "over 3%"
}
