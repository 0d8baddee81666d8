# The Jaeger agent's UDP service (jaegertracing/jaeger-idl, thrift/agent.thrift),
# the part the jaeger receiver serves: a UDP packet on 6831 (compact protocol) or
# 6832 (binary protocol) is one oneway call of emitBatch. emitZipkinBatch is
# answered as unsupported, as the collector does, so its argument is left out.

include "jaeger.thrift"

namespace java io.jaegertracing.agent.thrift

service Agent {
    oneway void emitBatch(1: jaeger.Batch batch)
}
