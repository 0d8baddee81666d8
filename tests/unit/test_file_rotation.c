/*
 * test_file_rotation.c - the file exporter's buffered, rotating writer
 * (plugins/exporters/file/file_writer.c, compiled into this test): backup names,
 * rotation by size without splitting records, pruning by count and by age,
 * truncate and append, records larger than the buffer, and write errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../plugins/exporters/file/file_writer.c"

typedef struct fixture_s {
    char dir[64];
    char path[128];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/sy-fw-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/data.json", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *de;
    char p[512];
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Files in the fixture's directory whose names start with `prefix`. */
static int count_files(const fixture_t *f, const char *prefix)
{
    int n = 0;
    DIR *d = opendir(f->dir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strncmp(de->d_name, prefix, strlen(prefix)) == 0) n++;
    if (d) closedir(d);
    return n;
}

static void touch(const fixture_t *f, const char *name)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", f->dir, name);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    fputs("{}\n", fp);
    fclose(fp);
}

static bool exists(const fixture_t *f, const char *name)
{
    char p[256];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", f->dir, name);
    return stat(p, &st) == 0;
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

static int write_str(fw_writer_t *w, const char *s)
{
    char err[256];
    struct iovec iov = {.iov_base = (void *)s, .iov_len = strlen(s)};
    return fw_write(w, &iov, 1, err, sizeof(err));
}

static void test_backup_name(void **state)
{
    (void)state;
    struct timespec ts = {.tv_sec = 1663131734, .tv_nsec = 173999999}; /* 2022-09-14 05:02:14 */
    char out[128];
    assert_int_equal(fw_backup_name("dir/data.json", &ts, false, out, sizeof(out)), SY_OK);
    assert_string_equal(out, "dir/data-2022-09-14T05-02-14.173.json");
    assert_int_equal(fw_backup_name("noext", &ts, false, out, sizeof(out)), SY_OK);
    assert_string_equal(out, "noext-2022-09-14T05-02-14.173");
    assert_int_equal(fw_backup_name("a.b/c", &ts, false, out, sizeof(out)), SY_OK);
    assert_string_equal(out, "a.b/c-2022-09-14T05-02-14.173");
    assert_int_equal(fw_backup_name("x.tar.gz", &ts, false, out, sizeof(out)), SY_OK);
    assert_string_equal(out, "x.tar-2022-09-14T05-02-14.173.gz");
    assert_int_equal(fw_backup_name("dir/data.json", &ts, false, out, 10), SY_ENOMEM);
}

static void test_truncate_and_append(void **state)
{
    fixture_t *f = *state;
    fw_rotation_t none = {0};
    char err[256];
    fw_writer_t w;
    touch(f, "data.json");
    assert_int_equal(fw_open(&w, f->path, false, &none, err, sizeof(err)), SY_OK);
    assert_int_equal(file_size(f->path), 0); /* truncated */
    assert_int_equal(write_str(&w, "abc\n"), SY_OK);
    assert_int_equal(file_size(f->path), 0); /* still buffered */
    assert_int_equal(fw_flush(&w, err, sizeof(err)), SY_OK);
    assert_int_equal(file_size(f->path), 4);
    assert_int_equal(fw_close(&w, err, sizeof(err)), SY_OK);
    assert_int_equal(fw_close(&w, err, sizeof(err)), SY_OK); /* idempotent */

    assert_int_equal(fw_open(&w, f->path, true, &none, err, sizeof(err)), SY_OK);
    assert_int_equal(write_str(&w, "def\n"), SY_OK);
    assert_int_equal(fw_close(&w, err, sizeof(err)), SY_OK);
    assert_int_equal(file_size(f->path), 8);
}

static void test_rotation_by_size(void **state)
{
    fixture_t *f = *state;
    fw_rotation_t rot = {.enabled = true, .max_bytes = 100, .max_backups = 3};
    char err[256];
    fw_writer_t w;
    char rec[64];
    assert_int_equal(fw_open(&w, f->path, false, &rot, err, sizeof(err)), SY_OK);
    /* 40-byte records: two fit in 100 bytes, the third rotates. */
    for (int i = 0; i < 10; i++) {
        snprintf(rec, sizeof(rec), "%038d\n", i);
        assert_int_equal(strlen(rec), 39);
        assert_int_equal(write_str(&w, rec), SY_OK);
        assert_true(w.size <= 100);
    }
    assert_int_equal(w.rotations, 4);
    assert_int_equal(fw_close(&w, err, sizeof(err)), SY_OK);
    assert_int_equal(count_files(f, "data-"), 3); /* max_backups */
    assert_int_equal(w.rotations, 0);             /* closed writers are zeroed */
    /* The live file holds the last two records whole. */
    FILE *fp = fopen(f->path, "r");
    char buf[256] = {0};
    assert_int_equal(fread(buf, 1, sizeof(buf), fp), 78);
    fclose(fp);
    assert_memory_equal(buf, "00000000000000000000000000000000000008\n", 39);
}

static void test_existing_file_appended_then_rotated(void **state)
{
    fixture_t *f = *state;
    fw_rotation_t rot = {.enabled = true, .max_bytes = 10};
    char err[256];
    fw_writer_t w;
    touch(f, "data.json"); /* 3 bytes */
    assert_int_equal(fw_open(&w, f->path, false, &rot, err, sizeof(err)), SY_OK);
    assert_int_equal(w.size, 3);                         /* kept, as lumberjack does */
    assert_int_equal(write_str(&w, "0123456\n"), SY_OK); /* 3 + 8 > 10: rotates */
    assert_int_equal(w.rotations, 1);
    /* A record larger than the bound gets a file of its own. */
    assert_int_equal(write_str(&w, "0123456789abcdef\n"), SY_OK);
    assert_int_equal(w.rotations, 2);
    assert_int_equal(fw_close(&w, err, sizeof(err)), SY_OK);
    assert_int_equal(file_size(f->path), 17);
    assert_int_equal(count_files(f, "data-"), 2); /* max_backups 0 keeps all */
}

static void test_prune_by_age_and_count(void **state)
{
    fixture_t *f = *state;
    touch(f, "data-2000-01-01T00-00-00.000.json");    /* old: removed by age */
    touch(f, "data-2000-01-02T00-00-00.000.json");    /* old */
    touch(f, "data-2099-01-01T00-00-00.000.json");    /* future: kept */
    touch(f, "data-notatime-00-00-00.000.json");      /* not a backup */
    touch(f, "data-2000-13-01T00-00-00.000.json");    /* not a valid time */
    touch(f, "other-2000-01-01T00-00-00.000.json");   /* another file's backup */
    touch(f, "data-2000-01-01T00-00-00.000.json.gz"); /* another extension */
    fw_rotation_t rot = {.enabled = true, .max_bytes = 1 << 20, .max_days = 1};
    char err[256];
    fw_writer_t w;
    assert_int_equal(fw_open(&w, f->path, false, &rot, err, sizeof(err)), SY_OK);
    assert_int_equal(w.removed, 2);
    assert_false(exists(f, "data-2000-01-01T00-00-00.000.json"));
    assert_false(exists(f, "data-2000-01-02T00-00-00.000.json"));
    assert_true(exists(f, "data-2099-01-01T00-00-00.000.json"));
    assert_true(exists(f, "data-notatime-00-00-00.000.json"));
    assert_true(exists(f, "data-2000-13-01T00-00-00.000.json"));
    assert_true(exists(f, "other-2000-01-01T00-00-00.000.json"));
    assert_true(exists(f, "data-2000-01-01T00-00-00.000.json.gz"));
    assert_int_equal(fw_close(&w, err, sizeof(err)), SY_OK);

    /* By count: the newest by the name's timestamp stay. */
    touch(f, "data-2098-01-01T00-00-00.000.json");
    touch(f, "data-2097-01-01T00-00-00.000.json");
    rot = (fw_rotation_t){.enabled = true, .max_bytes = 1 << 20, .max_backups = 2};
    assert_int_equal(fw_open(&w, f->path, false, &rot, err, sizeof(err)), SY_OK);
    assert_int_equal(w.removed, 1);
    assert_false(exists(f, "data-2097-01-01T00-00-00.000.json"));
    assert_true(exists(f, "data-2098-01-01T00-00-00.000.json"));
    assert_true(exists(f, "data-2099-01-01T00-00-00.000.json"));
    assert_int_equal(fw_close(&w, err, sizeof(err)), SY_OK);
}

static void test_large_record(void **state)
{
    fixture_t *f = *state;
    fw_rotation_t none = {0};
    char err[256];
    fw_writer_t w;
    size_t n = FW_BUFFER_SIZE * 3 + 7;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'x', n);
    assert_int_equal(fw_open(&w, f->path, false, &none, err, sizeof(err)), SY_OK);
    assert_int_equal(write_str(&w, "a\n"), SY_OK);
    struct iovec iov[2] = {{.iov_base = big, .iov_len = n}, {.iov_base = "\n", .iov_len = 1}};
    assert_int_equal(fw_write(&w, iov, 2, err, sizeof(err)), SY_OK);
    assert_int_equal(file_size(f->path), (off_t)(2 + n + 1)); /* in order, unbuffered */
    assert_int_equal(fw_close(&w, err, sizeof(err)), SY_OK);
    free(big);
}

