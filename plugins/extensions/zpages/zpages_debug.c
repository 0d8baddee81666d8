/*
 * zpages_debug.c - /debug/servicez and /debug/pipelinez as HTML, from the status
 * document parsed with yajl's tree API (see zpages_debug.h).
 *
 * The document comes from the host, but the renderer trusts nothing in it (the
 * fuzz target fuzz_zpages feeds it anything): a member of the wrong type reads
 * as missing, and every string is escaped for HTML text and attribute values.
 */
#include "zpages_debug.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#define ZP_DOC_MAX   ((size_t)64 << 20)
#define ZP_DEPTH_MAX 64 /* the status document nests 5 deep */

/* Whether arrays and objects nest at most ZP_DEPTH_MAX deep (strings skipped):
 * yajl frees a tree recursively, so a deeper one is refused before it is built. */
static bool depth_ok(const char *s)
{
    int depth = 0;
    bool in_str = false;
    for (; *s; s++) {
        if (in_str) {
            if (*s == '\\' && s[1])
                s++;
            else if (*s == '"')
                in_str = false;
        } else if (*s == '"') {
            in_str = true;
        } else if (*s == '[' || *s == '{') {
            if (++depth > ZP_DEPTH_MAX) return false;
        } else if (*s == ']' || *s == '}') {
            depth--;
        }
    }
    return true;
}

/* ---- reading the document ------------------------------------------------------ */

static yajl_val member(yajl_val obj, const char *key)
{
    if (!YAJL_IS_OBJECT(obj)) return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], key) == 0) return obj->u.object.values[i];
    return NULL;
}

static const char *member_str(yajl_val obj, const char *key)
{
    yajl_val v = member(obj, key);
    return YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
}

/* A number member, or false when there is none. */
static bool member_num(yajl_val obj, const char *key, double *out)
{
    yajl_val v = member(obj, key);
    if (!YAJL_IS_NUMBER(v)) return false;
    *out = YAJL_IS_INTEGER(v) ? (double)YAJL_GET_INTEGER(v) : YAJL_GET_DOUBLE(v);
    return true;
}

static size_t array_len(yajl_val v)
{
    return YAJL_IS_ARRAY(v) ? v->u.array.len : 0;
}

static yajl_val array_at(yajl_val v, size_t i)
{
    return v->u.array.values[i];
}

/* ---- writing HTML ------------------------------------------------------------- */

/* Text or an attribute value (double-quoted): the five characters that matter. */
static void esc(FILE *f, const char *s)
{
    static const char *const entity[256] = {
        ['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['"'] = "&quot;", ['\''] = "&#39;",
    };
    for (; s && *s; s++) {
        const char *e = entity[(unsigned char)*s];
        if (e)
            fputs(e, f);
        else
            fputc(*s, f);
    }
}

/* <td>text</td> */
static void cell(FILE *f, const char *text)
{
    fputs("<td>", f);
    esc(f, text);
    fputs("</td>", f);
}

/* ` name="value"` */
static void attr(FILE *f, const char *name, const char *value)
{
    fprintf(f, " %s=\"", name);
    esc(f, value);
    fputc('"', f);
}

static void row_text(FILE *f, const char *name, const char *value)
{
    fputs("<tr><th>", f);
    esc(f, name);
    fputs("</th>", f);
    cell(f, value);
    fputs("</tr>\n", f);
}

/* "3h2m1s", "2m5s", "12.3s". */
static void format_duration(char *buf, size_t cap, double seconds)
{
    /* Bounded before the integer conversion: the document may say anything. */
    if (!(seconds >= 0)) seconds = 0; /* NaN too */
    if (seconds > 1e15) seconds = 1e15;
    if (seconds < 60) {
        snprintf(buf, cap, "%.1fs", seconds);
        return;
    }
    uint64_t s = (uint64_t)seconds;
    if (s < 3600)
        snprintf(buf, cap, "%" PRIu64 "m%" PRIu64 "s", s / 60, s % 60);
    else
        snprintf(buf, cap, "%" PRIu64 "h%" PRIu64 "m%" PRIu64 "s", s / 3600, s / 60 % 60, s % 60);
}

static void format_bytes(char *buf, size_t cap, double bytes)
{
    if (bytes >= 1048576.0)
        snprintf(buf, cap, "%.1f MiB", bytes / 1048576.0);
    else if (bytes >= 1024.0)
        snprintf(buf, cap, "%.1f KiB", bytes / 1024.0);
    else
        snprintf(buf, cap, "%.0f B", bytes);
}

static void page_head(FILE *f, const char *title)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>", f);
    esc(f, title);
    fputs(" - switchyard</title>\n<link rel=\"stylesheet\" href=\"/zpages.css\">\n</head>\n"
          "<body class=\"debug\">\n<header><h1>",
          f);
    esc(f, title);
    fputs("</h1><nav><a href=\"/\">Status page</a> <a href=\"/debug/servicez\">servicez</a> "
          "<a href=\"/debug/pipelinez\">pipelinez</a> <a href=\"/api/status\">JSON</a></nav>"
          "</header>\n<main>\n",
          f);
}

static void page_tail(FILE *f)
{
    fputs("</main>\n</body>\n</html>\n", f);
}

/* ---- servicez ----------------------------------------------------------------- */

