/*
 * A test shim for the real watchpost binary, loaded with LD_PRELOAD by the end-to-end tests
 * (crates/watchpost/tests/common/mod.rs builds it with the system C compiler). It changes
 * nothing unless armed through the environment:
 *
 *   WATCHPOST_SHIM_CLOCK_FILE=PATH  the wall clock (CLOCK_REALTIME, gettimeofday, time) is
 *                                   shifted by the whole number of seconds written in PATH
 *                                   (re-read at most every 20 ms; may be negative). The
 *                                   monotonic clock is untouched: this is a wall-clock step,
 *                                   as an operator or a bad NTP server makes one.
 *   WATCHPOST_SHIM_FULL_FILE=PATH   while PATH exists, every write to a file whose path
 *                                   contains WATCHPOST_SHIM_FULL_MATCH (default ".db") fails
 *                                   with ENOSPC: a full disk under the store.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);

static clock_gettime_fn real_clock_gettime_ptr(void) {
    static clock_gettime_fn real;
    if (!real) real = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    return real;
}

static long long offset_seconds(void) {
    static long long cached;
    static long long read_at_ns = -1;
    const char *path = getenv("WATCHPOST_SHIM_CLOCK_FILE");
    if (!path) return 0;
    struct timespec now;
    if (real_clock_gettime_ptr()(CLOCK_MONOTONIC, &now) != 0) return __atomic_load_n(&cached, __ATOMIC_RELAXED);
    long long now_ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
    long long last = __atomic_load_n(&read_at_ns, __ATOMIC_RELAXED);
    if (last < 0 || now_ns - last > 20000000LL) {
        FILE *f = fopen(path, "r");
        if (f) {
            long long v = 0;
            if (fscanf(f, "%lld", &v) == 1) __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
            fclose(f);
        }
        __atomic_store_n(&read_at_ns, now_ns, __ATOMIC_RELAXED);
    }
    return __atomic_load_n(&cached, __ATOMIC_RELAXED);
}

int clock_gettime(clockid_t clk, struct timespec *ts) {
    int r = real_clock_gettime_ptr()(clk, ts);
    if (r == 0 && ts && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE)) {
        ts->tv_sec += (time_t)offset_seconds();
    }
    return r;
}

int gettimeofday(struct timeval *tv, void *tz) {
    (void)tz;
    struct timespec ts;
    int r = clock_gettime(CLOCK_REALTIME, &ts);
    if (r == 0 && tv) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return r;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
    if (out) *out = ts.tv_sec;
    return ts.tv_sec;
}

static int disk_full_for(int fd) {
    const char *trigger = getenv("WATCHPOST_SHIM_FULL_FILE");
    if (!trigger || access(trigger, F_OK) != 0) return 0;
    const char *match = getenv("WATCHPOST_SHIM_FULL_MATCH");
    if (!match) match = ".db";
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) return 0;
    target[n] = 0;
    return strstr(target, match) != NULL;
}

ssize_t write(int fd, const void *buf, size_t count) {
    static write_fn real;
    if (!real) real = (write_fn)dlsym(RTLD_NEXT, "write");
    if (disk_full_for(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return real(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    static pwrite_fn real;
    if (!real) real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite");
    if (disk_full_for(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return real(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    static pwrite_fn real;
    if (!real) real = (pwrite_fn)dlsym(RTLD_NEXT, "pwrite64");
    if (disk_full_for(fd)) {
        errno = ENOSPC;
        return -1;
    }
    return real(fd, buf, count, offset);
}
