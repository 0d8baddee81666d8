/*
 * subproc_child.c - the children of the supervisor (subproc.h): starting one with
 * its environment and resource limits, following its exit, and restarting it by
 * the restart policy with a backoff, or giving up.
 *
 * One child at a time (sp->child). Its three handles (the process, the pipe to
 * its stdin, the pipe from its stdout) live in a struct of their own that frees
 * itself when the last of them has closed, so that a child dying while the next
 * one starts, or the supervisor being freed, never leaves a close callback
 * pointing at freed memory.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "subproc_internal.h"

extern char **environ;

static const int sp_signals[5] = {SIGSEGV, SIGABRT, SIGKILL, SIGBUS, SIGXCPU};

/* ---- the child's handles ------------------------------------------------------ */

static void on_child_close(uv_handle_t *h)
{
    sp_child_t *c = h->data;
    if (--c->open > 0) return;
    free(c->rbuf);
    free(c);
}

void syc__sp_close_handle(uv_handle_t *h, bool *closing)
{
    if (*closing) return;
    *closing = true;
    uv_close(h, on_child_close);
}

static void child_close_all(sp_child_t *c)
{
    syc__sp_close_handle((uv_handle_t *)&c->in, &c->closing_in);
    syc__sp_close_handle((uv_handle_t *)&c->out, &c->closing_out);
    syc__sp_close_handle((uv_handle_t *)&c->proc, &c->closing_proc);
}

static void child_lost(syc_sp_t *sp, sp_child_t *c, int64_t status, int term_signal);

/* Kills the current child for a reason already counted; its exit callback then
 * puts its flight back in the queue and restarts it. */
void syc__sp_child_kill(syc_sp_t *sp, const char *why)
{
    sp_child_t *c = sp->child;
    if (!c || c->dead) return;
    c->dead = true;
    c->killed = true;
    SY_LOG(sp->api, sp->inst, SY_LOG_WARN, "child pid %d killed: %s", c->proc.pid, why);
    uv_read_stop((uv_stream_t *)&c->out);
    uv_process_kill(&c->proc, SIGKILL);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    sp_child_t *c = p->data;
    syc_sp_t *sp = c->sp;
    c->dead = true;
    c->sp = NULL;
    child_close_all(c);
    if (sp && sp->child == c) child_lost(sp, c, status, term_signal);
}

/* ---- spawning ------------------------------------------------------------------- */

/* The router's environment with the configured variables added (or replaced). The
 * strings made here are listed in *owned to be freed. NULL on out of memory. */
static char **build_env(const sy_cfg_strmap_t *add, char ***owned)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + add->count + 1, sizeof(*env));
    char **mine = calloc(add->count + 1, sizeof(*mine));
    if (!env || !mine) goto fail;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t j = 0; j < add->count && !replaced; j++) {
            size_t kl = strlen(add->keys[j]);
            replaced = strncmp(environ[i], add->keys[j], kl) == 0 && environ[i][kl] == '=';
        }
        if (!replaced) env[k++] = environ[i];
    }
    for (size_t j = 0; j < add->count; j++) {
        size_t len = strlen(add->keys[j]) + strlen(add->values[j]) + 2;
        if (!(mine[j] = malloc(len))) goto fail;
        snprintf(mine[j], len, "%s=%s", add->keys[j], add->values[j]);
        env[k++] = mine[j];
    }
    *owned = mine;
    return env;
fail:
    if (mine)
        for (size_t j = 0; j < add->count; j++)
            free(mine[j]);
    free(mine);
    free(env);
    return NULL;
}

/*
 * The resource limits, set on the child from outside with prlimit(2) as soon as
 * uv_spawn() returns: libuv has no hook that runs between fork and exec. The child
 * runs unlimited for the moment between its exec and this call (microseconds),
 * which bounds a runaway, not a program that attacks its own limits.
 */
static int apply_limits(syc_sp_t *sp, int pid)
{
    const syc_sp_config_t *cfg = sp->cfg;
    struct {
        int resource;
        int64_t value;
        uint64_t scale;
        const char *name;
    } lim[] = {{RLIMIT_AS, cfg->memory_mib, 1u << 20, "limits.memory_mib"},
               {RLIMIT_CPU, cfg->cpu_seconds, 1, "limits.cpu_seconds"},
               {RLIMIT_NOFILE, cfg->open_files, 1, "limits.open_files"}};
    for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
        if (lim[i].value <= 0) continue;
        struct rlimit rl = {.rlim_cur = (rlim_t)lim[i].value * lim[i].scale,
                            .rlim_max = (rlim_t)lim[i].value * lim[i].scale};
        if (lim[i].resource == RLIMIT_CPU) rl.rlim_max = rl.rlim_cur + 1; /* SIGXCPU, then KILL */
        if (prlimit(pid, lim[i].resource, &rl, NULL) != 0) {
            SY_LOG(sp->api, sp->inst, SY_LOG_ERROR, "%s: cannot set the child's limit: %s",
                   lim[i].name, strerror(errno));
            return SY_ERROR;
        }
    }
    return SY_OK;
}

