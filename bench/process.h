/* What every benchmark client measures about itself, the same way for each (livefeed and
 * libwebsockets alike): wall and CPU clocks, /proc/self/status fields, the descriptor
 * limit, and a comparison for sorting round trips. C library only. */
#ifndef LIVEFEED_BENCH_PROCESS_H
#define LIVEFEED_BENCH_PROCESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time (user + system) consumed by the whole process so far. */
static inline double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A numeric field of /proc/self/status ("VmRSS", "Threads"); -1 if unknown. */
static inline long proc_status(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) {
        return -1;
    }
    char line[256];
    size_t klen = strlen(key);
    long v = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            v = strtol(line + klen + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* Resident set size of this process in KiB; -1 if unknown. */
static inline long vm_rss_kib(void) { return proc_status("VmRSS"); }

/* Raises the descriptor limit to its hard limit (one descriptor per session). */
static inline void raise_fd_limit(const char *program) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            fprintf(stderr, "%s: ", program);
            perror("setrlimit");
        }
    }
}

/* For qsort of doubles, ascending. */
static inline int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#endif
