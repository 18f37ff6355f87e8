# bench/stats.awk — the numbers behind bench/run.sh's table and chart:
# medians, ebbmalloc/peer ratios, best peers, geometric means, targets.
# Not run on its own: report.awk and svg.awk are run after it, as in
#
#   awk -v WLS="churn ..." -v ALS="glibc ... ebbmalloc" -v INFO=FILE \
#       -f bench/stats.awk -f bench/report.awk RESULTS
#
# RESULTS: one line per run, "workload allocator round value cpu rss_kib
# status".  value is lower-is-better for every workload: wall seconds, or
# microseconds per request for redis.  Only status "ok" lines count;
# allocators not in ALS (e.g. ebb-off) are ignored here.
# INFO: one line per workload, tab-separated: name, command, allocator
# calls per run, unit ("s" or "us/req"), one-line description.
# POSIX awk (mawk is fine): no gawk extensions.

$7 == "ok" {
    k = $1 SUBSEP $2
    n[k]++
    val[k, n[k], 1] = $4; val[k, n[k], 2] = $5; val[k, n[k], 3] = $6
}

function median(key, cnt, col,   i, j, t, v) {
    for (i = 1; i <= cnt; i++) v[i] = val[key, i, col] + 0
    for (i = 2; i <= cnt; i++) {
        t = v[i]
        for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
        v[j + 1] = t
    }
    if (cnt % 2) return v[(cnt + 1) / 2]
    return (v[cnt / 2] + v[cnt / 2 + 1]) / 2
}

# Everything the reports need, in globals:
#   wl[1..nw], al[1..na], peer[1..np], E (ebbmalloc)
#   runs[w,a], mt[w,a] mc[w,a] mr[w,a]      medians: value, cpu s, rss KiB
#   rt[w,p] rr[w,p]                         ebbmalloc/peer, time and RSS
#   bt[w] bpt[w], br[w] bpr[w]              ratio to the best peer, and who
#   gt[p] gr[p]                             geomeans over workloads per peer
#   gbt gbr, worst worstw                   geomeans and maximum of bt/br
#   desc[w] cmd[w] calls[w] unit[w]         from INFO
function compute(   i, j, w, a, p, k, line, f, best, lt, ct, lr, cr, lbt, cbt, lbr, cbr) {
    E = "ebbmalloc"
    nw = split(WLS, wl, " ")
    na = split(ALS, al, " ")
    np = 0
    for (j = 1; j <= na; j++) if (al[j] != E) peer[++np] = al[j]
    if (INFO != "") {
        while ((getline line < INFO) > 0) {
            split(line, f, "\t")
            cmd[f[1]] = f[2]; calls[f[1]] = f[3]; unit[f[1]] = f[4]; desc[f[1]] = f[5]
        }
        close(INFO)
    }
    for (i = 1; i <= nw; i++) {
        w = wl[i]
        for (j = 1; j <= na; j++) {
            a = al[j]; k = w SUBSEP a
            runs[w, a] = n[k] + 0
            if (n[k] > 0) {
                mt[w, a] = median(k, n[k], 1)
                mc[w, a] = median(k, n[k], 2)
                mr[w, a] = median(k, n[k], 3)
            }
        }
    }
    lbt = cbt = lbr = cbr = 0
    worst = ""; worstw = ""
    for (j = 1; j <= np; j++) { lt[peer[j]] = 0; ct[peer[j]] = 0; lr[peer[j]] = 0; cr[peer[j]] = 0 }
    for (i = 1; i <= nw; i++) {
        w = wl[i]
        bt[w] = br[w] = bpt[w] = bpr[w] = ""
        if (runs[w, E] == 0) continue
        for (j = 1; j <= np; j++) {
            p = peer[j]
            rt[w, p] = rr[w, p] = ""
            if (runs[w, p] == 0) continue
            if (mt[w, p] > 0) { rt[w, p] = mt[w, E] / mt[w, p]; if (rt[w, p] > 0) { lt[p] += log(rt[w, p]); ct[p]++ } }
            if (mr[w, p] > 0) { rr[w, p] = mr[w, E] / mr[w, p]; if (rr[w, p] > 0) { lr[p] += log(rr[w, p]); cr[p]++ } }
            # the best peer has the lowest median: the highest ratio
            if (rt[w, p] != "" && (bt[w] == "" || rt[w, p] > bt[w])) { bt[w] = rt[w, p]; bpt[w] = p }
            if (rr[w, p] != "" && (br[w] == "" || rr[w, p] > br[w])) { br[w] = rr[w, p]; bpr[w] = p }
        }
        if (bt[w] != "" && bt[w] > 0) { lbt += log(bt[w]); cbt++
            if (worst == "" || bt[w] > worst) { worst = bt[w]; worstw = w } }
        if (br[w] != "" && br[w] > 0) { lbr += log(br[w]); cbr++ }
    }
    for (j = 1; j <= np; j++) {
        p = peer[j]
        gt[p] = ct[p] ? exp(lt[p] / ct[p]) : ""
        gr[p] = cr[p] ? exp(lr[p] / cr[p]) : ""
    }
    gbt = cbt ? exp(lbt / cbt) : ""
    gbr = cbr ? exp(lbr / cbr) : ""
}

function r2(x) { return x == "" ? "-" : sprintf("%.2f", x) }
