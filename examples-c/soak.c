/*
 * soak: a thousand forced reconnects in one process, checked for leaks.
 *
 *   usage: soak ws://host:port/path [RECONNECTS [LIMIT_S]]
 *          (defaults: 1000 reconnects, at most 600 seconds)
 *
 * The server at the URL must drop every connection, right after the upgrade or after one
 * message. One loop (driven here with lf_loop_run_once), one session with reconnecting
 * on (delays of 1 to 5 ms, no attempt limit). Every LF_STATE_OPEN after the first is a
 * reconnect. The program checks:
 *   - the open file descriptors (entries of /proc/self/fd), counted inside the callback
 *     of the OPEN event, are the same at reconnect 10 and at the last one: at that point
 *     of every cycle the process holds exactly the same descriptors (the loop's own and
 *     one connected socket; the URL is an address, so no resolver runs), so any
 *     difference is a leaked descriptor and the tolerance is zero;
 *   - after lf_session_free returns, its callback never runs again, while the loop goes
 *     on turning for a while; its userdata_free runs exactly once. The userdata is a
 *     heap block that userdata_free frees, so a callback after that is also a use after
 *     free for the sanitizer or valgrind;
 *   - after lf_loop_free, the descriptors are those the process had before lf_loop_new.
 * Leaks and use after free are for the sanitizer or valgrind running the program.
 * Prints the figures (reconnects, elapsed time, descriptors, VmRSS); exit 0 when every
 * check passed, 1 otherwise, 2 for bad usage.
 */
#define _POSIX_C_SOURCE 200809L

#include <livefeed.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FD_CHECK_AT 10    /* the reconnect whose descriptors are the reference */
#define AFTER_FREE_MS 300 /* how long the loop keeps turning after lf_session_free */

struct soak {
    long wanted;           /* reconnects to reach */
    long opens;            /* LF_STATE_OPEN events */
    long errors, closes;   /* LF_KIND_ERROR and LF_KIND_CLOSE events */
    long fds_ref, fds_last; /* descriptors at reconnect FD_CHECK_AT and at the last one */
    long rss_ref, rss_last; /* VmRSS (KiB) at the same two points */
    int freed;             /* set once lf_session_free has returned */
    long after_free;       /* callbacks after that: must stay 0 */
    int userdata_frees;    /* calls of the userdata_free function: must end at 1 */
    lf_result last_error;
};

static int check(lf_result r, const char *what) {
    if (r == LF_RESULT_OK) return 0;
    char msg[256];
    lf_last_error_message(msg, sizeof msg);
    fprintf(stderr, "%s: %s: %s\n", what, lf_result_name(r), msg);
    return 1;
}

/* Entries of /proc/self/fd, minus the one opendir itself holds; -1 if unreadable. */
static long open_fds(void) {
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL) return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
    closedir(dir);
    return n - 1;
}

/* VmRSS in KiB from /proc/self/status; -1 if unreadable. */
static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL) return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0) kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The session's userdata: freed by on_userdata_free. */
struct handle {
    struct soak *s;
};

static void on_event(void *userdata, const lf_event *ev) {
    struct soak *s = ((struct handle *)userdata)->s;
    if (s->freed) {           /* must never happen: lf_session_free has returned */
        s->after_free++;
        return;
    }
    lf_kind kind = lf_event_kind(ev);
    if (kind == LF_KIND_ERROR) {
        s->errors++;
        s->last_error = lf_event_result(ev);
    } else if (kind == LF_KIND_CLOSE) {
        s->closes++;
    } else if (kind == LF_KIND_STATE && lf_event_state(ev) == LF_STATE_OPEN) {
        long reconnects = s->opens++;  /* the first open is not a reconnect */
        if (reconnects == FD_CHECK_AT) {
            s->fds_ref = open_fds();
            s->rss_ref = rss_kib();
        }
        if (reconnects == s->wanted) {
            s->fds_last = open_fds();
            s->rss_last = rss_kib();
        }
    }
}

