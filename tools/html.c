/* ebb: the report page (ebb run --html) — self-contained HTML: its CSS, an
 * SVG timeline per process with the script that shows the values under
 * the pointer, the summary as tables, the heap profile's flame graph.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ebb.h"

void html_escape(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
    }
}

void html_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20 || c == '<' || c == '>' || c == '&')
            fprintf(f, "\\u%04x", c); /* never "</script>" */
        else
            fputc(c, f);
    }
    fputc('"', f);
}

enum { W = 900, H = 320, ML = 60, MR = 20, MT = 20, MB = 40 };

/* An area from `lower` to `upper` (functions of a sample), as an SVG
 * polygon: the upper edge left to right, the lower edge back. */
typedef double (*level_fn)(const sample_t *);
static double lvl_zero(const sample_t *x) { (void)x; return 0; }
static double lvl_used(const sample_t *x) { return (double)x->s.in_use; }
static double lvl_freed(const sample_t *x) { return (double)(x->s.in_use + x->s.freed_retained); }
static double lvl_meta(const sample_t *x) { return (double)(x->s.in_use + x->s.freed_retained + x->s.metadata); }

static void svg_area(FILE *f, const series_t *s, level_fn lower, level_fn upper, double tmax, double ymax,
                     const char *name, const char *color)
{
    /* Two vertices a sample: the upper edge, then the lower one back. */
    fprintf(f, "<polygon class=\"series\" data-series=\"%s\" data-points=\"%zu\" fill=\"%s\" fill-opacity=\"0.8\" points=\"",
            name, 2 * s->count, color);
    for (size_t i = 0; i < s->count; i++)
        fprintf(f, "%.1f,%.1f ", ML + (W - ML - MR) * s->samples[i].t_ms / tmax,
                MT + (H - MT - MB) * (1 - upper(&s->samples[i]) / ymax));
    for (size_t i = s->count; i-- > 0;)
        fprintf(f, "%.1f,%.1f ", ML + (W - ML - MR) * s->samples[i].t_ms / tmax,
                MT + (H - MT - MB) * (1 - lower(&s->samples[i]) / ymax));
    fprintf(f, "\"/>\n");
}

/* A mark (8 pixels from y) at each sample where the counter at `field` of
 * struct ebb_stats grew, its growth in the title. */
static void svg_marks(FILE *f, const series_t *s, size_t field, const char *cls, const char *color, int y,
                      const char *what, double tmax)
{
    for (size_t i = 1; i < s->count; i++) {
        uint64_t now, before;
        memcpy(&now, (const char *)&s->samples[i].s + field, sizeof now);
        memcpy(&before, (const char *)&s->samples[i - 1].s + field, sizeof before);
        if (now <= before)
            continue;
        double x = ML + (W - ML - MR) * s->samples[i].t_ms / tmax;
        fprintf(f, "<line class=\"%s\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\">"
                   "<title>%.1f MiB %s</title></line>\n",
                cls, x, x, y, y + 8, color, (now - before) / MiB, what);
    }
}

