/*
 * Fuzz target: the jaeger receiver's Thrift compact-protocol decoders (agent
 * packets and bare Batch bodies) and their translation to OTLP. See fuzz_thrift.h.
 */
#include "fuzz_thrift.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_thrift_one(TH_PROTO_COMPACT, data, size);
}