/* Starts one child and says hello. SY_ERROR (logged, counted) when it cannot. */
int syc__sp_spawn(syc_sp_t *sp)
{
    const syc_sp_config_t *cfg = sp->cfg;
    sp_child_t *c = calloc(1, sizeof(*c));
    char **owned = NULL, **env = NULL;
    char **args = calloc(cfg->command.count + 1, sizeof(*args));
    if (!c || !args) goto oom;
    memcpy(args, cfg->command.items, cfg->command.count * sizeof(*args));
    if (!(env = build_env(&cfg->env, &owned))) goto oom;
    uv_pipe_init(sp->loop, &c->in, 0);
    uv_pipe_init(sp->loop, &c->out, 0);
    c->in.data = c->out.data = c->proc.data = c;
    c->open = 3;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&c->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->out},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    uv_process_options_t o = {.file = args[0],
                              .args = args,
                              .env = env,
                              .exit_cb = on_exit_cb,
                              .stdio_count = 3,
                              .stdio = stdio};
    int rc = uv_spawn(sp->loop, &c->proc, &o);
    for (size_t j = 0; owned && j < cfg->env.count; j++)
        free(owned[j]);
    free(owned);
    free(env);
    free(args);
    if (rc < 0) {
        sp->api->metric_add(sp->m.spawn_failures, 1);
        SY_LOG(sp->api, sp->inst, SY_LOG_ERROR, "command: cannot start `%s`: %s",
               cfg->command.items[0], uv_strerror(rc));
        c->dead = true;
        child_close_all(c); /* a failed spawn's handle must still be closed */
        return SY_ERROR;
    }
    c->sp = sp;
    sp->child = c;
    c->started_ms = syc__sp_now(sp);
    sp->api->metric_add(sp->m.starts, 1);
    sp->api->metric_set(sp->m.up, 1);
    if (apply_limits(sp, c->proc.pid) < 0) {
        syc__sp_child_kill(sp, "its resource limits could not be set");
        return SY_OK; /* its exit restarts it by the policy */
    }
    uv_read_start((uv_stream_t *)&c->out, syc__sp_on_alloc, syc__sp_on_read);
    uint8_t signals = (uint8_t)(sp->api->signals(sp->inst) & SY_SIGNAL_ALL);
    if (syc__sp_write_frame(sp, SYC_SPF_HELLO, signals, 0, (const uint8_t *)SYC_SPF_VERSION,
                            strlen(SYC_SPF_VERSION), NULL) < 0)
        syc__sp_child_kill(sp, "the hello could not be written");
    SY_LOG(sp->api, sp->inst, SY_LOG_INFO, "child pid %d started: %s", c->proc.pid,
           cfg->command.items[0]);
    return SY_OK;
oom:
    free(args);
    free(c);
    SY_LOG(sp->api, sp->inst, SY_LOG_ERROR, "out of memory starting the child");
    return SY_ERROR;
}

/* ---- restarts ------------------------------------------------------------------- */

static void give_up(syc_sp_t *sp, const char *why)
{
    sp->failed = true;
    sp->api->metric_set(sp->m.up, 0);
    uint64_t items = 0;
    size_t n = sp->queue.n;
    sp_req_t *r;
    while ((r = syc__sp_fifo_pop(&sp->queue))) {
        items += r->items;
        syc__sp_finish(sp, r, SYC_SP_DROPPED);
    }
    SY_LOG(sp->api, sp->inst, SY_LOG_ERROR,
           "giving up on the child (%s): %zu held batches (%llu items) dropped; "
           "new batches are refused",
           why, n, (unsigned long long)items);
    if (sp->hooks.room) sp->hooks.room(sp->ctx);
    if (sp->stopping) syc__sp_maybe_close(sp);
}

static void on_restart_timer(uv_timer_t *t);

/* The child is gone (or never came): restart it after the backoff, unless the
 * policy or the restart budget says no. */
static void schedule_restart(syc_sp_t *sp, bool clean_exit)
{
    const syc_sp_config_t *cfg = sp->cfg;
    if (sp->closing || sp->failed) return;
    if (sp->stopping && !sp->queue.n) {
        syc__sp_maybe_close(sp);
        return;
    }
    if (cfg->restart_policy == SYC_SP_RESTART_NEVER) {
        give_up(sp, "restart.policy is never");
        return;
    }
    if (cfg->restart_policy == SYC_SP_RESTART_ON_FAILURE && clean_exit) {
        give_up(sp, "it exited with status 0 and restart.policy is on-failure");
        return;
    }
    uint64_t now = syc__sp_now(sp);
    uint64_t window = (uint64_t)(cfg->restart_window_ns / 1000000);
    if (!sp->window_start_ms || now - sp->window_start_ms > window) {
        sp->window_start_ms = now;
        sp->restarts_in_window = 0;
    }
    if (cfg->max_restarts > 0 && ++sp->restarts_in_window > cfg->max_restarts) {
        char why[128];
        snprintf(why, sizeof(why), "more than %lld restarts within restart.window",
                 (long long)cfg->max_restarts);
        give_up(sp, why);
        return;
    }
    uint64_t delay = (uint64_t)(cfg->initial_interval_ns / 1000000);
    uint64_t max = (uint64_t)(cfg->max_interval_ns / 1000000);
    for (int64_t i = 0; i < sp->failures_in_row && delay < max; i++)
        delay *= 2;
    if (delay > max) delay = max;
    if (!delay) delay = 1;
    sp->failures_in_row++;
    sp->restart_pending = true;
    uv_timer_start(&sp->restart_timer, on_restart_timer, delay, 0);
}

