#!/usr/bin/env python3
"""bench/report.py: the one reporter of the benchmarks in bench/.

The shell scripts (bench/run.sh, reclaim.sh, curve.sh, ebb_overhead.sh)
only run programs and append one row per run to a results file; this script
reads the rows and computes every median, ratio and geometric mean, and
writes the text tables, the Markdown reports, the SVG chart and the summary
block of the top-level README.md.  Python 3 standard library only.

    report.py section NAME ROWS [--md]   one section to stdout, as text
                                         (or Markdown with --md); NAME is
                                         speed, onoff, reclaim, curve,
                                         modes or samples
    report.py latest ROWS DIR [--readme FILE]
                                         DIR/latest.md and DIR/latest.svg
                                         (bench/run.sh); with --readme,
                                         rewrites FILE's summary block
    report.py modes ROWS FILE            the safety modes' report
                                         (bench/run.sh --modes)
    report.py overhead ROWS FILE         bench/ebb_overhead.sh's report
    report.py readme ROWS FILE           only the README summary block

The results file (bench/README.md, "The results file") is tab-separated:
a header line, then one row per run with the columns of COLUMNS below.
Lines starting with "# KEY: VALUE" carry the run's metadata (date, CPU,
the allocators and workloads in order, ...); a key may repeat (one line of
a failure message each, one package each).
"""

import argparse
import math
import os
import re
import sys
import time

COLUMNS = ["suite", "alloc", "workload", "round", "value", "cpu_s", "rss_kib", "status", "metrics"]
E = "ebbmalloc"
README_PEERS = ["glibc", "jemalloc", "tcmalloc", "mimalloc"]
THREADED = {"larson", "xthread", "falseshare", "lifetime", "threadchurn"}
START_MARK = "<!-- bench-summary:start"
END_MARK = "<!-- bench-summary:end -->"


# ---- the results file ---------------------------------------------------------

class Results:
    def __init__(self, path):
        self.meta = {}
        self.rows = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line:
                    continue
                if line.startswith("#"):
                    m = re.match(r"#\s*([A-Za-z0-9_.-]+):(?: (.*))?$", line)
                    if m:
                        self.meta.setdefault(m.group(1), []).append(m.group(2) or "")
                    continue
                fields = line.split("\t")
                if fields[0] == "suite":
                    continue            # a header line
                fields += ["-"] * (len(COLUMNS) - len(fields))
                row = dict(zip(COLUMNS, fields))
                row["m"] = {}
                if row["metrics"] not in ("", "-"):
                    for kv in row["metrics"].split(","):
                        k, _, v = kv.partition("=")
                        row["m"][k] = v
                self.rows.append(row)

    def get(self, key, default=""):
        v = self.meta.get(key)
        return v[-1] if v else default

    def all(self, key):
        return self.meta.get(key, [])

    def ok(self, suite):
        return [r for r in self.rows if r["suite"] == suite and r["status"] == "ok"]


def num(s):
    try:
        return float(s)
    except (TypeError, ValueError):
        return 0.0


