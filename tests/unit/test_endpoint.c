/*
 * test_endpoint.c - the one reading of a listening endpoint (plugins/common/endpoint.c):
 * syntax, the special hosts, IPv6 brackets, ports, and the address shown.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "endpoint.h"
#include "http_server.h"

static void test_split(void **state)
{
    (void)state;
    char host[256], err[128];
    int port = -1;
    assert_int_equal(
        syc_endpoint_split("127.0.0.1:4318", host, sizeof host, &port, err, sizeof err), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 4318);
    assert_int_equal(syc_endpoint_split("[::1]:0", host, sizeof host, &port, err, sizeof err), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(syc_endpoint_split(":8888", host, sizeof host, &port, err, sizeof err), 0);
    assert_string_equal(host, "");
    static const char *const bad[] = {"4318",     "::1:4318",  "host:",      "host:65536",
                                      "host:12a", "[::1]4318", "host:123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(syc_endpoint_split(bad[i], host, sizeof host, &port, err, sizeof err),
                         SY_EINVAL);
        assert_non_null(strstr(err, "expected host:port"));
        assert_int_equal(syc_http_endpoint_check(bad[i], err, sizeof err), -1);
    }
    assert_int_equal(syc_endpoint_split(NULL, host, sizeof host, &port, err, sizeof err),
                     SY_EINVAL);
    assert_int_equal(syc_http_endpoint_check("0.0.0.0:4317", err, sizeof err), 0);
}

static void test_resolve(void **state)
{
    (void)state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct sockaddr_storage addr;
    char shown[300], err[256];

    assert_int_equal(
        syc_endpoint_resolve(&loop, "localhost:4318", &addr, shown, sizeof shown, err, sizeof err),
        0);
    assert_int_equal(addr.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&addr)->sin_port), 4318);
    assert_string_equal(shown, "127.0.0.1:4318");

    assert_int_equal(syc_endpoint_resolve(&loop, ":9", &addr, shown, sizeof shown, err, sizeof err),
                     0);
    assert_string_equal(shown, "0.0.0.0:9");

    assert_int_equal(syc_endpoint_resolve(&loop, "[::1]:4317", &addr, NULL, 0, err, sizeof err), 0);
    assert_int_equal(addr.ss_family, AF_INET6);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&addr)->sin6_port), 4317);

    assert_int_equal(
        syc_endpoint_resolve(&loop, "nocolon", &addr, shown, sizeof shown, err, sizeof err),
        SY_EINVAL);
    assert_string_equal(err, "invalid endpoint \"nocolon\": expected host:port");
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_resolve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