static void on_restart_timer(uv_timer_t *t)
{
    syc_sp_t *sp = t->data;
    sp->restart_pending = false;
    if (sp->closing || sp->failed) return;
    sp->api->metric_add(sp->m.restarts, 1);
    if (syc__sp_spawn(sp) < 0) {
        schedule_restart(sp, false);
        return;
    }
    syc__sp_arm_deadline(sp);
}

/* Puts what was in flight back at the front of the queue, in order; a request in
 * flight at its max_attempts-th failure is given up. */
static void requeue_flight(syc_sp_t *sp)
{
    sp_fifo_t back = {0};
    sp_req_t *r;
    while ((r = syc__sp_fifo_pop(&sp->flight))) {
        syc__sp_drop_outs(sp, r);
        if (++r->attempts >= sp->cfg->max_attempts) {
            SY_LOG(sp->api, sp->inst, SY_LOG_ERROR,
                   "a batch of %llu items was in flight at %lld child failures: dropped",
                   (unsigned long long)r->items, (long long)r->attempts);
            syc__sp_finish(sp, r, SYC_SP_DROPPED);
            continue;
        }
        sp->api->metric_add(sp->m.batches_resent, 1);
        syc__sp_fifo_push(&back, r);
    }
    if (back.head) {
        back.tail->next = sp->queue.head;
        if (!sp->queue.tail) sp->queue.tail = back.tail;
        sp->queue.head = back.head;
        sp->queue.n += back.n;
    }
    syc__sp_set_in_flight(sp);
}

static void child_lost(syc_sp_t *sp, sp_child_t *c, int64_t status, int term_signal)
{
    sp->child = NULL;
    sp->api->metric_set(sp->m.up, 0);
    bool clean = !c->killed && !term_signal && status == 0;
    if (c->killed) {
        /* counted where it was decided (timeout, protocol error) */
    } else if (term_signal) {
        sp->api->metric_add(sp->m.crashes, 1);
        size_t i = 0;
        while (i < 5 && sp_signals[i] != term_signal)
            i++;
        sp->api->metric_add(sp->m.by_signal[i], 1);
        SY_LOG(sp->api, sp->inst, SY_LOG_WARN, "child pid %d crashed: signal %d (%s)", c->proc.pid,
               term_signal, strsignal(term_signal));
    } else if (status != 0) {
        sp->api->metric_add(sp->m.failed_exits, 1);
        SY_LOG(sp->api, sp->inst, SY_LOG_WARN, "child pid %d exited with status %lld", c->proc.pid,
               (long long)status);
    } else if (!sp->closing) {
        SY_LOG(sp->api, sp->inst, SY_LOG_WARN, "child pid %d exited with status 0", c->proc.pid);
    }
    requeue_flight(sp);
    if (sp->closing) {
        syc__sp_close_timers(sp);
        return;
    }
    schedule_restart(sp, clean);
}

int syc_sp_validate(const syc_sp_config_t *cfg, char *err, size_t err_len)
{
    if (!cfg->command.count || !cfg->command.items[0][0]) {
        snprintf(err, err_len, "command: the program to run is missing");
        return SY_EINVAL;
    }
    const char *prog = cfg->command.items[0];
    if (strchr(prog, '/')) {
        if (access(prog, X_OK) == 0) return SY_OK;
        snprintf(err, err_len, "command: `%s` cannot be run: %s", prog, strerror(errno));
        return SY_EINVAL;
    }
    /* The child's PATH: the one `env` gives it, else the router's. */
    const char *path = getenv("PATH");
    for (size_t i = 0; i < cfg->env.count; i++)
        if (!strcmp(cfg->env.keys[i], "PATH")) path = cfg->env.values[i];
    if (!path) path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t dl = end ? (size_t)(end - path) : strlen(path);
        char full[4096];
        if (snprintf(full, sizeof(full), "%.*s/%s", (int)dl, dl ? path : ".", prog) <
                (int)sizeof(full) &&
            access(full, X_OK) == 0)
            return SY_OK;
        path += dl + (end ? 1 : 0);
    }
    snprintf(err, err_len, "command: `%s` was not found in PATH", prog);
    return SY_EINVAL;
}
