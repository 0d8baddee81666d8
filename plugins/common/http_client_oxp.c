/*
 * http_client_oxp.c - the OTLP exporters' requests through the own HTTP/1.1
 * client (http_client.h) instead of curl, for plain http:// endpoints (the plugin
 * sets syc_oxp_t.direct; see plugins/exporters/otlphttp/README.md).
 *
 * The request head is written as curl writes it (Host, User-Agent, Accept: * / *,
 * then the header list in order with curl's conventions: "Name:" removes a
 * header, "Name;" sends it empty, a listed User-Agent or Accept replaces curl's
 * own; then Content-Length), the body goes out from the batch's pieces, and the
 * outcome is handed to the plugin's judge() or failed() exactly as the curl path
 * does, with the curl error the failure corresponds to.
 */
#include "otlp_exporter_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Whether `line` is the header `name` ("Name: ..." or "Name;"). */
static bool header_is(const char *line, const char *name)
{
    size_t n = strlen(name);
    return !strncasecmp(line, name, n) && (line[n] == ':' || line[n] == ';');
}

/* What curl sends of one list line: NULL for "Name:" with no value (it removes
 * the header), else the line, with its length in *len (and *semi for "Name;"). */
static const char *line_sent(const char *line, size_t *len, bool *semi)
{
    const char *colon = strchr(line, ':');
    *semi = false;
    if (!colon) {
        size_t n = strlen(line);
        if (n && line[n - 1] == ';') {
            *semi = true;
            *len = n - 1;
            return line;
        }
        return NULL; /* not a header: curl skips it */
    }
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!*v) return NULL;
    *len = strlen(line);
    return line;
}

static char *build_head(const syc_oxp_t *o, const syc_hc_target_t *t, const struct curl_slist *l,
                        size_t body_len)
{
    bool own_ua = false, own_accept = false;
    size_t need = 128 + strlen(t->path) + strlen(t->hostport) + strlen(o->user_agent);
    for (const struct curl_slist *h = l; h; h = h->next) {
        own_ua |= header_is(h->data, "User-Agent");
        own_accept |= header_is(h->data, "Accept");
        need += strlen(h->data) + 4;
    }
    char *head = malloc(need);
    if (!head) return NULL;
    int n = snprintf(head, need, "POST %s HTTP/1.1\r\nHost: %s\r\n", t->path, t->hostport);
    if (!own_ua) n += snprintf(head + n, need - (size_t)n, "User-Agent: %s\r\n", o->user_agent);
    if (!own_accept) n += snprintf(head + n, need - (size_t)n, "Accept: */*\r\n");
    for (const struct curl_slist *h = l; h; h = h->next) {
        size_t len;
        bool semi;
        const char *s = line_sent(h->data, &len, &semi);
        if (!s) continue;
        memcpy(head + n, s, len);
        n += (int)len;
        if (semi) head[n++] = ':';
        head[n++] = '\r';
        head[n++] = '\n';
    }
    snprintf(head + n, need - (size_t)n, "Content-Length: %zu\r\n\r\n", body_len);
    return head;
}

static CURLcode curl_code(syc_hc_err_t e)
{
    switch (e) {
    case SYC_HC_RESOLVE:
        return CURLE_COULDNT_RESOLVE_HOST;
    case SYC_HC_CONNECT:
        return CURLE_COULDNT_CONNECT;
    case SYC_HC_TIMEOUT:
        return CURLE_OPERATION_TIMEDOUT;
    case SYC_HC_SEND:
        return CURLE_SEND_ERROR;
    case SYC_HC_RECV:
        return CURLE_RECV_ERROR;
    case SYC_HC_NOTHING:
        return CURLE_GOT_NOTHING;
    case SYC_HC_BAD_REPLY:
        return CURLE_WEIRD_SERVER_REPLY;
    case SYC_HC_NOMEM:
        return CURLE_OUT_OF_MEMORY;
    case SYC_HC_OK:
        break;
    }
    return CURLE_OK;
}

static void on_call_done(syc_hc_call_t *call)
{
    syc_xh_req_t *req = call->arg;
    syc_oxp_req_t *r = req->transport;
    syc_oxp_t *o = syc_xh_req_ctx(req);
    syc_xh_result_t res = {.verdict = SYC_XH_SENT, .retry_after_ms = -1};
    if (call->err != SYC_HC_OK) {
        CURLcode rc = curl_code(call->err);
        res.verdict = syc_curl_retryable(rc) ? SYC_XH_RETRYABLE : SYC_XH_PERMANENT;
        o->ops->failed(o, req, rc, call->errmsg, &res);
    } else {
        /* The answer in the exchange judge() reads (its body lent, not copied). */
        syc_curl_exchange_t *x = &r->x;
        x->body = call->resp.body;
        x->body_len = call->resp.body_len;
        x->body_truncated = call->resp.body_truncated;
        snprintf(x->retry_after, sizeof(x->retry_after), "%s", call->resp.retry_after);
        snprintf(x->content_type, sizeof(x->content_type), "%s", call->resp.content_type);
        o->ops->judge(o, req, r, call->resp.status, &res);
        x->body = NULL;
        x->body_len = 0;
    }
    syc_xh_attempt_done(req, &res);
}

int syc_oxp_direct_send(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r)
{
    if (!o->hc) return SY_ECLOSED;
    int i = syc_oxp_signal_index(req->signal);
    if (!r->call) {
        r->call = calloc(1, sizeof(*r->call));
        if (!r->call) return SY_ENOMEM;
        r->call->target = o->targets[i];
        r->call->done = on_call_done;
        r->call->arg = req;
        r->call->timeout_ms = (uint64_t)(o->xh_cfg->timeout_ns / 1000000);
        if (r->npieces) {
            r->call->pieces = r->pieces;
            r->call->npieces = r->npieces;
        } else {
            r->one = (sy_piece_t){r->body, r->body_len};
            r->call->pieces = &r->one;
            r->call->npieces = 1;
        }
    }
    if (!r->head || o->auth) {
        const struct curl_slist *base = r->headers ? r->headers : o->headers;
        struct curl_slist *l = NULL;
        if (o->auth && !(l = syc_oxp_auth_headers(o, base))) return SY_ERROR;
        free(r->head);
        r->head = build_head(o, o->targets[i], l ? l : base, r->body_len);
        curl_slist_free_all(l);
        if (!r->head) return SY_ENOMEM;
    }
    r->call->head = r->head;
    r->call->head_len = strlen(r->head);
    return syc_hc_send(o->hc, r->call);
}

void syc_oxp_direct_abort(syc_oxp_t *o, syc_oxp_req_t *r)
{
    if (o->hc && r->call) syc_hc_cancel(o->hc, r->call);
}

void syc_oxp_direct_free(syc_oxp_req_t *r)
{
    if (r->call) {
        if (r->call->conn) syc_hc_cancel(NULL, r->call);
        syc_hc_call_free(r->call);
        free(r->call);
        r->call = NULL;
    }
    free(r->head);
    r->head = NULL;
}
