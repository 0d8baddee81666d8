/*
 * test_log.c - the log line format, level filtering, rate limiting, and records
 * of concurrent threads staying whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <regex.h>
#include <unistd.h>

#include "log.h"

/* Captures what is written to stderr between capture_begin() and capture_end(). */
typedef struct capture_s {
    FILE *file;
    int saved_fd;
} capture_t;

static void capture_begin(capture_t *c)
{
    fflush(stderr);
    c->file = tmpfile();
    assert_non_null(c->file);
    c->saved_fd = dup(STDERR_FILENO);
    assert_true(c->saved_fd >= 0);
    assert_true(dup2(fileno(c->file), STDERR_FILENO) >= 0);
}

/* Returns the captured bytes, malloc'ed and NUL-terminated. */
static char *capture_end(capture_t *c)
{
    fflush(stderr);
    assert_true(dup2(c->saved_fd, STDERR_FILENO) >= 0);
    close(c->saved_fd);
    fseek(c->file, 0, SEEK_END);
    long size = ftell(c->file);
    assert_true(size >= 0);
    rewind(c->file);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (size_t)size, c->file);
    buf[n] = '\0';
    fclose(c->file);
    return buf;
}

static void assert_matches(const char *text, const char *pattern)
{
    regex_t re;
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    if (rc != 0) fail_msg("\"%s\" does not match /%s/", text, pattern);
}

#define TS "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"

static int reset_level(void **state)
{
    (void)state;
    sy__log_set_level(SY_LOG_INFO);
    return 0;
}

static void test_format(void **state)
{
    (void)state;
    capture_t c;
    capture_begin(&c);
    sy__log("otlp/2", SY_LOG_INFO, "hello %d", 42);
    sy__log(NULL, SY_LOG_ERROR, "no component");
    char *out = capture_end(&c);
    assert_matches(out, "^" TS "\tinfo\totlp/2\thello 42\n" TS "\terror\tservice\tno component\n$");
    free(out);
}

static void test_levels(void **state)
{
    (void)state;
    assert_true(sy__log_enabled(SY_LOG_INFO));
    assert_false(sy__log_enabled(SY_LOG_DEBUG));
    sy__log_set_level(SY_LOG_WARN);
    assert_int_equal(sy__log_level(), SY_LOG_WARN);

    int evaluated = 0;
    capture_t c;
    capture_begin(&c);
    SY__LOG(SY_LOG_INFO, "x", "skipped %d", ++evaluated);
    SY__LOG(SY_LOG_DEBUG, "x", "skipped %d", ++evaluated);
    SY__LOG(SY_LOG_WARN, "x", "kept %d", ++evaluated);
    SY__LOG(SY_LOG_ERROR, "x", "kept %d", ++evaluated);
    char *out = capture_end(&c);
    /* Arguments of a disabled record are not even evaluated. */
    assert_int_equal(evaluated, 2);
    assert_matches(out, "^" TS "\twarn\tx\tkept 1\n" TS "\terror\tx\tkept 2\n$");
    free(out);

    sy__log_set_level(SY_LOG_DEBUG);
    capture_begin(&c);
    SY__LOG(SY_LOG_DEBUG, "x", "debug");
    out = capture_end(&c);
    assert_matches(out, "^" TS "\tdebug\tx\tdebug\n$");
    free(out);
}

static void test_level_parse(void **state)
{
    (void)state;
    sy_log_level_t level = SY_LOG_ERROR;
    assert_int_equal(sy__log_level_parse("debug", &level), 0);
    assert_int_equal(level, SY_LOG_DEBUG);
    assert_int_equal(sy__log_level_parse("INFO", &level), 0);
    assert_int_equal(level, SY_LOG_INFO);
    assert_int_equal(sy__log_level_parse("warning", &level), 0);
    assert_int_equal(level, SY_LOG_WARN);
    assert_int_equal(sy__log_level_parse("error", &level), 0);
    assert_int_equal(level, SY_LOG_ERROR);
    assert_int_equal(sy__log_level_parse("loud", &level), SY_EINVAL);
    assert_int_equal(sy__log_level_parse(NULL, &level), SY_EINVAL);
    assert_int_equal(level, SY_LOG_ERROR);
    assert_string_equal(sy__log_level_name(SY_LOG_WARN), "warn");
    assert_string_equal(sy__log_level_name((sy_log_level_t)9), "unknown");
}

