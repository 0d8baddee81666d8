/*
 * subproc_internal.h - what the two halves of the supervisor share: subproc.c
 * (requests, the frames a child writes, deadlines, the public functions) and
 * subproc_child.c (starting, limiting, losing and restarting children). Not for
 * plugins: they use subproc.h.
 */
#ifndef SYC_SUBPROC_INTERNAL_H
#define SYC_SUBPROC_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "subproc.h"
#include "subproc_frame.h"

#define SP_READ_CHUNK 65536u
#define SP_KILL_GRACE 2000u /* ms between closing the child's stdin and SIGKILL */

typedef struct sp_req_s {
    struct sp_req_s *next;
    sy_batch_t *batch;
    sy_signal_t signal;
    uint64_t items;
    uint64_t seq;
    uint64_t sent_ms;
    int64_t attempts;
    sy_batch_t **outs;
    size_t nouts, cap;
} sp_req_t;

typedef struct sp_child_s {
    syc_sp_t *sp; /* NULL once the supervisor no longer follows this child */
    uv_process_t proc;
    uv_pipe_t in;  /* the child's stdin: we write */
    uv_pipe_t out; /* the child's stdout: we read */
    int open;      /* handles not closed yet */
    bool closing_in, closing_out, closing_proc;
    bool hello, dead, killed;
    uint64_t started_ms;
    uint8_t *rbuf;
    size_t rlen, rcap;
} sp_child_t;

typedef struct sp_fifo_s {
    sp_req_t *head, *tail;
    size_t n;
} sp_fifo_t;

struct syc_sp_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const syc_sp_config_t *cfg;
    syc_sp_hooks_t hooks;
    void *ctx;
    uv_loop_t *loop;
    sp_child_t *child;
    uv_timer_t restart_timer, deadline_timer, kill_timer;
    int timers_open;
    bool timers_ready;
    sp_fifo_t queue, flight;
    uint64_t next_seq;
    int64_t failures_in_row;
    uint64_t window_start_ms;
    int64_t restarts_in_window;
    bool failed, stopping, closing, restart_pending;
    uint64_t drain_deadline_ms;
    uint64_t nack_log_ms;
    struct {
        sy_metric_t *starts, *restarts, *crashes, *failed_exits, *timeouts, *protocol_errors,
            *spawn_failures, *items_sent, *items_received, *batches_resent, *items_nacked,
            *items_dropped, *in_flight, *up;
        sy_metric_t *by_signal[6];
    } m;
};

/* The signals counted on their own; the last slot is every other one. */

static inline uint64_t syc__sp_now(const syc_sp_t *sp)
{
    return uv_now(sp->loop);
}

/* subproc.c */
void syc__sp_fifo_push(sp_fifo_t *f, sp_req_t *r);
sp_req_t *syc__sp_fifo_pop(sp_fifo_t *f);
/* Releases the answers collected for a request. */
void syc__sp_drop_outs(syc_sp_t *sp, sp_req_t *r);
/* Ends a request: the hook gets the batch back (and the answers when acked). */
void syc__sp_finish(syc_sp_t *sp, sp_req_t *r, syc_sp_outcome_t outcome);
void syc__sp_set_in_flight(syc_sp_t *sp);
/* libuv's allocation and read callbacks of a child's stdout. */
void syc__sp_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
void syc__sp_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
/* Writes one frame to the current child's stdin; 0 or a negative libuv error. */
int syc__sp_write_frame(syc_sp_t *sp, uint8_t type, uint8_t signal, uint64_t seq,
                        const uint8_t *payload, size_t len, sy_batch_t *batch);
/* Sets the one deadline timer (hello, oldest request, drain). */
void syc__sp_arm_deadline(syc_sp_t *sp);
/* At shutdown, once nothing is held: EOF to the child, SIGKILL if it lingers. */
void syc__sp_maybe_close(syc_sp_t *sp);
void syc__sp_close_timers(syc_sp_t *sp);

/* subproc_child.c */
/* Starts one child and says hello. SY_ERROR (logged, counted) when it cannot. */
int syc__sp_spawn(syc_sp_t *sp);
/* Kills the current child for a reason already counted; its exit restarts it. */
void syc__sp_child_kill(syc_sp_t *sp, const char *why);
/* Closes one of a child's handles once; the child frees itself after the last. */
void syc__sp_close_handle(uv_handle_t *h, bool *closing);

#endif