static void on_userdata_free(void *userdata) {
    struct handle *h = userdata;
    h->s->userdata_frees++;
    free(h);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL [RECONNECTS [LIMIT_S]]\n", argv[0]);
        return 2;
    }
    struct soak s;
    memset(&s, 0, sizeof s);
    s.wanted = argc > 2 ? atol(argv[2]) : 1000;
    double limit_s = argc > 3 ? atof(argv[3]) : 600.0;
    if (s.wanted <= FD_CHECK_AT || limit_s <= 0) {
        fprintf(stderr, "RECONNECTS must be above %d, LIMIT_S positive\n", FD_CHECK_AT);
        return 2;
    }
    s.fds_ref = s.fds_last = s.rss_ref = s.rss_last = -1;
    long fds_start = open_fds(), rss_start = rss_kib();
    lf_config *cfg = NULL;
    lf_session *session = NULL;
    lf_loop *loop = NULL;
    int failed = 1;

    if (check(lf_loop_new(&loop), "lf_loop_new")) goto out;
    if (check(lf_config_new(&cfg), "lf_config_new")) goto out;
    if (check(lf_config_set_url(cfg, argv[1]), "lf_config_set_url")) goto out;
    if (check(lf_config_set_reconnect(cfg, 1, 5, 0), "lf_config_set_reconnect")) goto out;
    struct handle *h = malloc(sizeof *h);
    if (h == NULL) goto out;
    h->s = &s;
    if (check(lf_session_new(loop, cfg, on_event, h, on_userdata_free, &session),
              "lf_session_new")) {
        free(h);  /* on failure the caller keeps the userdata */
        goto out;
    }

    double started = now_s(), deadline = started + limit_s;
    /* Turn until the last reconnect has opened (or the session ended for good). */
    while (s.opens <= s.wanted && lf_session_state(session) != LF_STATE_CLOSED) {
        if (now_s() > deadline) {
            fprintf(stderr, "only %ld reconnects within %.0f s\n", s.opens - 1, limit_s);
            goto out;
        }
        if (check(lf_loop_run_once(loop, 100), "lf_loop_run_once")) goto out;
    }
    double elapsed = now_s() - started;
    long reconnects = s.opens > 0 ? s.opens - 1 : 0;

    /* Free the session between two turns, then keep turning: nothing may reach the callback. */
    lf_session_free(session);
    session = NULL;
    s.freed = 1;
    double quiet_until = now_s() + AFTER_FREE_MS / 1000.0;
    while (now_s() < quiet_until)
        if (check(lf_loop_run_once(loop, 10), "lf_loop_run_once")) goto out;
    lf_loop_free(loop);
    loop = NULL;
    long fds_end = open_fds(), rss_end = rss_kib();

    printf("reconnects %ld in %.2f s (%.1f/s); %ld close events, %ld errors",
           reconnects, elapsed, reconnects / (elapsed > 0 ? elapsed : 1), s.closes, s.errors);
    if (s.errors > 0) printf(" (last %s)", lf_result_name(s.last_error));
    printf("\nfds: %ld at start, %ld at reconnect %d, %ld at reconnect %ld, "
           "%ld after lf_loop_free\n",
           fds_start, s.fds_ref, FD_CHECK_AT, s.fds_last, reconnects, fds_end);
    printf("VmRSS KiB: %ld at start, %ld at reconnect %d, %ld at reconnect %ld, %ld at the end\n",
           rss_start, s.rss_ref, FD_CHECK_AT, s.rss_last, reconnects, rss_end);
    printf("callbacks after lf_session_free: %ld; userdata_free calls: %d\n",
           s.after_free, s.userdata_frees);

    failed = 0;
    if (reconnects != s.wanted) {
        fprintf(stderr, "FAIL: %ld reconnects, wanted %ld\n", reconnects, s.wanted);
        failed = 1;
    }
    if (s.fds_ref < 0 || s.fds_last != s.fds_ref) {
        fprintf(stderr, "FAIL: descriptors grew from %ld to %ld\n", s.fds_ref, s.fds_last);
        failed = 1;
    }
    if (fds_end != fds_start) {
        fprintf(stderr, "FAIL: %ld descriptors after lf_loop_free, %ld before lf_loop_new\n",
                fds_end, fds_start);
        failed = 1;
    }
    if (s.after_free != 0) {
        fprintf(stderr, "FAIL: %ld callbacks after lf_session_free returned\n", s.after_free);
        failed = 1;
    }
    if (s.userdata_frees != 1) {
        fprintf(stderr, "FAIL: userdata_free ran %d times\n", s.userdata_frees);
        failed = 1;
    }
    if (!failed) printf("ok\n");

out:
    lf_session_free(session);
    lf_loop_free(loop);
    lf_config_free(cfg);
    return failed;
}