/* A message keeps to one line and one column however it is made. */
static void test_control_characters(void **state)
{
    (void)state;
    capture_t c;
    capture_begin(&c);
    sy__log("bad\tid\n", SY_LOG_INFO, "line one\nline two\r\tend");
    char *out = capture_end(&c);
    assert_matches(out, "^" TS "\tinfo\tbad id \tline one line two  end\n$");
    free(out);
}

static void test_truncation(void **state)
{
    (void)state;
    size_t n = 3 * SY__LOG_LINE_MAX;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, 'a', n);
    big[n] = '\0';
    capture_t c;
    capture_begin(&c);
    sy__log("c", SY_LOG_INFO, "%s", big);
    char *out = capture_end(&c);
    size_t len = strlen(out);
    assert_int_equal(len, SY__LOG_LINE_MAX);
    assert_memory_equal(out + len - 4, "...\n", 4);
    assert_non_null(strstr(out, "\tc\taaaa"));
    free(out);
    free(big);
}

static void test_ratelimit(void **state)
{
    (void)state;
    sy__ratelimit_t rl = SY__RATELIMIT_INIT;
    uint64_t suppressed = 99;
    assert_true(sy__log_ratelimit(&rl, 100, &suppressed));
    assert_int_equal(suppressed, 0);
    for (int i = 0; i < 5; i++)
        assert_false(sy__log_ratelimit(&rl, 100, &suppressed));
    usleep(150 * 1000);
    assert_true(sy__log_ratelimit(&rl, 100, &suppressed));
    assert_int_equal(suppressed, 5);

    sy__ratelimit_t rl2 = SY__RATELIMIT_INIT;
    capture_t c;
    capture_begin(&c);
    for (int i = 0; i < 4; i++)
        SY__LOG_RATELIMITED(&rl2, 100, SY_LOG_WARN, "udp", "dropped %d", i);
    usleep(150 * 1000);
    SY__LOG_RATELIMITED(&rl2, 100, SY_LOG_WARN, "udp", "dropped %d", 4);
    char *out = capture_end(&c);
    assert_matches(out, "^" TS "\twarn\tudp\tdropped 0\n" TS
                        "\twarn\tudp\tdropped 4 \\(3 similar messages suppressed\\)\n$");
    free(out);
}

#define THREADS 4
#define LINES   500

static void *log_thread(void *arg)
{
    int id = (int)(intptr_t)arg;
    char pad[300];
    memset(pad, 'a' + id, sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < LINES; i++)
        sy__log("t", SY_LOG_INFO, "%d %d %s", id, i, pad);
    return NULL;
}

/* Lines of concurrent threads are never interleaved. */
static void test_concurrent_lines(void **state)
{
    (void)state;
    pthread_t threads[THREADS];
    capture_t c;
    capture_begin(&c);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, log_thread, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    char *out = capture_end(&c);

    int count[THREADS] = {0};
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        int id = -1, seq = -1, consumed = 0;
        const char *msg = strstr(line, "\tt\t");
        assert_non_null(msg);
        assert_int_equal(sscanf(msg + 3, "%d %d %n", &id, &seq, &consumed), 2);
        assert_true(id >= 0 && id < THREADS);
        assert_int_equal(seq, count[id]);
        const char *pad = msg + 3 + consumed;
        assert_int_equal(strlen(pad), 299);
        for (size_t k = 0; k < 299; k++)
            assert_int_equal(pad[k], 'a' + id);
        count[id]++;
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(count[i], LINES);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_format, reset_level, reset_level),
        cmocka_unit_test_setup_teardown(test_levels, reset_level, reset_level),
        cmocka_unit_test_setup_teardown(test_level_parse, reset_level, reset_level),
        cmocka_unit_test_setup_teardown(test_control_characters, reset_level, reset_level),
        cmocka_unit_test_setup_teardown(test_truncation, reset_level, reset_level),
        cmocka_unit_test_setup_teardown(test_ratelimit, reset_level, reset_level),
        cmocka_unit_test_setup_teardown(test_concurrent_lines, reset_level, reset_level),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
