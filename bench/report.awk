# bench/report.awk — bench/run.sh's table, as text (MODE=text) or Markdown
# (MODE=md).  Run after stats.awk (see there for the inputs):
#
#   awk -v MODE=text -v WLS=... -v ALS=... -v INFO=FILE \
#       -f bench/stats.awk -f bench/report.awk RESULTS
#
# Prints, per workload, each allocator's medians and ebbmalloc/peer ratios;
# then the matrix of time ratios and of peak-RSS ratios (workloads x peers,
# with the ratio to the best peer and the geometric means); then the three
# target lines, PASS or MISS with the numbers.  Every ratio is oriented so
# that below 1 means ebbmalloc is better: for redis, whose figure is
# requests per second, the ratio is peer req/s / ebbmalloc req/s (the same
# as ebbmalloc's time per request / the peer's).

function row7(c1, c2, c3, c4, c5, c6, c7) {
    if (MODE == "md") printf "| %s | %s | %s | %s | %s | %s | %s |\n", c1, c2, c3, c4, c5, c6, c7
    else printf "  %-10s %9s %8s %8s %5s %11s %12s\n", c1, c2, c3, c4, c5, c6, c7
}
function heading(s) {
    if (MODE == "md") printf "### %s\n\n", s
    else printf "== %s ==\n\n", s
}
function figure(w, x) {         # the displayed time figure
    if (unit[w] == "us/req") return x > 0 ? sprintf("%.0f", 1e6 / x) : "-"
    return sprintf("%.2f", x)
}

function workload_block(w,   j, a, t, r) {
    if (MODE == "md") {
        printf "#### %s — %s\n\n`%s`", w, desc[w], cmd[w]
        if (calls[w] != "" && calls[w] != "?") printf " — %s allocator calls per run", calls[w]
        printf "\n\n"
        if (unit[w] == "us/req")
            printf "Figure: requests per second (higher is better); ratios are peer req/s ÷ ebbmalloc req/s, so below 1 is still ebbmalloc better.\n\n"
        row7("allocator", unit[w] == "us/req" ? "req/s" : "wall s", "cpu s", "peak RSS MiB", "runs",
             "ebb/peer time", "ebb/peer RSS")
        row7("---", "---:", "---:", "---:", "---:", "---:", "---:")
    } else {
        printf "%s — %s\n  %s", w, desc[w], cmd[w]
        if (calls[w] != "" && calls[w] != "?") printf "; %s allocator calls per run", calls[w]
        printf "\n"
        if (unit[w] == "us/req")
            printf "  figure: requests/s (higher is better); ratios = peer req/s / ebbmalloc req/s (below 1: ebbmalloc better)\n"
        row7("allocator", unit[w] == "us/req" ? "req/s" : "wall s", "cpu s", "RSS MiB", "runs",
             "ebb/peer t", "ebb/peer RSS")
    }
    for (j = 1; j <= na; j++) {
        a = al[j]
        if (runs[w, a] == 0) { row7(a, "FAIL", "FAIL", "FAIL", 0, "-", "-"); continue }
        t = r = "-"
        if (a != E) { t = r2(rt[w, a]); r = r2(rr[w, a]) }
        row7(a, figure(w, mt[w, a]), sprintf("%.2f", mc[w, a]), sprintf("%.1f", mr[w, a] / 1024),
             runs[w, a], t, r)
    }
    if (bt[w] != "" || br[w] != "") {
        if (MODE == "md") printf "\n"
        printf "%sebbmalloc / best peer: time %s (best: %s), peak RSS %s (best: %s)\n",
               MODE == "md" ? "" : "  ", r2(bt[w]), bpt[w] == "" ? "-" : bpt[w],
               r2(br[w]), bpr[w] == "" ? "-" : bpr[w]
    }
    printf "\n"
}

# Workloads x peers, plus best peer and geometric means.  which: "t" or "r".
function matrix(which,   i, j, w, p, line, v, b, bp, g) {
    if (MODE == "md") {
        line = "| workload"
        for (j = 1; j <= np; j++) line = line " | " peer[j]
        print line " | best peer | ebb/best |"
        line = "| ---"
        for (j = 1; j <= np; j++) line = line " | ---:"
        print line " | --- | ---: |"
    } else {
        line = sprintf("  %-12s", "workload")
        for (j = 1; j <= np; j++) line = line sprintf(" %9s", peer[j])
        print line sprintf("  %-10s %8s", "best peer", "ebb/best")
    }
    for (i = 1; i <= nw; i++) {
        w = wl[i]
        if (MODE == "md") line = "| " w
        else line = sprintf("  %-12s", w)
        for (j = 1; j <= np; j++) {
            v = which == "t" ? rt[w, peer[j]] : rr[w, peer[j]]
            line = line (MODE == "md" ? " | " r2(v) : sprintf(" %9s", r2(v)))
        }
        b = which == "t" ? bt[w] : br[w]
        bp = which == "t" ? bpt[w] : bpr[w]
        if (bp == "") bp = "-"
        if (MODE == "md") print line " | " bp " | " r2(b) " |"
        else print line sprintf("  %-10s %8s", bp, r2(b))
    }
    if (MODE == "md") line = "| **geomean**"
    else line = sprintf("  %-12s", "geomean")
    for (j = 1; j <= np; j++) {
        g = which == "t" ? gt[peer[j]] : gr[peer[j]]
        line = line (MODE == "md" ? " | **" r2(g) "**" : sprintf(" %9s", r2(g)))
    }
    g = which == "t" ? gbt : gbr
    if (MODE == "md") print line " | | **" r2(g) "** |"
    else print line sprintf("  %-10s %8s", "", r2(g))
    printf "\n"
}

function targets(   i, w, ok, over, line) {
    heading("targets")
    # (a) time geomean vs mimalloc
    ok = gt["mimalloc"] != "" && gt["mimalloc"] <= 1.00
    line = sprintf("(a) time, geomean of ebbmalloc/mimalloc over %d workloads = %s (target <= 1.00): %s",
                   nw, r2(gt["mimalloc"]), gt["mimalloc"] == "" ? "MISS (no mimalloc data)" : (ok ? "PASS" : "MISS"))
    out(line)
    # (b) no workload slower than 1.25 x the best peer
    over = ""
    for (i = 1; i <= nw; i++) {
        w = wl[i]
        if (bt[w] != "" && bt[w] > 1.25) over = over sprintf("%s%s %.2f vs %s", over == "" ? "" : ", ", w, bt[w], bpt[w])
    }
    line = sprintf("(b) time, worst ebbmalloc/best-peer ratio = %s (%s; target <= 1.25 on every workload): %s",
                   r2(worst), worstw == "" ? "-" : worstw, over == "" && worst != "" ? "PASS" : "MISS")
    if (over != "") line = line " — over 1.25: " over
    out(line)
    # (c) RSS geomean vs the best peer on each workload
    ok = gbr != "" && gbr <= 1.00
    line = sprintf("(c) peak RSS, geomean over workloads of ebbmalloc/best-peer = %s (target <= 1.00): %s",
                   r2(gbr), ok ? "PASS" : "MISS")
    out(line)
    printf "\n"
}
function out(s) { if (MODE == "md") print "- " s; else print "  " s }

END {
    compute()
    if (MODE == "md") printf "## Workloads\n\n"
    for (i = 1; i <= nw; i++) workload_block(wl[i])
    heading("ebbmalloc/peer wall-time ratios (below 1: ebbmalloc faster; redis: inverse of req/s)")
    matrix("t")
    heading("ebbmalloc/peer peak-RSS ratios (below 1: ebbmalloc smaller)")
    matrix("r")
    targets()
}
