# bench/onoff.awk — the cost of reclamation: ebbmalloc with its defaults
# ("ebbmalloc") against ebbmalloc with reclamation switched off ("ebb-off":
# EBB_RECLAIM_DELAY_MS=3600000 EBB_BACKGROUND=0 EBB_RETAIN_MAX=1099511627776),
# both run in the same interleaved rounds of the speed suite.
#
#   awk -v MODE=text|md [-v ON=ebbmalloc -v OFF=ebb-off] -f bench/onoff.awk RESULTS
#
# RESULTS has one line per run:  workload allocator round wall cpu rss_kib status
# (status "ok" counts; other allocators' lines are ignored).  Prints, per
# workload, the medians of wall time, CPU time and peak RSS with reclamation
# on and off and the ratios on/off, then the geometric means over the
# workloads and a target line: time geomean on/off <= 1.02, and no
# workload above 1.05.  Workloads are
# listed in the order they first appear.  POSIX awk (mawk works).

function median(key, cnt, col,   i, j, t, v) {
    for (i = 1; i <= cnt; i++) v[i] = val[key, i, col] + 0
    for (i = 2; i <= cnt; i++) {
        t = v[i]
        for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]
        v[j + 1] = t
    }
    return (cnt % 2) ? v[(cnt + 1) / 2] : (v[cnt / 2] + v[cnt / 2 + 1]) / 2
}
function num(x) { return x >= 100 ? sprintf("%.1f", x) : (x >= 10 ? sprintf("%.2f", x) : sprintf("%.3f", x)) }
function row(a, b, c, d, e, f, g, h, i) {
    if (MODE == "md") printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", a, b, c, d, e, f, g, h, i
    else printf "  %-12s %8s %8s %6s %8s %8s %9s %9s %6s\n", a, b, c, d, e, f, g, h, i
}
BEGIN {
    if (ON == "") ON = "ebbmalloc"
    if (OFF == "") OFF = "ebb-off"
    if (MODE == "") MODE = "text"
    nw = 0
}
($2 == ON || $2 == OFF) && $7 == "ok" {
    if (!($1 in seen)) { seen[$1] = 1; wl[++nw] = $1 }
    k = $1 SUBSEP $2
    n[k]++
    val[k, n[k], "wall"] = $4; val[k, n[k], "cpu"] = $5; val[k, n[k], "rss"] = $6
}
END {
    if (MODE == "md") {
        printf "Reclamation on (defaults) vs off (`EBB_RECLAIM_DELAY_MS=3600000 EBB_BACKGROUND=0 EBB_RETAIN_MAX=1099511627776`),\n"
        printf "interleaved in the same rounds; medians.  Ratios are on/off: above 1 means reclamation costs time\n"
        printf "(or, for RSS, keeps more); below 1 for RSS is memory that reclamation gave back.\n\n"
        row("workload", "time on", "time off", "t on/off", "cpu on", "cpu off", "RSS on MiB", "RSS off MiB", "RSS on/off")
        row("---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:")
    } else {
        row("workload", "time on", "time off", "on/off", "cpu on", "cpu off", "RSS on", "RSS off", "on/off")
    }
    lt = 0; ct = 0; lr = 0; cr = 0; worst = 0; worstw = ""
    for (i = 1; i <= nw; i++) {
        w = wl[i]; kon = w SUBSEP ON; koff = w SUBSEP OFF
        if (!(n[kon] > 0) || !(n[koff] > 0)) {
            row(w, n[kon] > 0 ? "" : "FAIL", n[koff] > 0 ? "" : "FAIL", "-", "", "", "", "", "-")
            continue
        }
        ton = median(kon, n[kon], "wall"); toff = median(koff, n[koff], "wall")
        con = median(kon, n[kon], "cpu"); coff = median(koff, n[koff], "cpu")
        ron = median(kon, n[kon], "rss"); roff = median(koff, n[koff], "rss")
        rt = toff > 0 ? ton / toff : ""
        rr = roff > 0 ? ron / roff : ""
        if (rt != "" && rt > 0) { lt += log(rt); ct++; if (rt > worst) { worst = rt; worstw = w } }
        if (rr != "" && rr > 0) { lr += log(rr); cr++ }
        row(w, num(ton), num(toff), rt == "" ? "-" : sprintf("%.3f", rt), num(con), num(coff),
            sprintf("%.1f", ron / 1024), sprintf("%.1f", roff / 1024), rr == "" ? "-" : sprintf("%.3f", rr))
    }
    gt = ct > 0 ? exp(lt / ct) : ""
    gr = cr > 0 ? exp(lr / cr) : ""
    line1 = sprintf("geometric mean on/off over %d workloads: time %s, peak RSS %s", ct,
                    gt == "" ? "-" : sprintf("%.3f", gt), gr == "" ? "-" : sprintf("%.3f", gr))
    line2 = sprintf("target reclamation cost: time geomean on/off %s <= 1.02, none above 1.05 (largest: %s %.3f): %s",
                    gt == "" ? "-" : sprintf("%.3f", gt), worstw, worst,
                    (gt != "" && gt <= 1.02 && worst <= 1.05) ? "PASS" : "MISS")
    if (MODE == "md") printf "\n%s\n\n**%s**\n", line1, line2
    else printf "\n%s\n%s\n", line1, line2
}