static void render_servicez(FILE *f, yajl_val doc)
{
    yajl_val svc = member(doc, "service"), proc = member(doc, "process");
    char buf[64];
    double v;
    page_head(f, "Service");
    fputs("<h2>Build Info</h2>\n<table class=\"kv\" id=\"build\">\n", f);
    row_text(f, "Command", member_str(svc, "name"));
    row_text(f, "Version", member_str(svc, "version"));
    row_text(f, "Plugin ABI", member_str(svc, "abi"));
    fputs("</table>\n<h2>Runtime Info</h2>\n<table class=\"kv\" id=\"runtime\">\n", f);
    row_text(f, "Status", member_str(svc, "status"));
    row_text(f, "Start time", member_str(svc, "start_time"));
    buf[0] = '\0';
    if (member_num(svc, "uptime_seconds", &v)) format_duration(buf, sizeof buf, v);
    row_text(f, "Uptime", buf);
    buf[0] = '\0';
    if (member_num(svc, "pid", &v)) snprintf(buf, sizeof buf, "%.0f", v);
    row_text(f, "PID", buf);
    buf[0] = '\0';
    if (member_num(proc, "rss_bytes", &v)) format_bytes(buf, sizeof buf, v);
    row_text(f, "Resident memory", buf);
    buf[0] = '\0';
    if (member_num(proc, "cpu_seconds", &v)) snprintf(buf, sizeof buf, "%.2f s", v);
    row_text(f, "CPU time", buf);
    row_text(f, "Log level", member_str(svc, "log_level"));
    buf[0] = '\0';
    double budget;
    if (member_num(proc, "queue_bytes", &v) && member_num(proc, "queue_budget_bytes", &budget)) {
        char a[24], b[24];
        format_bytes(a, sizeof a, v);
        format_bytes(b, sizeof b, budget);
        snprintf(buf, sizeof buf, "%s of %s", a, b);
    }
    row_text(f, "Queued batches", buf);
    fputs("</table>\n", f);

    fputs("<h2>Components</h2>\n<table id=\"components\">\n<thead><tr><th>Kind</th><th>ID</th>"
          "<th>Type</th><th>Version</th><th>Pipelines</th></tr></thead>\n<tbody>\n",
          f);
    yajl_val comps = member(doc, "components");
    for (size_t i = 0; i < array_len(comps); i++) {
        yajl_val c = array_at(comps, i);
        fputs("<tr", f);
        attr(f, "data-kind", member_str(c, "kind"));
        attr(f, "data-id", member_str(c, "id"));
        fputc('>', f);
        cell(f, member_str(c, "kind"));
        cell(f, member_str(c, "id"));
        cell(f, member_str(c, "type"));
        cell(f, member_str(c, "version"));
        fputs("<td>", f);
        yajl_val pl = member(c, "pipelines");
        for (size_t j = 0; j < array_len(pl); j++) {
            yajl_val p = array_at(pl, j);
            if (j) fputs(", ", f);
            esc(f, YAJL_IS_STRING(p) ? YAJL_GET_STRING(p) : "");
        }
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody>\n</table>\n", f);
    page_tail(f);
}

/* ---- pipelinez ----------------------------------------------------------------- */

/* The IDs of a pipeline's list, one per line, connectors marked. */
static void cell_ids(FILE *f, yajl_val list, bool *mutates)
{
    fputs("<td>", f);
    for (size_t i = 0; i < array_len(list); i++) {
        yajl_val c = array_at(list, i);
        const char *kind = member_str(c, "kind");
        if (i) fputs("<br>", f);
        esc(f, member_str(c, "id"));
        if (kind && strcmp(kind, "connector") == 0) fputs(" <small>(connector)</small>", f);
        if (mutates && YAJL_IS_TRUE(member(c, "mutates_data"))) *mutates = true;
    }
    fputs("</td>", f);
}

static void render_pipelinez(FILE *f, yajl_val doc)
{
    page_head(f, "Pipelines");
    fputs("<table id=\"pipelines\">\n<thead><tr><th>Pipeline</th><th>Signal</th>"
          "<th>Mutates data</th><th>Receivers</th><th>Processors</th><th>Exporters</th></tr>"
          "</thead>\n<tbody>\n",
          f);
    yajl_val pipes = member(doc, "pipelines");
    for (size_t i = 0; i < array_len(pipes); i++) {
        yajl_val p = array_at(pipes, i);
        bool mutates = false;
        fputs("<tr", f);
        attr(f, "data-pipeline", member_str(p, "id"));
        fputc('>', f);
        cell(f, member_str(p, "id"));
        cell(f, member_str(p, "signal"));
        /* The processors are written first into a buffer of their own, so that
         * "mutates data" (any of them) can come before them. */
        char *procs = NULL;
        size_t procs_len = 0;
        FILE *pf = open_memstream(&procs, &procs_len);
        if (pf) {
            cell_ids(pf, member(p, "processors"), &mutates);
            if (fclose(pf) != 0) procs_len = 0;
        }
        fprintf(f, "<td>%s</td>", mutates ? "true" : "false");
        cell_ids(f, member(p, "receivers"), NULL);
        if (procs) fwrite(procs, 1, procs_len, f);
        free(procs);
        cell_ids(f, member(p, "exporters"), NULL);
        fputs("</tr>\n", f);
    }
    fputs("</tbody>\n</table>\n", f);
    page_tail(f);
}

char *zp_debug_render(zp_page_t page, const char *json, size_t len, size_t *html_len)
{
    if (len > ZP_DOC_MAX) return NULL;
    char *text = malloc(len + 1);
    if (!text) return NULL;
    memcpy(text, json, len);
    text[len] = '\0';
    yajl_val doc = depth_ok(text) ? yajl_tree_parse(text, NULL, 0) : NULL;
    free(text);
    if (!doc) return NULL;
    char *html = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&html, &size);
    if (f) {
        if (page == ZP_PAGE_SERVICEZ)
            render_servicez(f, doc);
        else
            render_pipelinez(f, doc);
        bool failed = ferror(f) != 0;
        if (fclose(f) != 0 || failed) {
            free(html);
            html = NULL;
        }
    }
    yajl_tree_free(doc);
    if (html && html_len) *html_len = size;
    return html;
}