def median(xs):
    v = sorted(xs)
    n = len(v)
    if n == 0:
        return None
    return v[(n - 1) // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def geomean(xs):
    xs = [x for x in xs if x is not None and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def r2(x):
    return "-" if x is None else "%.2f" % x


def cpu_info(res):
    """The CPU model and core count: from the run's metadata, else here."""
    model, cores = res.get("cpu"), res.get("cores")
    if not model or not cores:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                text = f.read()
            m = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
            model = model or (m.group(1).strip() if m else "")
            cores = cores or str(len(re.findall(r"^processor\s*:", text, re.M)))
        except OSError:
            pass
    return model or "unknown", cores or "?"


# ---- speed: the workloads under the allocators --------------------------------

class Speed:
    """Medians, ebbmalloc/peer ratios, best peers and geometric means of the
    speed rows.  Every ratio is oriented so that below 1 means ebbmalloc is
    better (redis's value is microseconds per request, lower is better)."""

    def __init__(self, res):
        self.wl = res.get("workloads").split()
        self.al = res.get("allocators").split()
        self.peers = [a for a in self.al if a != E]
        self.info = {}
        for v in res.all("workload"):
            f = v.split("\t") + [""] * 5
            self.info[f[0]] = {"cmd": f[1], "calls": f[2], "unit": f[3], "desc": f[4]}
        ok = {}
        for r in res.ok("speed"):
            ok.setdefault((r["workload"], r["alloc"]), []).append(r)
        self.runs, self.mt, self.mc, self.mr = {}, {}, {}, {}
        for w in self.wl:
            for a in self.al:
                rs = ok.get((w, a), [])
                self.runs[w, a] = len(rs)
                if rs:
                    self.mt[w, a] = median([num(r["value"]) for r in rs])
                    self.mc[w, a] = median([num(r["cpu_s"]) for r in rs])
                    self.mr[w, a] = median([num(r["rss_kib"]) for r in rs])
        self.rt, self.rr = {}, {}
        self.bt, self.bpt, self.br, self.bpr = {}, {}, {}, {}
        self.worst, self.worstw = None, None
        for w in self.wl:
            if self.runs.get((w, E), 0) == 0:
                continue
            for p in self.peers:
                if self.runs[w, p] == 0:
                    continue
                if self.mt[w, p] > 0:
                    self.rt[w, p] = self.mt[w, E] / self.mt[w, p]
                if self.mr[w, p] > 0:
                    self.rr[w, p] = self.mr[w, E] / self.mr[w, p]
                # the best peer has the lowest median: the highest ratio
                if (w, p) in self.rt and (w not in self.bt or self.rt[w, p] > self.bt[w]):
                    self.bt[w], self.bpt[w] = self.rt[w, p], p
                if (w, p) in self.rr and (w not in self.br or self.rr[w, p] > self.br[w]):
                    self.br[w], self.bpr[w] = self.rr[w, p], p
            if self.bt.get(w, 0) > 0 and (self.worst is None or self.bt[w] > self.worst):
                self.worst, self.worstw = self.bt[w], w
        self.gt = {p: geomean([self.rt.get((w, p)) for w in self.wl]) for p in self.peers}
        self.gr = {p: geomean([self.rr.get((w, p)) for w in self.wl]) for p in self.peers}
        self.gbt = geomean([self.bt.get(w) for w in self.wl])
        self.gbr = geomean([self.br.get(w) for w in self.wl])


def speed_report(res, md):
    s = Speed(res)
    out = []

    def row7(*c):
        if md:
            out.append("| %s | %s | %s | %s | %s | %s | %s |\n" % c)
        else:
            out.append("  %-10s %9s %8s %8s %5s %11s %12s\n" % c)

    def heading(t):
        out.append(("### %s\n\n" if md else "== %s ==\n\n") % t)

    def figure(w, x):
        if s.info.get(w, {}).get("unit") == "us/req":
            return "%.0f" % (1e6 / x) if x > 0 else "-"
        return "%.2f" % x

    def line(t):
        out.append(("- %s\n" if md else "  %s\n") % t)

    if md:
        out.append("## Workloads\n\n")
    for w in s.wl:
        i = s.info.get(w, {"cmd": "", "calls": "", "unit": "s", "desc": ""})
        calls = i["calls"] not in ("", "?")
        redis = i["unit"] == "us/req"
        if md:
            out.append("#### %s — %s\n\n`%s`" % (w, i["desc"], i["cmd"]))
            if calls:
                out.append(" — %s allocator calls per run" % i["calls"])
            out.append("\n\n")
            if redis:
                out.append("Figure: requests per second (higher is better); ratios are peer req/s"
                           " ÷ ebbmalloc req/s, so below 1 is still ebbmalloc better.\n\n")
            row7("allocator", "req/s" if redis else "wall s", "cpu s", "peak RSS MiB", "runs",
                 "ebb/peer time", "ebb/peer RSS")
            row7("---", "---:", "---:", "---:", "---:", "---:", "---:")
        else:
            out.append("%s — %s\n  %s" % (w, i["desc"], i["cmd"]))
            if calls:
                out.append("; %s allocator calls per run" % i["calls"])
            out.append("\n")
            if redis:
                out.append("  figure: requests/s (higher is better); ratios = peer req/s / ebbmalloc"
                           " req/s (below 1: ebbmalloc better)\n")
            row7("allocator", "req/s" if redis else "wall s", "cpu s", "RSS MiB", "runs",
                 "ebb/peer t", "ebb/peer RSS")
        for a in s.al:
            if s.runs[w, a] == 0:
                row7(a, "FAIL", "FAIL", "FAIL", 0, "-", "-")
                continue
            t = r = "-"
            if a != E:
                t, r = r2(s.rt.get((w, a))), r2(s.rr.get((w, a)))
            row7(a, figure(w, s.mt[w, a]), "%.2f" % s.mc[w, a], "%.1f" % (s.mr[w, a] / 1024),
                 s.runs[w, a], t, r)
        if w in s.bt or w in s.br:
            if md:
                out.append("\n")
            out.append("%sebbmalloc / best peer: time %s (best: %s), peak RSS %s (best: %s)\n"
                       % ("" if md else "  ", r2(s.bt.get(w)), s.bpt.get(w, "-"),
                          r2(s.br.get(w)), s.bpr.get(w, "-")))
        out.append("\n")

    def matrix(which):
        ratio, best, bestp = (s.rt, s.bt, s.bpt) if which == "t" else (s.rr, s.br, s.bpr)
        g, gb = (s.gt, s.gbt) if which == "t" else (s.gr, s.gbr)
        if md:
            out.append("| workload" + "".join(" | " + p for p in s.peers) + " | best peer | ebb/best |\n")
            out.append("| ---" + " | ---:" * len(s.peers) + " | --- | ---: |\n")
        else:
            out.append("  %-12s" % "workload" + "".join(" %9s" % p for p in s.peers)
                       + "  %-10s %8s\n" % ("best peer", "ebb/best"))
        for w in s.wl:
            cells = [r2(ratio.get((w, p))) for p in s.peers]
            if md:
                out.append("| " + w + "".join(" | " + c for c in cells)
                           + " | %s | %s |\n" % (bestp.get(w, "-"), r2(best.get(w))))
            else:
                out.append("  %-12s" % w + "".join(" %9s" % c for c in cells)
                           + "  %-10s %8s\n" % (bestp.get(w, "-"), r2(best.get(w))))
        if md:
            out.append("| **geomean**" + "".join(" | **%s**" % r2(g[p]) for p in s.peers)
                       + " | | **%s** |\n" % r2(gb))
        else:
            out.append("  %-12s" % "geomean" + "".join(" %9s" % r2(g[p]) for p in s.peers)
                       + "  %-10s %8s\n" % ("", r2(gb)))
        out.append("\n")

    heading("ebbmalloc/peer wall-time ratios (below 1: ebbmalloc faster; redis: inverse of req/s)")
    matrix("t")
    heading("ebbmalloc/peer peak-RSS ratios (below 1: ebbmalloc smaller)")
    matrix("r")

    heading("targets")
    g = s.gt.get("mimalloc")
    line("(a) time, geomean of ebbmalloc/mimalloc over %d workloads = %s (target <= 1.00): %s"
         % (len(s.wl), r2(g), "MISS (no mimalloc data)" if g is None else ("PASS" if g <= 1.00 else "MISS")))
    over = ["%s %.2f vs %s" % (w, s.bt[w], s.bpt[w]) for w in s.wl if s.bt.get(w, 0) > 1.25]
    t = ("(b) time, worst ebbmalloc/best-peer ratio = %s (%s; target <= 1.25 on every workload): %s"
         % (r2(s.worst), s.worstw or "-", "PASS" if not over and s.worst is not None else "MISS"))
    if over:
        t += " — over 1.25: " + ", ".join(over)
    line(t)
    line("(c) peak RSS, geomean over workloads of ebbmalloc/best-peer = %s (target <= 1.00): %s"
         % (r2(s.gbr), "PASS" if s.gbr is not None and s.gbr <= 1.00 else "MISS"))
    out.append("\n")
    return "".join(out)


# ---- reclamation cost: ebbmalloc with reclamation on and off -------------------

def fmt3(x):
    return "%.1f" % x if x >= 100 else ("%.2f" % x if x >= 10 else "%.3f" % x)


def onoff_report(res, md, on=E, off="ebb-off"):
    out = []
    order, ok = [], {}
    for r in res.ok("speed"):
        if r["alloc"] in (on, off):
            if r["workload"] not in order:
                order.append(r["workload"])
            ok.setdefault((r["workload"], r["alloc"]), []).append(r)

    def row(*c):
        if md:
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" % c)
        else:
            out.append("  %-12s %8s %8s %6s %8s %8s %9s %9s %6s\n" % c)

    if md:
        out.append("Reclamation on (defaults) vs off (`EBB_RECLAIM_DELAY_MS=3600000 EBB_BACKGROUND=0"
                   " EBB_RETAIN_MAX=1099511627776`),\n"
                   "interleaved in the same rounds; medians.  Ratios are on/off: above 1 means"
                   " reclamation costs time\n"
                   "(or, for RSS, keeps more); below 1 for RSS is memory that reclamation gave back.\n\n")
        row("workload", "time on", "time off", "t on/off", "cpu on", "cpu off", "RSS on MiB",
            "RSS off MiB", "RSS on/off")
        row("---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:")
    else:
        row("workload", "time on", "time off", "on/off", "cpu on", "cpu off", "RSS on", "RSS off", "on/off")
    rts, rrs, worst, worstw = [], [], 0.0, ""
    for w in order:
        a, b = ok.get((w, on), []), ok.get((w, off), [])
        if not a or not b:
            row(w, "" if a else "FAIL", "" if b else "FAIL", "-", "", "", "", "", "-")
            continue
        ton, toff = median([num(r["value"]) for r in a]), median([num(r["value"]) for r in b])
        con, coff = median([num(r["cpu_s"]) for r in a]), median([num(r["cpu_s"]) for r in b])
        ron, roff = median([num(r["rss_kib"]) for r in a]), median([num(r["rss_kib"]) for r in b])
        rt = ton / toff if toff > 0 else None
        rr = ron / roff if roff > 0 else None
        if rt is not None and rt > 0:
            rts.append(rt)
            if rt > worst:
                worst, worstw = rt, w
        if rr is not None and rr > 0:
            rrs.append(rr)
        row(w, fmt3(ton), fmt3(toff), "-" if rt is None else "%.3f" % rt, fmt3(con), fmt3(coff),
            "%.1f" % (ron / 1024), "%.1f" % (roff / 1024), "-" if rr is None else "%.3f" % rr)
    gt, gr = geomean(rts), geomean(rrs)
    line1 = "geometric mean on/off over %d workloads: time %s, peak RSS %s" % (
        len(rts), "-" if gt is None else "%.3f" % gt, "-" if gr is None else "%.3f" % gr)
    line2 = "target reclamation cost: time geomean on/off %s <= 1.02, none above 1.05 (largest: %s %.3f): %s" % (
        "-" if gt is None else "%.3f" % gt, worstw, worst,
        "PASS" if gt is not None and gt <= 1.02 and worst <= 1.05 else "MISS")
    out.append("\n%s\n\n**%s**\n" % (line1, line2) if md else "\n%s\n%s\n" % (line1, line2))
    return "".join(out)


# ---- reclamation speed (bench/reclaim.sh) ------------------------------------

def reclaim_report(res, md):
    out = []
    pats = res.get("reclaim_patterns").split()
    als = res.get("reclaim_allocators").split()
    rounds = res.get("reclaim_rounds", "?")
    tie = int(num(res.get("reclaim_tie_kib", "256")))
    desc = {}
    for v in res.all("reclaim_pattern"):
        name, _, d = v.partition("\t")
        desc[name] = d
    ok = {}
    for r in res.ok("reclaim"):
        ok.setdefault((r["workload"], r["alloc"]), []).append(r["m"])

    def mib(k):
        return "%.1f" % (k / 1024)

    def row(*c):
        if md:
            out.append("| %s | %s | %s | %s | %s | %s |\n" % c)
        else:
            out.append("  %-10s %9s %9s %9s %9s %9s\n" % c)

    if md:
        out.append("Resident memory in MiB above the program's baseline (taken before it allocates),\n"
                   "at 0, 100 and 1000 ms after the last free; medians of %s round(s). \"free ms\" is\n"
                   "the time of the free phase.  Target: ebbmalloc's RSS at 100 ms is the lowest of\n"
                   "all allocators (a tie within %d KiB counts).\n\n" % (rounds, tie))
    passed = 0
    for p in pats:
        if md:
            out.append("#### %s — %s\n\n" % (p, desc.get(p, "")))
            row("allocator", "peak MiB", "@0 ms", "@100 ms", "@1000 ms", "free ms")
            row("---", "---:", "---:", "---:", "---:", "---:")
        else:
            out.append("%s  (%s)\n" % (p, desc.get(p, "")))
            row("allocator", "peak MiB", "@0ms", "@100ms", "@1000ms", "free ms")
        best, bestname, ebb = None, "", None
        for a in als:
            ms = ok.get((p, a), [])
            if not ms:
                row(a, "FAIL", "FAIL", "FAIL", "FAIL", "FAIL")
                continue

            def med(k):
                return median([num(m.get(k)) for m in ms])
            r100 = med("rss100_kib")
            row(a, mib(med("peak_kib")), mib(med("rss0_kib")), mib(r100), mib(med("rss1000_kib")),
                "%.1f" % med("free_ms"))
            if a == E:
                ebb = r100
            elif best is None or r100 < best:
                best, bestname = r100, a
        if ebb is None or best is None:
            verdict = "MISS (no result)"
        elif ebb <= best:
            verdict = "PASS"
        elif ebb <= best + tie:
            verdict = "PASS (tie: +%.2f MiB)" % ((ebb - best) / 1024)
        else:
            verdict = "MISS"
        if verdict.startswith("PASS"):
            passed += 1
        t = "target %s: ebbmalloc @100ms %s MiB, lowest peer %s MiB (%s): %s" % (
            p, "-" if ebb is None else mib(ebb), "-" if best is None else mib(best), bestname, verdict)
        out.append("\n%s\n\n" % t if md else "  %s\n\n" % t)
    t = "reclamation target (ebbmalloc lowest RSS at 100 ms on every pattern): %d/%d patterns: %s" % (
        passed, len(pats), "PASS" if passed == len(pats) else "MISS")
    out.append("**%s**\n" % t if md else t + "\n")
    return "".join(out)


# ---- big buffers: time against peak RSS (bench/curve.sh) -----------------------

def curve_report(res, md):
    points, order = {}, []
    rows = [r for r in res.ok("speed") if r["workload"] == "bigbuf"] + res.ok("curve")
    for r in rows:
        if r["alloc"] not in points:
            order.append(r["alloc"])
            points[r["alloc"]] = []
        points[r["alloc"]].append((num(r["value"]), num(r["rss_kib"])))
    t = {k: median([x[0] for x in v]) for k, v in points.items()}
    rss = {k: median([x[1] for x in v]) / 1024 for k, v in points.items()}
    fastest, fname = 0, ""
    for k in order:
        if k in README_PEERS and (fastest == 0 or t[k] < fastest):
            fastest, fname = t[k], k
    keys = sorted(order, key=lambda k: rss[k])
    out = []
    if md:
        out.append("`bigbuf %s` (20 buffers of 5-25 MiB replaced at random, zero-filled; medians of %s rounds):\n"
                   "ebbmalloc's defaults and three retention settings beside the peers, sorted by peak RSS.\n"
                   "`keep-none` is `EBB_RETAIN_MAX=0`, `retain-64M` `EBB_RETAIN_MAX=64M`, `keep-all`\n"
                   "`EBB_RETAIN_MAX=1024G EBB_RECLAIM_DELAY_MS=3600000`.\n\n"
                   % (res.get("curve_iterations", "?"), res.get("curve_rounds", "?")))
        out.append("| allocator / setting | time s | peak RSS MiB | time / fastest peer (%s) | RSS / glibc |\n"
                   "|---|---:|---:|---:|---:|\n" % fname)
    else:
        out.append("  %-12s %8s %10s %14s %12s\n" % ("point", "time s", "RSS MiB", "t / " + fname, "RSS / glibc"))
    for k in keys:
        rt = "%.2f" % (t[k] / fastest) if fastest > 0 else "-"
        rr = "%.2f" % (rss[k] / rss["glibc"]) if rss.get("glibc", 0) > 0 else "-"
        if md:
            out.append("| %s | %.2f | %.0f | %s | %s |\n" % (k, t[k], rss[k], rt, rr))
        else:
            out.append("  %-12s %8.2f %10.0f %14s %12s\n" % (k, t[k], rss[k], rt, rr))
    return "".join(out)


# ---- the safety modes (bench/run.sh --modes) ---------------------------------

def modes_report(res, md):
    wl = res.get("workloads").split()
    var = res.get("allocators").split()
    base = var[0] if var else E
    ok = {}
    for r in res.ok("speed"):
        ok.setdefault((r["workload"], r["alloc"]), []).append(r)
    mt = {k: median([num(r["value"]) for r in v]) for k, v in ok.items()}
    mr = {k: median([num(r["rss_kib"]) for r in v]) for k, v in ok.items()}
    out = []

    def emit(line):
        if md:
            out.append("| " + line + " |\n")
        else:
            out.append("  " + re.sub(r" \|", " ", line).replace("**", "") + "\n")

    def cell(v, b):
        return "%.2f" % (v / b) if v and b and v > 0 and b > 0 else "—"

    gtime = {}
    for pass_ in (1, 2):
        m = mt if pass_ == 1 else mr
        if md:
            out.append("\n" + ("### Time: median wall time (redis: time per request), ratio to the default mode"
                               if pass_ == 1 else "### Memory: median peak RSS, ratio to the default mode") + "\n\n")
        else:
            out.append(("time, ratio to the default mode:" if pass_ == 1
                        else "peak RSS, ratio to the default mode:") + "\n")
        emit("workload | default" + ("" if pass_ == 1 else " MiB") + "".join(" | " + v for v in var[1:]))
        if md:
            out.append("|---|---:" + "|---:" * (len(var) - 1) + "|\n")
        logs = {v: [] for v in var[1:]}
        for w in wl:
            b = m.get((w, base))
            if b is not None and b > 0:
                line = w + " | " + (fmt3(b) if pass_ == 1 else "%.1f" % (b / 1024))
            else:
                line = w + " | FAIL"
            for v in var[1:]:
                x = m.get((w, v))
                line += " | " + cell(x, b)
                if x and b and x > 0 and b > 0:
                    logs[v].append(x / b)
            emit(line)
        line = "**geometric mean** |"
        for v in var[1:]:
            g = geomean(logs[v])
            line += " | " + ("%.2f (%d)" % (g, len(logs[v])) if g is not None else "—")
            if pass_ == 1:
                gtime[v] = g or 0
        emit(line)
    sc = [mt[w, "secure"] / mt[w, "scudo"] for w in wl
          if mt.get((w, "secure"), 0) > 0 and mt.get((w, "scudo"), 0) > 0]
    out.append("\n")
    if sc:
        out.append("secure mode / scudo, time, geometric mean over %d workloads: %.2f\n" % (len(sc), geomean(sc)))
    # The aim is one allocation in 1000 under 3%: that is the strict
    # variant (every sample due taken); the budgeted one keeps its cost by
    # sampling less (the samples table says how much less).
    if "strict" in gtime:
        g = gtime["strict"]
        out.append("target: one allocation in 1000 guarded under 3%% (time geomean strict/default %.3f): %s\n"
                   % (g, "PASS" if 0 < g < 1.03 else "MISS"))
    if "sample" in gtime:
        g = gtime["sample"]
        out.append("with the default budget, sampling less (time geomean sample/default %.3f): %s\n"
                   % (g, "under 3%" if 0 < g < 1.03 else "over 3%"))
    return "".join(out)


def protcost_floor(res):
    """The page-protection cost of one sample, in µs: one thread, and with
    another thread running (bench/protcost.c's lines)."""
    us1 = usmt = 0.0
    for line in res.all("protcost"):
        m = re.match(r"^one thread:.*: ([0-9.]+) us a sample$", line)
        if m:
            us1 = num(m.group(1))
        m = re.match(r"^another thread running:.*: ([0-9.]+) us a sample$", line)
        if m:
            usmt = num(m.group(1))
    return us1, usmt


def samples_report(res, md):
    """The sampled guard's samples: rows of suite "samples", alloc "sample"
    (the default budget) or "strict" (no budget), one run each."""
    us1, usmt = protcost_floor(res)
    times = {}
    for r in res.ok("speed"):
        if r["alloc"] == E:
            times.setdefault(r["workload"], []).append(num(r["value"]))
    order, runs = [], {}
    for r in res.rows:
        if r["suite"] == "samples":
            if r["workload"] not in order:
                order.append(r["workload"])
            runs[r["workload"], r["alloc"]] = r["m"]
    out = []
    if order:
        if md:
            out.append("| workload | mallocs | samples due | taken | skipped | one in | µs each |"
                       " no budget: taken | one in | µs each | floor |\n"
                       "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
        else:
            out.append("  workload      mallocs   due  taken  skipped  one-in  us-each |"
                       " no budget: taken  one-in  us-each | floor\n")

    def us(ns, n):
        return "%.1f" % (ns / n / 1000) if n > 0 else "—"

    floors = []
    for w in order:
        a, b = runs.get((w, "sample"), {}), runs.get((w, "strict"), {})
        mallocs, taken, skipped, ns = (int(num(a.get(k))) for k in ("mallocs", "taken", "skipped", "ns"))
        taken0, ns0, mallocs0 = int(num(b.get("taken"))), int(num(b.get("ns"))), int(num(b.get("mallocs")))
        one = "%.0f" % (mallocs / taken) if taken > 0 else "—"
        one0 = "%.0f" % (mallocs0 / taken0) if taken0 > 0 else "—"
        m = median(times.get(w, [])) or 0
        floor = "—"
        if m > 0 and us1 > 0:
            f = 1 + mallocs / 1000 * (usmt if w in THREADED else us1) / 1e6 / m
            floor = "%.2f" % f
            floors.append(f)
        if md:
            out.append("| %s | %d | %d | %d | %d | %s | %s | %d | %s | %s | %s |\n"
                       % (w, mallocs, taken + skipped, taken, skipped, one, us(ns, taken), taken0, one0,
                          us(ns0, taken0), floor))
        else:
            out.append("  %-12s %9d %5d %6d %8d %7s %8s | %6d %7s %8s | %s\n"
                       % (w, mallocs, taken + skipped, taken, skipped, one, us(ns, taken), taken0, one0,
                          us(ns0, taken0), floor))
    if floors:
        out.append("%sfloor of one in 1000 on this machine, geometric mean over %d workloads: %.3f\n"
                   % ("\n" if md else "  ", len(floors), geomean(floors)))
    return "".join(out)


# ---- whole reports ----------------------------------------------------------

def failures_md(res, key="failure"):
    lines = res.all(key)
    if not lines:
        return ""
    return ("\n**FAILED: at least one run crashed or produced a wrong checksum:**\n\n"
            + "".join("    %s\n" % l for l in lines))


def elapsed(res, a, b):
    """Seconds between two epoch-second metadata keys (b may be 'now')."""
    start = int(num(res.get(a)))
    end = int(time.time()) if b == "now" else int(num(res.get(b)))
    return end - start


def latest_md(res):
    cpu, _ = cpu_info(res)
    out = ["# ebbmalloc benchmark results\n\n",
           "- date: %s\n" % res.get("date"),
           "- mode: %s, %s rounds, allocators interleaved (%s%s); values are medians\n"
           % (res.get("mode"), res.get("runs"), res.get("allocators"),
              "".join(" " + x for x in res.get("extra_allocators").split())),
           "- nproc: %s; threads for the multi-threaded workloads: %s\n" % (res.get("nproc"), res.get("threads")),
           "- CPU: %s\n" % cpu,
           "- kernel: %s\n" % res.get("kernel"),
           "- ebbmalloc: git %s at the start; %s built %s, sha256 %s...;\n"
           % (res.get("rev"), res.get("ebb_src"), res.get("ebb_built"), res.get("ebb_sha")),
           "  every run used a copy taken at the start\n",
           "- compiler: %s\n" % res.get("compiler"),
           "- run time: %d s for the workloads, %d s for reclaim.sh\n"
           % (elapsed(res, "start", "main_end"), elapsed(res, "main_end", "end")),
           "- load average (1, 5, 15 min) before the run: %s (other processes only: above\n"
           % res.get("load_before"),
           "  about 0.5 they competed with the benchmarks for the CPUs); after: %s\n" % res.get("load_after"),
           "- packages (dpkg-query -W):\n"]
    out += ["  - %s\n" % p for p in res.all("package") if p]
    out.append("\nRatios are ebbmalloc/peer: below 1 means ebbmalloc is faster (wall time) or\n"
               "smaller (peak RSS) than that peer.  RSS is the process's peak resident set\n"
               "(for redis, the server's).  For redis the figure is requests per second, and\n"
               "its time ratio is peer req/s ÷ ebbmalloc req/s, so below 1 still means\n"
               "ebbmalloc is better.  \"Best peer\" is, per workload, the peer with the lowest\n"
               "median.  Chart: [latest.svg](latest.svg).\n\n")
    out.append(speed_report(res, True))
    out.append("## Reclamation cost: ebbmalloc with reclamation on (defaults) vs off\n\n")
    out.append("`ebb-off` is ebbmalloc run with `%s`, in the same interleaved rounds.\n\n" % res.get("off_env"))
    out.append(onoff_report(res, True))
    out.append("\n## Reclamation speed (bench/reclaim.sh %s %s)\n\n"
               % (res.get("reclaim_rounds"), res.get("reclaim_mib")))
    if res.get("reclaim_patterns"):
        out.append(reclaim_report(res, True))
    out.append("\n## Big buffers: time against peak RSS (bench/curve.sh)\n\n")
    if res.get("curve_rounds"):
        out.append(curve_report(res, True))
    out.append(failures_md(res))
    return "".join(out)


def modes_md(res):
    cpu, _ = cpu_info(res)
    limit = res.get("run_limit", "120")
    out = ["# ebbmalloc safety modes: cost on the benchmark suite\n\n",
           "- date: %s; `sh bench/run.sh %s`\n" % (res.get("date"), res.get("args")),
           "- %s workload sizes, %s rounds, variants interleaved (%s); values are medians\n"
           % (res.get("mode"), res.get("runs"), res.get("allocators")),
           "- nproc: %s; threads: %s; CPU: %s\n" % (res.get("nproc"), res.get("threads"), res.get("cpu")),
           "- ebbmalloc: git %s; run time %d s; load average before: %s, after: %s\n"
           % (res.get("rev"), elapsed(res, "start", "end"), res.get("load_before"), res.get("load_after"))]
    if res.get("scudo"):
        out.append("- scudo: %s (LLVM's hardened allocator, its default options)\n" % res.get("scudo"))
    out.append("""
Variants: `default` (no setting), `zero` (`EBB_ZERO_ON_FREE=1`), `secure`
(`EBB_SECURE=1`), `sample` (`EBB_GUARD_SAMPLE=1000`, its default budget: 1% of the time),
`strict` (`EBB_GUARD_SAMPLE=1000 EBB_GUARD_SAMPLE_BUDGET=0`: every sample due taken), `profile`
(`EBB_PROFILE=1`: the heap profiler at its default rate, one sample per 512 KiB), `profile10` (ten times
that rate), `heaptrack` (Debian's heaptrack recording every allocation, on glibc's malloc, its record
written to /dev/null: its interpretation not counted), `guard` (`EBB_GUARD=1`, for
information: a run limited to {limit} s, 60 s in guard mode; a workload it cannot run is
shown as —).  Ratios are variant/default: above 1 costs more.  For redis the figure
is the time per request.
""".replace("{limit}", limit))
    out.append(modes_report(res, True))
    out.append("""
### The sampled guard's budget: samples taken under `EBB_GUARD_SAMPLE=1000`

Two more runs of each workload with `EBB_STATS=1` (redis not: its server's exit line is not kept),
with the default budget and with none.  Samples fall due on the slow path, one in 1000 allocations
on average; "skipped" were due while the budget was spent; "one in" is mallocs per sample taken;
"µs each" is the time the sampled path took (`guard_sample_ns`, its system calls and first
touch, at allocation and free) per sample taken.  "floor" is what one in 1000 costs the workload
at the least here, whatever the allocator: its mallocs / 1000 × the page-protection cost of a sample
measured below (the threaded figure for threaded workloads), over its default-mode time.

""")
    out.append(samples_report(res, True))
    out.append("\nWhat a sample costs at the least on this machine, without the allocator (`bench/protcost.c`:\n"
               "a page closed after a write, opened again, written again; medians of 4000):\n\n")
    out += ["    %s\n" % l for l in res.all("protcost")]
    if res.all("guard-failure"):
        out.append("\nGuard mode did not complete:\n\n")
        out += ["    %s\n" % l for l in res.all("guard-failure")]
    out.append(failures_md(res))
    return "".join(out)


def overhead_md(res):
    out = ["# ebb run against a plain preload\n\n",
           "%s, %s rounds interleaved, medians of wall time;\n" % (res.get("date"), res.get("rounds")),
           "ebb samples every 50 ms (its default).\n\n",
           "| workload | preloaded s | under ebb run s | ratio |\n",
           "| --- | ---: | ---: | ---: |\n"]
    order, times = [], {}
    for r in res.ok("overhead"):
        if r["workload"] not in order:
            order.append(r["workload"])
        times.setdefault((r["workload"], r["alloc"]), []).append(num(r["value"]))
    for w in order:
        a = median(times.get((w, "preload"), []))
        b = median(times.get((w, "ebb-run"), []))
        if a is None or b is None:
            out.append("| %s | %s | %s | - |\n" % (w, "FAIL" if a is None else "%.3f" % a,
                                                   "FAIL" if b is None else "%.3f" % b))
        else:
            out.append("| %s | %.3f | %.3f | %s |\n" % (w, a, b, "%.3f" % (b / a) if a > 0 else "-"))
    return "".join(out)


# ---- the chart ------------------------------------------------------------------

def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def latest_svg(res):
    """An SVG of the ebbmalloc/peer ratios, one bar per workload and peer,
    drawn from the 1.0 line on a log scale; time on top, peak RSS below.
    Hovering over a bar shows its value (an SVG <title>)."""
    s = Speed(res)
    title = "ebbmalloc / peer — %s run, %s rounds, %s threads, %s" % (
        res.get("mode"), res.get("runs"), res.get("threads"), res.get("date"))
    color = "#4e79a7 #f28e2b #59a14f #e15759 #76b7b2 #edc948".split()
    lmin, lmax = -3, 3                  # 0.125 .. 8
    bw, gpad = 13, 8                    # bar width, padding in a group
    np_, nw = len(s.peers), len(s.wl)
    gw = np_ * bw + 2 * gpad            # group width
    left, ph = 56, 300
    pw = (nw + 1) * gw
    w = max(left + pw + 24, 660)
    p1 = 78
    p2 = p1 + ph + 120
    h = p2 + ph + 90
    o = []

    def lg2(v):
        return math.log(v) / math.log(2)

    def yof(v, top):
        lg = min(max(lg2(v), lmin), lmax)
        return top + (lmax - lg) / (lmax - lmin) * ph

    def panel(which, top, label):
        o.append('<text x="%d" y="%d" class="h">%s</text>\n' % (left, top - 12, esc(label)))
        for tick in "0.125 0.25 0.5 0.8 1 1.25 2 4 8".split():
            tv = float(tick)
            y0 = yof(tv, top)
            cls = "one" if tv == 1 else ("lim" if tv == 1.25 and which == "t" else "grid")
            o.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" class="%s"/>\n' % (left, y0, left + pw, y0, cls))
            o.append('<text x="%d" y="%.1f" class="ax">%s</text>\n' % (left - 6, y0 + 4, tick))
        if which == "t":
            o.append('<text x="%d" y="%.1f" class="note">1.25: target (b), vs the best peer</text>\n'
                     % (left + pw - 4, yof(1.25, top) - 4))
        o.append('<text x="%d" y="%d" class="side">↑ ebbmalloc worse</text>\n' % (left + 4, top + 12))
        o.append('<text x="%d" y="%d" class="side">↓ ebbmalloc better</text>\n' % (left + 4, top + ph - 4))
        y0 = yof(1, top)
        for k in range(nw + 1):
            gx = left + k * gw
            if k == nw:
                name = "geomean"
                o.append('<line x1="%d" y1="%d" x2="%d" y2="%d" class="sep"/>\n' % (gx, top, gx, top + ph))
            else:
                name = s.wl[k]
            for j, p in enumerate(s.peers):
                if k == nw:
                    v = (s.gt if which == "t" else s.gr)[p]
                else:
                    v = (s.rt if which == "t" else s.rr).get((name, p))
                if v is None or v <= 0:
                    continue
                x = gx + gpad + j * bw
                y1 = yof(v, top)
                o.append('<rect x="%d" y="%.1f" width="%d" height="%.1f" fill="%s"><title>%s vs %s: %.2f</title></rect>\n'
                         % (x, min(y0, y1), bw - 2, abs(y0 - y1) + 0.5, color[j % len(color)], esc(name), esc(p), v))
                if lg2(v) > lmax or lg2(v) < lmin:     # off the scale: print the value
                    o.append('<text x="%d" y="%.1f" class="clip">%.2f</text>\n'
                             % (x + (bw - 2) // 2, y1 + 10 if lg2(v) > lmax else y1 - 3, v))
            cx = gx + gw // 2 + 4
            o.append('<text x="%d" y="%d" class="wl" transform="rotate(-35 %d %d)">%s</text>\n'
                     % (cx, top + ph + 14, cx, top + ph + 14, esc(name)))
        o.append('<rect x="%d" y="%d" width="%d" height="%d" class="frame"/>\n' % (left, top, pw, ph))

    o.append('<?xml version="1.0" encoding="UTF-8"?>\n')
    o.append('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d"'
             ' font-family="sans-serif">\n' % (w, h, w, h))
    o.append("<style>\n"
             "  .t { font-size: 16px; font-weight: bold; } .h { font-size: 13px; font-weight: bold; }\n"
             "  .ax { font-size: 11px; text-anchor: end; fill: #333; } .wl { font-size: 11px; text-anchor: end; }\n"
             "  .note { font-size: 10px; fill: #666; text-anchor: end; } .side { font-size: 10px; fill: #666; }\n"
             "  .clip { font-size: 9px; text-anchor: middle; }\n"
             "  .grid { stroke: #ddd; } .one { stroke: #000; stroke-width: 1.5; }\n"
             "  .lim { stroke: #c00; stroke-dasharray: 4 3; } .sep { stroke: #999; stroke-dasharray: 2 3; }\n"
             "  .frame { fill: none; stroke: #999; } .leg { font-size: 12px; }\n"
             "</style>\n")
    o.append('<rect width="100%" height="100%" fill="white"/>\n')
    o.append('<text x="%d" y="24" class="t">%s</text>\n' % (left, esc(title)))
    o.append('<text x="%d" y="42" class="leg">ratio ebbmalloc / peer of the medians, log scale;'
             ' below 1: ebbmalloc better. Peers:</text>\n' % left)
    for j, p in enumerate(s.peers):
        o.append('<rect x="%d" y="50" width="12" height="12" fill="%s"/>\n' % (left + j * 100, color[j % len(color)]))
        o.append('<text x="%d" y="60" class="leg">%s</text>\n' % (left + j * 100 + 16, esc(p)))
    panel("t", p1 + 20, "time (wall time; redis: requests/s, inverted)")
    panel("r", p2, "peak resident memory (RSS)")
    o.append("</svg>\n")
    return "".join(o)


# ---- the README's summary block ----------------------------------------------------

def readme_block(res):
    s = Speed(res)
    model, cores = cpu_info(res)
    lines = ["Last full run (`make bench`): %s on %s (%s cores); all tables in"
             " [bench/results/latest.md](bench/results/latest.md).\n" % (res.get("date"), model, cores),
             "\n",
             "| |" + "".join(" %s |" % p for p in README_PEERS) + "\n",
             "|---|" + "---:|" * len(README_PEERS) + "\n",
             "| time, geometric mean |" + "".join(" %s |" % r2(s.gt.get(p)) for p in README_PEERS) + "\n",
             "| peak RSS, geometric mean |" + "".join(" %s |" % r2(s.gr.get(p)) for p in README_PEERS) + "\n"]
    return lines


def update_readme(res, path):
    """Rewrites only the lines between the two markers of FILE."""
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    start = next((i for i, l in enumerate(lines) if l.startswith(START_MARK)), None)
    end = next((i for i, l in enumerate(lines) if l.startswith(END_MARK)), None)
    if start is None or end is None or end <= start:
        print("report.py: %s has no bench-summary markers; left alone" % path, file=sys.stderr)
        return False
    new = lines[:start + 1] + readme_block(res) + lines[end:]
    if new != lines:
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(new)
        os.replace(tmp, path)
    return True


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


SECTIONS = {"speed": speed_report, "onoff": onoff_report, "reclaim": reclaim_report,
            "curve": curve_report, "modes": modes_report, "samples": samples_report}


def main():
    ap = argparse.ArgumentParser(description="bench/report.py: the benchmarks' reports from a results file")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("section", help="one section, to stdout")
    p.add_argument("name", choices=sorted(SECTIONS))
    p.add_argument("rows")
    p.add_argument("--md", action="store_true", help="Markdown instead of text")
    p = sub.add_parser("latest", help="latest.md and latest.svg in DIR")
    p.add_argument("rows")
    p.add_argument("dir")
    p.add_argument("--readme", help="also rewrite this README's summary block")
    p = sub.add_parser("modes", help="the safety modes' report")
    p.add_argument("rows")
    p.add_argument("out")
    p = sub.add_parser("overhead", help="bench/ebb_overhead.sh's report")
    p.add_argument("rows")
    p.add_argument("out")
    p = sub.add_parser("readme", help="rewrite only README's summary block")
    p.add_argument("rows")
    p.add_argument("readme")
    a = ap.parse_args()
    res = Results(a.rows)
    if a.cmd == "section":
        sys.stdout.write(SECTIONS[a.name](res, a.md))
    elif a.cmd == "latest":
        os.makedirs(a.dir, exist_ok=True)
        write(os.path.join(a.dir, "latest.md"), latest_md(res))
        write(os.path.join(a.dir, "latest.svg"), latest_svg(res))
        if a.readme:
            update_readme(res, a.readme)
    elif a.cmd == "modes":
        write(a.out, modes_md(res))
    elif a.cmd == "overhead":
        write(a.out, overhead_md(res))
    elif a.cmd == "readme":
        return 0 if update_readme(res, a.readme) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