static void html_series(FILE *f, const series_t *s)
{
    if (s->count == 0)
        return;
    double tmax = s->samples[s->count - 1].t_ms;
    if (tmax <= 0)
        tmax = 1;
    double ymax = 1;
    for (size_t i = 0; i < s->count; i++) {
        double a = lvl_meta(&s->samples[i]), b = (double)s->samples[i].proc_rss;
        if (a > ymax)
            ymax = a;
        if (b > ymax)
            ymax = b;
    }
    ymax *= 1.08;
    fprintf(f, "<h2>pid %d: ", s->last.pid);
    html_escape(f, s->last.exe);
    fprintf(f, "</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" viewBox=\"0 0 %d %d\" "
               "style=\"width:100%%;max-width:1600px;height:auto\" data-samples=\"%zu\">\n",
            W, H, s->count);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" stroke=\"#ccc\"/>\n", ML, MT,
            W - ML - MR, H - MT - MB);
    for (int k = 0; k <= 4; k++) {
        double y = MT + (H - MT - MB) * k / 4.0;
        fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
                   "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.0f MiB</text>\n",
                ML, W - MR, y, y, ML - 4, y + 4, ymax * (4 - k) / 4 / MiB);
    }
    fprintf(f, "<text class=\"trange\" x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"end\">%.2f s</text>\n",
            W - MR, H - 12, tmax / 1000);
    /* What the script zooms (scaled across, the plot area clipping it). */
    static unsigned clips;
    clips++;
    fprintf(f, "<defs><clipPath id=\"plot%u\"><rect x=\"%d\" y=\"0\" width=\"%d\" height=\"%d\"/></clipPath></defs>\n"
               "<g clip-path=\"url(#plot%u)\"><g class=\"plot\">\n",
            clips, ML, W - ML - MR, H, clips);
    svg_area(f, s, lvl_zero, lvl_used, tmax, ymax, "in_use", "#2b6cb0");
    svg_area(f, s, lvl_used, lvl_freed, tmax, ymax, "freed_retained", "#ed8936");
    svg_area(f, s, lvl_freed, lvl_meta, tmax, ymax, "metadata", "#a0aec0");
    /* Resident memory from /proc, while the process lived. */
    size_t live = 0;
    for (size_t i = 0; i < s->count; i++)
        live += s->samples[i].proc_rss != 0;
    fprintf(f, "<polyline class=\"series\" data-series=\"proc_rss\" data-points=\"%zu\" fill=\"none\" stroke=\"#c53030\" stroke-width=\"2\" points=\"",
            live);
    for (size_t i = 0; i < s->count; i++)
        if (s->samples[i].proc_rss != 0)
            fprintf(f, "%.1f,%.1f ", ML + (W - ML - MR) * s->samples[i].t_ms / tmax,
                    MT + (H - MT - MB) * (1 - (double)s->samples[i].proc_rss / ymax));
    fprintf(f, "\"/>\n");
    /* Of the freed memory, what the policy keeps because it predicts the
     * program will take it again: a dashed line inside the freed area. */
    fprintf(f, "<polyline class=\"series\" data-series=\"kept_predicted\" data-points=\"%zu\" fill=\"none\" "
               "stroke=\"#9c4221\" stroke-width=\"1.5\" stroke-dasharray=\"5,3\" points=\"",
            s->count);
    for (size_t i = 0; i < s->count; i++)
        fprintf(f, "%.1f,%.1f ", ML + (W - ML - MR) * s->samples[i].t_ms / tmax,
                MT + (H - MT - MB) * (1 - (double)(s->samples[i].s.in_use + s->samples[i].s.kept_predicted) / ymax));
    fprintf(f, "\"/>\n");
    /* Refaults (memory given back, then taken fresh again soon after) at
     * the top; memory given back to the kernel at the bottom. */
    svg_marks(f, s, offsetof(struct ebb_stats, refaulted), "refault", "#dd6b20", MT - 8, "refaulted", tmax);
    svg_marks(f, s, offsetof(struct ebb_stats, reclaimed_total), "reclaim", "#38a169", H - MB, "reclaimed", tmax);
    fprintf(f, "</g></g>\n<rect class=\"selection\" x=\"0\" y=\"%d\" width=\"0\" height=\"%d\" fill=\"#2b6cb0\" "
               "fill-opacity=\"0.15\" pointer-events=\"none\"/>\n",
            MT, H - MT - MB);
    /* The hover: a cursor line, and the samples' values for the script. */
    fprintf(f, "<line class=\"cursor\" x1=\"-10\" x2=\"-10\" y1=\"%d\" y2=\"%d\" stroke=\"#444\" "
               "stroke-width=\"1\" pointer-events=\"none\"/>\n</svg>\n<div class=\"hover\">&nbsp;</div>\n"
               "<script type=\"application/json\" class=\"values\">{\"tmax\":%.3f,\"x0\":%d,\"x1\":%d,\"v\":[",
            MT, H - MB, tmax / 1000, ML, W - MR);
    for (size_t i = 0; i < s->count; i++) {
        const sample_t *x = &s->samples[i];
        fprintf(f, "%s[%.3f,%.2f,%.2f,%.2f,%.2f,%.2f]", i ? "," : "", x->t_ms / 1000, x->s.in_use / MiB,
                x->s.freed_retained / MiB, x->s.metadata / MiB, x->s.kept_predicted / MiB,
                (double)x->proc_rss / MiB);
    }
    fprintf(f, "]}</script>\n");
}

/* The summary as tables: the processes, then the main one's size
 * classes, the ten with the most bytes allocated first, the rest folded. */
