/*
 * detect_bench - what the redaction detectors (plugins/common/detect.h) cost per
 * attribute value, on one core: ns per syc_detect_redact() call for a few kinds
 * of values, with every detector on and with each alone.
 *
 *   detect_bench [--seconds 0.3]     (the time spent on each cell of the table)
 *
 * The values are typical of span attributes and log bodies: short words
 * (http.method, service names), URLs, numbers (status codes, ids, durations),
 * 200-byte log lines without secrets, and the same log lines with a secret.
 * The first row is a memcpy of the value, the floor any redaction pays.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "detect.h"

/* This thread's CPU time, not the wall clock: on a shared machine the wall clock
 * counts the time other processes had the core. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct value_class_s {
    const char *name;
    const char *const *values;
    size_t n;
} value_class_t;

static const char *const words[] = {
    "GET",          "checkout", "frontend", "200",    "true", "grpc",           "us-east-1",
    "cart-service", "POST",     "redis",    "SELECT", "ok",   "kafka.consumer", "eu-west-3b",
    "payment",      "prod",
};
static const char *const urls[] = {
    "https://api.example.com/v1/orders/12345?expand=items",
    "/api/v2/users/8d1c2f/profile",
    "http://cart.svc.cluster.local:8080/cart/add",
    "https://cdn.example.net/static/js/app.3f9a1c.js",
    "grpc://payment:50051/Payment/Charge",
    "https://www.example.org/search?q=running+shoes&page=2",
};
static const char *const numbers[] = {
    "1718034981123", "42",        "3.14159",
    "200",           "0.000231",  "987654321",
    "1500",          "-17",       "2024-06-10T14:03:01.123Z",
    "65535",         "100000000", "7",
};
static const char *const logs[] = {
    "2024-06-10T14:03:01.123Z INFO  [cart-service] added item sku=RS-1234 qty=2 to cart "
    "7f3a9c for session 5b2e; latency=12.4ms upstream=inventory status=200 retries=0 "
    "region=eu-west-3 zone=b pod=cart-7d9f8-x2k",
    "WARN connection pool exhausted for db primary (size=20, waiting=7, timeout=5000ms); "
    "falling back to replica, request_id=0a1b2c3d4e5f6a7b trace=4bf92f3577b34da6a3ce929d0e0e4736 "
    "span=00f067aa0ba902b7",
    "ERROR payment declined: processor returned code 51 (insufficient funds) after 842 ms; "
    "order 88120931 will be retried by the scheduler in 300 s, attempt 2 of 5, merchant "
    "acme-eu, currency EUR",
};
static const char *const secrets[] = {
    "INFO login ok user=jane.doe@example.com from 203.0.113.17 via "
    "https://sso.example.com/callback, session established for 3600 s, client app version "
    "5.2.1 build 2024.06.10 on platform linux-x64",
    "DEBUG upstream call Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2ln "
    "to postgres://app:hunter2@db.internal:5432/orders took 23 ms, card 4111 1111 1111 1111 "
    "charged, peer 2001:db8::17",
};

#define CLASS(name, arr)                        \
    {                                           \
        name, arr, sizeof(arr) / sizeof(arr[0]) \
    }
static const value_class_t classes[] = {
    CLASS("words", words),          CLASS("urls", urls),
    CLASS("numbers", numbers),      CLASS("log lines", logs),
    CLASS("with secrets", secrets),
};
#define NCLASSES (sizeof(classes) / sizeof(classes[0]))

static volatile size_t sink;

static double ns_per_value(const syc_detect_set_t *set, const value_class_t *c, double seconds)
{
    size_t lens[16];
    for (size_t i = 0; i < c->n; i++)
        lens[i] = strlen(c->values[i]);
    char out[1024];
    size_t calls = 0, acc = 0;
    double t0 = now(), t;
    do {
        for (int rep = 0; rep < 256; rep++)
            for (size_t i = 0; i < c->n; i++)
                acc += set ? syc_detect_redact(set, c->values[i], lens[i], out, sizeof(out), NULL)
                           : (memcpy(out, c->values[i], lens[i]), (size_t)out[lens[i] / 2]);
        calls += 256 * c->n;
        t = now();
    } while (t - t0 < seconds);
    sink = acc;
    return (t - t0) * 1e9 / (double)calls;
}

int main(int argc, char **argv)
{
    double seconds = 0.3;
    for (int i = 1; i + 1 < argc; i += 2)
        if (strcmp(argv[i], "--seconds") == 0) seconds = atof(argv[i + 1]);

    static const char *const all[] = {"card", "email", "bearer", "ipv4", "ipv6", "url_password"};
    printf("ns per value (syc_detect_redact), %.2f s a cell\n", seconds);
    printf("%-14s", "detectors");
    for (size_t c = 0; c < NCLASSES; c++)
        printf(" %13s", classes[c].name);
    printf("\n%-14s", "(mean bytes)");
    for (size_t c = 0; c < NCLASSES; c++) {
        size_t total = 0;
        for (size_t i = 0; i < classes[c].n; i++)
            total += strlen(classes[c].values[i]);
        printf(" %13zu", total / classes[c].n);
    }
    printf("\n");
    printf("%-14s", "memcpy");
    for (size_t c = 0; c < NCLASSES; c++)
        printf(" %13.1f", ns_per_value(NULL, &classes[c], seconds));
    printf("\n");
    for (int row = -1; row < 6; row++) {
        char err[256];
        syc_detect_set_t *set = row < 0 ? syc_detect_compile(all, 6, err, sizeof(err))
                                        : syc_detect_compile(&all[row], 1, err, sizeof(err));
        if (!set) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        printf("%-14s", row < 0 ? "all" : all[row]);
        for (size_t c = 0; c < NCLASSES; c++)
            printf(" %13.1f", ns_per_value(set, &classes[c], seconds));
        printf("\n");
        fflush(stdout);
        syc_detect_free(set);
    }
    return 0;
}
