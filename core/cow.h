/*
 * cow.h - copy-on-write: which plugin instance is running on this thread, and
 * whether it may change a batch in place.
 *
 * The host API's batch_request_mut() takes no instance, so the runtime marks the
 * instance whose code is running (a processor's or exporter's consume(), a timer
 * callback) in a thread-local variable, and the checked accessor reads it. The
 * rule is written out in include/switchyard/plugin.h at batch_request_mut.
 */
#ifndef SY_CORE_COW_H
#define SY_CORE_COW_H

#include <stdbool.h>

#include <switchyard/plugin.h>

/*
 * Marks `inst` as the instance running on this thread and returns the one that
 * was marked before (NULL: none), to be given back to sy__consumer_leave(). Calls
 * nest: a processor's emit() runs the next processor's consume() on the same
 * stack, and the first must be current again once that returns.
 */
sy_instance_t *sy__consumer_enter(sy_instance_t *inst);
void sy__consumer_leave(sy_instance_t *prev);

/* The instance marked on this thread, or NULL (a receiver's own callbacks, the
 * core itself). */
sy_instance_t *sy__consumer_current(void);

/*
 * The host API's batch_request_mut(): the decoded request for changing it, or
 * NULL when the batch is shared, when the current instance may not change it (it
 * lacks SY_PLUGIN_MUTATES_DATA and did not make the batch), or when it does not
 * decode. A refusal is logged at error level naming the instance and counted in
 * switchyard_batch_mutation_refused_total with the instance's labels. Any thread
 * holding a reference.
 */
void *sy__cow_request_mut(sy_batch_t *batch);

/*
 * The check behind sy__cow_request_mut, for every way of changing a batch in
 * place (the view's commit too): true when the current instance may change
 * `batch` now; otherwise logs the refusal naming `what` ("view_commit") and
 * counts it as batch_request_mut's are counted, and returns false.
 */
bool sy__cow_may_change(sy_batch_t *batch, const char *what);

#endif