static void html_summary(FILE *f, const run_t *r)
{
    fprintf(f, "<h2>Memory of each process</h2>\n<table id=\"processes\"><tr><th>pid</th><th>program</th>"
               "<th>peak used MiB</th><th>peak resident MiB</th><th>peak /proc MiB</th><th>peak freed MiB</th>"
               "<th>peak kept MiB</th><th>reclaimed MiB</th><th>refaulted MiB</th><th>mallocs</th><th>frees</th>"
               "<th>mmap</th><th>munmap</th><th>madvise</th><th>brk</th></tr>\n");
    for (size_t i = 0; i < r->count; i++) {
        const series_t *s = &r->series[i];
        if (!s->have_last)
            continue;
        peaks_t p = run_peaks(s);
        const struct ebb_stats *l = &s->last.stats;
        fprintf(f, "<tr><td>%d</td><td style=\"text-align:left\">", s->last.pid);
        html_escape(f, ebb_base_name(s->last.exe));
        fprintf(f, "</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td>"
                   "<td>%lu</td><td>%lu</td><td>%lu</td><td>%lu</td><td>%lu</td><td>%lu</td></tr>\n",
                p.in_use / MiB, p.resident / MiB, p.proc_rss / MiB, p.freed / MiB, p.kept / MiB,
                l->reclaimed_total / MiB, l->refaulted / MiB, (unsigned long)l->malloc_calls,
                (unsigned long)l->free_calls, (unsigned long)l->os_mmap, (unsigned long)l->os_munmap,
                (unsigned long)l->os_madvise, (unsigned long)l->os_brk);
    }
    fprintf(f, "</table>\n");
    const series_t *m = run_main_series(r);
    if (m == NULL)
        return;
    class_row_t rows[EBB_PUBLISH_CLASSES];
    unsigned n = run_class_rows(m, rows);
    fprintf(f, "<h2>Size classes of ");
    html_escape(f, ebb_base_name(m->last.exe));
    fprintf(f, " (pid %d)</h2>\n", m->last.pid);
    const char *head = "<tr><th>block size</th><th>allocated</th><th>freed</th><th>live</th><th>live bytes</th>"
                       "<th>bytes allocated</th></tr>\n";
    fprintf(f, "<table class=\"classes\">%s", head);
    for (unsigned i = 0; i < n; i++) {
        if (i == 10)
            fprintf(f, "</table>\n<details><summary>%u more classes</summary><table class=\"classes\">%s", n - 10,
                    head);
        uint64_t live = rows[i].allocs > rows[i].frees ? rows[i].allocs - rows[i].frees : 0;
        fprintf(f, "<tr><td>%u</td><td>%lu</td><td>%lu</td><td>%lu</td><td>%lu</td><td>%lu</td></tr>\n",
                rows[i].block_size, (unsigned long)rows[i].allocs, (unsigned long)rows[i].frees,
                (unsigned long)live, (unsigned long)(live * rows[i].block_size), (unsigned long)rows[i].bytes);
    }
    fprintf(f, "</table>%s\n", n > 10 ? "</details>" : "");
    const struct ebb_stats *l = &m->last.stats;
    fprintf(f, "<p>Huge blocks live at the end: %lu, %.1f MiB.</p>\n", (unsigned long)l->huge_blocks,
            l->huge_in_use / MiB);
}

