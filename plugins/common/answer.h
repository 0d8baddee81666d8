/*
 * answer.h - the one table from a host result (SY_OK, SY_EAGAIN, ...) to what a
 * receiver answers its client: the HTTP status, the gRPC status code, whether the
 * client is told to retry (Retry-After / RetryInfo), and the sentence. Every
 * receiver answers the same outcome the same way, in each protocol's own terms:
 *
 *   result       HTTP  gRPC                 retry  when
 *   SY_OK        200   OK                   -      accepted
 *   SY_EAGAIN    429   RESOURCE_EXHAUSTED   yes    a pipeline queue is full
 *   SY_ECLOSED   503   UNAVAILABLE          yes    the router is shutting down
 *   SY_ENOTSUP   404   UNIMPLEMENTED        no     no pipeline takes the signal
 *   SY_ENOMEM    413   RESOURCE_EXHAUSTED   no     over a size or item bound
 *   SY_EINVAL    400   INVALID_ARGUMENT     no     the request is malformed
 *   other        500   INTERNAL             no     anything else
 */
#ifndef SYC_ANSWER_H
#define SYC_ANSWER_H

#include <stdbool.h>

typedef struct syc_answer_s {
    int result;          /* the SY_E* code this row answers */
    int http_status;     /* 200, 429, 503, 404, 413, 400, 500 */
    int grpc_code;       /* a syc_grpc_code_t */
    bool retry;          /* tell the client to retry later */
    const char *message; /* the default sentence (the caller may say more) */
} syc_answer_t;

/* The row for `result`; the "other" row for anything not in the table. */
const syc_answer_t *syc_answer_for(int result);

#endif
