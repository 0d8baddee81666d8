/*
 * loop.h - worker threads: one thread running one libuv loop, shared by several
 * components.
 *
 * The engine keeps a small pool of workers per kind of component (receivers,
 * pipelines, exporters, extensions), so the number of threads is bounded by the
 * pool sizes, not by the size of the configuration. Every component instance (and
 * every pipeline with its processors) is bound to one worker for its whole life,
 * so its callbacks always run on one thread and a plugin needs no locks.
 *
 * Other threads reach a worker in two ways only:
 * - the data plane wakes one component on it (sy__wake_send on that component's
 *   sy__wake_t; wake-ups coalesce, so a woken component drains everything queued);
 * - the control plane runs a function on it (sy__thread_call), waiting at most a
 *   deadline for it. A call that misses its deadline is abandoned, never freed
 *   under a thread that may still be running it.
 */
#ifndef SY_CORE_LOOP_H
#define SY_CORE_LOOP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* A cross-thread call that did not return before its deadline. */
#define SY__ETIMEDOUT (-100)

typedef void (*sy__thread_fn)(void *arg);

typedef struct sy__call_s sy__call_t;

typedef struct sy__thread_s {
    uv_loop_t loop; /* what plugins get from api->loop() */
    uv_async_t ctl; /* control plane wake-up */
    /* Send deferred wake-ups: after each iteration's I/O callbacks (check), and
     * after its timers and pending callbacks, before the loop blocks (prepare). */
    uv_check_t check;
    uv_prepare_t prepare;
    /* Set before sy__thread_start(): wake-ups this worker sends to other workers
     * wait until the end of its loop iteration (see sy__wake_send). */
    bool defer_wakes;
    /* Set before sy__thread_start(): the worker runs under SCHED_BATCH (see
     * thread_main in loop.c). */
    bool batch_sched;
    uv_thread_t tid;
    char name[32];

    /* Called on the worker after its loop has ended (no handles left), before the
     * thread returns: where the components that lived on it are destroyed. */
    sy__thread_fn on_exit;
    void *exit_arg;

    /* Control plane: calls waiting to run, guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    sy__call_t *calls;
    bool closing; /* the control handle is being closed: no more calls */
    bool exited;  /* the thread function has returned (guarded by mu) */
    bool started;
} sy__thread_t;

/* One component's data-plane wake-up on its worker: an eventfd of its own,
 * watched by the worker's loop (see sy__wake_send in loop.c). */
typedef struct sy__wake_s {
    uv_poll_t poll;
    int fd;              /* the eventfd */
    atomic_bool pending; /* written to fd and not yet read: later sends coalesce */
    sy__thread_t *thread;
    sy__thread_fn fn; /* run on the worker after each wake-up */
    void *arg;
    atomic_bool open;
    atomic_int senders; /* threads inside sy__wake_send() */
} sy__wake_t;

/* Creates the loop and starts the thread. Returns 0 or a negative SY_E*. */
int sy__thread_start(sy__thread_t *t, const char *name);

/*
 * Runs fn(arg) on the worker and waits until it has returned, at most until the
 * CLOCK_MONOTONIC time deadline_ms (0: no deadline). From the worker itself fn runs
 * at once. Returns 0, SY_ECLOSED (the worker is closing; fn did not run) or
 * SY__ETIMEDOUT: fn either never runs, or is still running and `arg` must then
 * stay valid for ever (the engine stops freeing anything once a call timed out).
 */
int sy__thread_call(sy__thread_t *t, sy__thread_fn fn, void *arg, uint64_t deadline_ms);

/* True when called on t's thread. */
bool sy__thread_is_current(const sy__thread_t *t);

/*
 * Ends the worker: closes its control handle, lets the loop run until every other
 * handle is closed, runs on_exit there, and joins. Waits until deadline_ms at most
 * (CLOCK_MONOTONIC); returns SY__ETIMEDOUT and does not join if the loop has not
 * ended by then (the thread and its memory must then be left alone).
 */
/* The first half of sy__thread_stop(): asks the loop to end once its handles are
 * closed, without waiting for that; sy__thread_try_join() then joins the thread
 * if it has exited (true), or says it has not (false). */
int sy__thread_stop_begin(sy__thread_t *t, uint64_t deadline_ms);
bool sy__thread_try_join(sy__thread_t *t);
int sy__thread_stop(sy__thread_t *t, uint64_t deadline_ms);

/* Opens a component's wake-up on worker t. On t's thread (or before it starts
 * running anything). Returns 0 or SY_ERROR. */
int sy__wake_open(sy__wake_t *w, sy__thread_t *t, sy__thread_fn fn, void *arg);
/* Wakes the component (any thread; coalesces). */
void sy__wake_send(sy__wake_t *w);
/* Closes the wake-up (on the worker). Further sends are ignored. */
void sy__wake_close(sy__wake_t *w);

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t sy__now_ms(void);

#endif