void html_write(const char *file, const run_t *r, const char *command, const char *profile)
{
    FILE *f = fopen(file, "w");
    if (f == NULL)
        ebb_die("cannot write %s: %s", file, strerror(errno));
    char shown[120];
    snprintf(shown, sizeof shown, strlen(command) > 100 ? "%.100s..." : "%s", command);
    command = shown;
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>ebb: ");
    html_escape(f, command);
    fprintf(f, "</title>\n<style>body{font-family:sans-serif;margin:24px;color:#222}"
               "table{border-collapse:collapse;font-size:13px}td,th{padding:2px 10px;text-align:right}"
               "th{border-bottom:1px solid #999}.key span{display:inline-block;width:12px;height:12px;margin:0 4px 0 14px}"
               "pre{font-size:12px}.hover{font-size:13px;color:#333;min-height:1.2em}"
               "details{margin:6px 0}summary{cursor:pointer;font-size:13px}"
               ".plot *{vector-effect:non-scaling-stroke}svg.timeline{cursor:crosshair;user-select:none}"
               "</style></head><body>\n<h1>ebb run ");
    html_escape(f, command);
    fprintf(f, "</h1>\n<p class=\"key\"><span style=\"background:#2b6cb0\"></span>in use"
               "<span style=\"background:#ed8936\"></span>freed, not reclaimed"
               "<span style=\"background:#a0aec0\"></span>metadata"
               "<span style=\"background:#c53030\"></span>resident (/proc)"
               "<span style=\"background:#38a169\"></span>reclaimed here"
               "<span style=\"background:#9c4221\"></span>kept for predicted reuse (dashed)"
               "<span style=\"background:#dd6b20\"></span>refaulted here (top)</p>\n");
    for (size_t i = 0; i < r->count; i++)
        html_series(f, &r->series[i]);
    html_summary(f, r);
    if (profile != NULL)
        ebb_profile_flame_html(f, profile, r->t0_ns);
    /* Hovering a timeline shows the values at that time; dragging across
     * one zooms every timeline into that time and draws the flame graph
     * of what was allocated in it; a double click shows all again.  The
     * page's address may name a range: report.html#range=1.5-2.25. */
    fprintf(f, "<script>\n(function(){var lines=[];\n"
               "function zoomAll(a,b,all){lines.forEach(function(l){l.zoom(a,b);});"
               "if(window.ebbFlameRange)window.ebbFlameRange(all?-1e308:a,all?1e308:b);}\n"
               "document.querySelectorAll('svg.timeline').forEach(function(svg){"
               "var data=JSON.parse(svg.nextElementSibling.nextElementSibling.textContent);"
               "var tip=svg.nextElementSibling,cur=svg.querySelector('.cursor'),plot=svg.querySelector('.plot'),"
               "sel=svg.querySelector('.selection'),lab=svg.querySelector('.trange'),tmax=data.tmax||1,"
               "view=[0,tmax],drag=null,X0=data.x0,X1=data.x1;\n"
               "function tAt(e){var p=svg.createSVGPoint();p.x=e.clientX;p.y=e.clientY;"
               "var q=p.matrixTransform(svg.getScreenCTM().inverse());"
               "return view[0]+(q.x-X0)/(X1-X0)*(view[1]-view[0]);}\n"
               "function xAt(t){return X0+(X1-X0)*(t-view[0])/(view[1]-view[0]);}\n"
               "var line={zoom:function(a,b){view=[a,b];var xa=X0+(X1-X0)*a/tmax;"
               "plot.setAttribute('transform','translate('+X0+',0) scale('+(tmax/(b-a))+',1) translate('+(-xa)+',0)');"
               "lab.textContent=(a>0||b<tmax?a.toFixed(2)+' s to ':'')+b.toFixed(2)+' s';}};lines.push(line);\n"
               "svg.addEventListener('mousedown',function(e){drag=tAt(e);e.preventDefault();});\n"
               "svg.addEventListener('mouseup',function(e){if(drag===null)return;var t=tAt(e),a=Math.min(drag,t),"
               "b=Math.max(drag,t);drag=null;sel.setAttribute('width',0);"
               "if(b-a>(view[1]-view[0])/200)zoomAll(Math.max(a,0),Math.min(b,tmax),false);});\n"
               "svg.addEventListener('dblclick',function(){zoomAll(0,tmax,true);});\n"
               "svg.addEventListener('mousemove',function(e){var t=tAt(e),best=0;"
               "if(drag!==null){var x1=xAt(Math.min(drag,t)),x2=xAt(Math.max(drag,t));"
               "sel.setAttribute('x',x1);sel.setAttribute('width',x2-x1);}"
               "data.v.forEach(function(r,i){if(Math.abs(r[0]-t)<Math.abs(data.v[best][0]-t))best=i;});"
               "var r=data.v[best],x=xAt(r[0]);"
               "cur.setAttribute('x1',x);cur.setAttribute('x2',x);"
               "tip.textContent=r[0].toFixed(2)+' s: in use '+r[1]+' MiB, freed not reclaimed '+r[2]+"
               "' MiB (kept for reuse '+r[4]+'), metadata '+r[3]+' MiB, resident (/proc) '+r[5]+' MiB';});});\n"
               "var m=/range=([0-9.]+)-([0-9.]+)/.exec(location.hash);"
               "if(m&&+m[2]>+m[1])zoomAll(+m[1],+m[2],false);})();\n"
               "</script>\n");
    /* In a browser, count what the SVG drew (the tests read this back). */
    fprintf(f, "<pre id=\"check\"></pre>\n<script>\n"
               "var out=[];document.querySelectorAll('svg').forEach(function(svg,i){"
               "svg.querySelectorAll('.series').forEach(function(el){var b=el.getBBox();"
               "out.push('svg'+i+' '+el.dataset.series+' points='+el.points.numberOfItems+"
               "' expected='+el.dataset.points+' width='+Math.round(b.width)+' height='+Math.round(b.height));});});"
               "document.getElementById('check').textContent=out.join('\\n');\n</script>\n</body></html>\n");
    if (fclose(f) != 0)
        ebb_die("cannot write %s", file);
}
