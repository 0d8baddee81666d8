/*
 * answer.c - the table from a host result to a receiver's answer (see answer.h).
 */
#include "answer.h"

#include <switchyard/plugin.h>

#include "grpc_frame.h"

static const syc_answer_t answers[] = {
    {SY_OK, 200, SYC_GRPC_OK, false, "ok"},
    {SY_EAGAIN, 429, SYC_GRPC_RESOURCE_EXHAUSTED, true,
     "the pipeline's queue is full, retry later"},
    {SY_ECLOSED, 503, SYC_GRPC_UNAVAILABLE, true, "the router is shutting down"},
    {SY_ENOTSUP, 404, SYC_GRPC_UNIMPLEMENTED, false,
     "no pipeline takes this signal from this receiver"},
    {SY_ENOMEM, 413, SYC_GRPC_RESOURCE_EXHAUSTED, false, "request too large"},
    {SY_EINVAL, 400, SYC_GRPC_INVALID_ARGUMENT, false, "invalid request"},
    {SY_ERROR, 500, SYC_GRPC_INTERNAL, false, "the request could not be processed"},
};

const syc_answer_t *syc_answer_for(int result)
{
    size_t n = sizeof(answers) / sizeof(answers[0]);
    for (size_t i = 0; i < n; i++)
        if (answers[i].result == result) return &answers[i];
    return &answers[n - 1];
}