static void test_write_error(void **state)
{
    (void)state;
    fw_rotation_t none = {0};
    char err[256] = "";
    fw_writer_t w;
    if (access("/dev/full", W_OK) != 0) skip();
    assert_int_equal(fw_open(&w, "/dev/full", false, &none, err, sizeof(err)), SY_OK);
    assert_int_equal(write_str(&w, "buffered\n"), SY_OK);
    assert_int_equal(fw_flush(&w, err, sizeof(err)), SY_ERROR);
    assert_non_null(strstr(err, "/dev/full"));
    assert_int_equal(w.len, 9); /* kept for the next flush */
    char *big = calloc(1, FW_BUFFER_SIZE);
    assert_non_null(big);
    struct iovec iov = {.iov_base = big, .iov_len = FW_BUFFER_SIZE};
    assert_int_equal(fw_write(&w, &iov, 1, err, sizeof(err)), SY_ERROR);
    free(big);
    assert_int_equal(fw_close(&w, err, sizeof(err)), SY_ERROR);

    assert_int_equal(fw_open(&w, "/nonexistent-dir/x.json", false, &none, err, sizeof(err)),
                     SY_ERROR);
    assert_non_null(strstr(err, "cannot open"));
    assert_int_equal(fw_close(&w, err, sizeof(err)), SY_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backup_name),
        cmocka_unit_test_setup_teardown(test_truncate_and_append, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_by_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_file_appended_then_rotated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_by_age_and_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_record, setup, teardown),
        cmocka_unit_test(test_write_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
