/*
 * loop.h - loop threads: one thread running one libuv loop.
 *
 * Every component instance lives on one loop thread. Other threads reach it in
 * two ways only: the data plane wakes it (sy__thread_wake, which coalesces, so a
 * woken thread drains everything that is queued), and the control plane runs a
 * function on it and waits for the result (sy__thread_call), which is how the
 * main thread creates, starts, stops and destroys plugins on their own threads.
 */
#ifndef SY_CORE_LOOP_H
#define SY_CORE_LOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef void (*sy__thread_fn)(void *arg);

typedef struct sy__call_s sy__call_t;

typedef struct sy__thread_s {
    uv_loop_t loop;
    uv_async_t wake;
    uv_thread_t tid;
    char name[32];

    /* Data plane: called on the loop thread after every wake-up. */
    sy__thread_fn on_wake;
    void *wake_arg;
    /* Called on the loop thread after its loop has ended (no handles left). */
    sy__thread_fn on_exit;
    void *exit_arg;

    /* Control plane: calls waiting to run, guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    sy__call_t *calls;
    bool closing; /* the wake handle is being closed: no more calls */
    bool exited;  /* the thread function has returned (guarded by mu) */
    bool started;
} sy__thread_t;

/* Creates the loop and starts the thread. Returns 0 or a negative SY_E*. */
int sy__thread_start(sy__thread_t *t, const char *name);
/* Runs fn(arg) on the loop thread and waits until it has returned. From any
 * other thread; from the loop thread itself fn runs at once. */
int sy__thread_call(sy__thread_t *t, sy__thread_fn fn, void *arg);
/* Wakes the loop thread (any thread; coalesces). */
void sy__thread_wake(sy__thread_t *t);
/* True when called on t's loop thread. */
bool sy__thread_is_current(const sy__thread_t *t);
/*
 * Ends the thread: closes the wake handle, lets the loop run until every other
 * handle is closed, runs on_exit there, and joins. Waits at most timeout_ms for
 * the loop to end; returns SY_ERROR (and does not join) if it did not.
 */
int sy__thread_stop(sy__thread_t *t, uint64_t timeout_ms);

#endif
