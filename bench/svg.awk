# bench/svg.awk — bench/run.sh's chart: an SVG of the ebbmalloc/peer ratios,
# one bar per workload and peer, drawn from the 1.0 line, on a log scale.
# Top panel: time (wall time; redis: inverse of requests/s); bottom panel:
# peak RSS.  Below the line, ebbmalloc is faster or smaller.  Run after
# stats.awk (see there for the inputs):
#
#   awk -v WLS=... -v ALS=... -v INFO=FILE -v TITLE="..." \
#       -f bench/stats.awk -f bench/svg.awk RESULTS > latest.svg
#
# Hovering over a bar shows its exact value (an SVG <title>).

function esc(s) { gsub(/&/, "\\&amp;", s); gsub(/</, "\\&lt;", s); gsub(/>/, "\\&gt;", s); return s }
function lg2(x) { return log(x) / log(2) }
# y of ratio v in a panel whose plot area starts at top (clamped to the range)
function yof(v, top,   l) {
    l = lg2(v)
    if (l > LMAX) l = LMAX
    if (l < LMIN) l = LMIN
    return top + (LMAX - l) / (LMAX - LMIN) * PH
}

function panel(which, top, label,   i, j, k, w, p, v, x, y0, y1, gx, ticks, nt, t, tv, name) {
    printf "<text x=\"%d\" y=\"%d\" class=\"h\">%s</text>\n", LEFT, top - 12, esc(label)
    # grid and axis labels
    nt = split("0.125 0.25 0.5 0.8 1 1.25 2 4 8", ticks, " ")
    for (t = 1; t <= nt; t++) {
        tv = ticks[t] + 0
        y0 = yof(tv, top)
        printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"%s\"/>\n",
               LEFT, y0, LEFT + PW, y0, tv == 1 ? "one" : (tv == 1.25 && which == "t" ? "lim" : "grid")
        printf "<text x=\"%d\" y=\"%.1f\" class=\"ax\">%s</text>\n", LEFT - 6, y0 + 4, ticks[t]
    }
    if (which == "t")
        printf "<text x=\"%d\" y=\"%.1f\" class=\"note\">1.25: target (b), vs the best peer</text>\n",
               LEFT + PW - 4, yof(1.25, top) - 4
    printf "<text x=\"%d\" y=\"%d\" class=\"side\">↑ ebbmalloc worse</text>\n", LEFT + 4, top + 12
    printf "<text x=\"%d\" y=\"%d\" class=\"side\">↓ ebbmalloc better</text>\n", LEFT + 4, top + PH - 4
    y0 = yof(1, top)
    for (k = 1; k <= nw + 1; k++) {
        gx = LEFT + (k - 1) * GW
        if (k == nw + 1) {
            name = "geomean"
            printf "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" class=\"sep\"/>\n", gx, top, gx, top + PH
        } else {
            name = wl[k]
        }
        for (j = 1; j <= np; j++) {
            p = peer[j]
            if (k == nw + 1) v = which == "t" ? gt[p] : gr[p]
            else v = which == "t" ? rt[wl[k], p] : rr[wl[k], p]
            if (v == "" || v <= 0) continue
            x = gx + GPAD + (j - 1) * BW
            y1 = yof(v, top)
            printf "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\"><title>%s vs %s: %.2f</title></rect>\n",
                   x, (y1 < y0 ? y1 : y0), BW - 2, (y1 < y0 ? y0 - y1 : y1 - y0) + 0.5, color[j],
                   esc(name), esc(p), v
            if (lg2(v) > LMAX || lg2(v) < LMIN)   # off the scale: print the value
                printf "<text x=\"%d\" y=\"%.1f\" class=\"clip\">%.2f</text>\n",
                       x + (BW - 2) / 2, (lg2(v) > LMAX ? y1 + 10 : y1 - 3), v
        }
        printf "<text x=\"%d\" y=\"%d\" class=\"wl\" transform=\"rotate(-35 %d %d)\">%s</text>\n",
               gx + GW / 2 + 4, top + PH + 14, gx + GW / 2 + 4, top + PH + 14, esc(name)
    }
    printf "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"frame\"/>\n", LEFT, top, PW, PH
}

END {
    compute()
    split("#4e79a7 #f28e2b #59a14f #e15759 #76b7b2 #edc948", color, " ")
    LMIN = -3; LMAX = 3                     # 0.125 .. 8
    BW = 13; GPAD = 8                       # bar width, padding in a group
    GW = np * BW + 2 * GPAD                 # group width
    LEFT = 56; PW = (nw + 1) * GW; PH = 300
    W = LEFT + PW + 24
    if (W < 660) W = 660
    P1 = 78; P2 = P1 + PH + 120
    H = P2 + PH + 90
    printf "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n", W, H, W, H
    printf "<style>\n"
    printf "  .t { font-size: 16px; font-weight: bold; } .h { font-size: 13px; font-weight: bold; }\n"
    printf "  .ax { font-size: 11px; text-anchor: end; fill: #333; } .wl { font-size: 11px; text-anchor: end; }\n"
    printf "  .note { font-size: 10px; fill: #666; text-anchor: end; } .side { font-size: 10px; fill: #666; }\n"
    printf "  .clip { font-size: 9px; text-anchor: middle; }\n"
    printf "  .grid { stroke: #ddd; } .one { stroke: #000; stroke-width: 1.5; }\n"
    printf "  .lim { stroke: #c00; stroke-dasharray: 4 3; } .sep { stroke: #999; stroke-dasharray: 2 3; }\n"
    printf "  .frame { fill: none; stroke: #999; } .leg { font-size: 12px; }\n"
    printf "</style>\n"
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
    printf "<text x=\"%d\" y=\"24\" class=\"t\">%s</text>\n", LEFT, esc(TITLE == "" ? "ebbmalloc / peer" : TITLE)
    printf "<text x=\"%d\" y=\"42\" class=\"leg\">ratio ebbmalloc / peer of the medians, log scale; below 1: ebbmalloc better. Peers:</text>\n", LEFT
    for (j = 1; j <= np; j++) {
        printf "<rect x=\"%d\" y=\"50\" width=\"12\" height=\"12\" fill=\"%s\"/>\n", LEFT + (j - 1) * 100, color[j]
        printf "<text x=\"%d\" y=\"60\" class=\"leg\">%s</text>\n", LEFT + (j - 1) * 100 + 16, esc(peer[j])
    }
    panel("t", P1 + 20, "time (wall time; redis: requests/s, inverted)")
    panel("r", P2, "peak resident memory (RSS)")
    printf "</svg>\n"
}
