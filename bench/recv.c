/*
 * recv.c: benchmark client for livefeed, written against include/livefeed.h only.
 *
 *   recv throughput URL N [READ_BUFFER]
 *       one session; counts N messages (touching every payload) and times the first
 *       message to the N-th with CLOCK_MONOTONIC
 *       (for 1 MiB messages as well: the payload rate is the MB/s figure)
 *   recv atmosphere URL N
 *       the same with LF_PROTOCOL_ATMOSPHERE (examples/flood_server.rs --atmosphere: the
 *       handshake frame, then one message per frame)
 *   recv echo URL N [WARMUP]
 *       sends a 150-byte JSON text message (lf_session_send_text), waits for its echo (the
 *       LF_KIND_MESSAGE callback), N times after WARMUP (default 1000) untimed round trips;
 *       percentiles of the round-trip time, timed from the send call to the callback
 *   recv memory URL SESSIONS [READ_BUFFER]
 *       opens SESSIONS sessions on one loop (after one warm-up session), waits until all are
 *       open, and reports the time that took (TCP connect + WebSocket handshake of all of
 *       them) and the VmRSS growth per idle session. Raises RLIMIT_NOFILE to its hard limit
 *       first (one descriptor per session).
 *
 * READ_BUFFER, if given, sets LF_LIMIT_READ_BUFFER (bytes); otherwise the default applies.
 *
 * Results go to stdout as one line of key=value pairs (parsed by scripts/bench.sh);
 * failures go to stderr with a non-zero exit status. Every wait is bounded.
 *
 * Build (scripts/bench.sh does this):
 *   cc -std=c11 -O2 -Iinclude bench/recv.c -o build/bench-recv \
 *      target/release/liblivefeed.a -lssl -lcrypto -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
 */
#define _POSIX_C_SOURCE 200809L

#include "livefeed.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Upper bounds for every phase, so a broken server cannot hang the benchmark. */
#define THROUGHPUT_DEADLINE_S 60.0
#define OPEN_DEADLINE_S 60.0

#define BENCH_NAME "recv"
#include "common.h"

/* LF_LIMIT_READ_BUFFER to set, 0 for the library default. */
static size_t read_buffer = 0;
/* The session protocol. */
static lf_protocol protocol = LF_PROTOCOL_WEB_SOCKET;

static lf_config *make_config(const char *url) {
    lf_config *cfg = NULL;
    lf_result r = lf_config_new(&cfg);
    if (r != LF_RESULT_OK) {
        fail_call("lf_config_new", r);
        return NULL;
    }
    r = lf_config_set_url(cfg, url);
    if (r != LF_RESULT_OK) {
        fail_call("lf_config_set_url", r);
        lf_config_free(cfg);
        return NULL;
    }
    if (protocol != LF_PROTOCOL_WEB_SOCKET) {
        r = lf_config_set_protocol(cfg, protocol);
        if (r != LF_RESULT_OK) {
            fail_call("lf_config_set_protocol", r);
            lf_config_free(cfg);
            return NULL;
        }
    }
    if (read_buffer > 0) {
        r = lf_config_set_limit(cfg, LF_LIMIT_READ_BUFFER, read_buffer);
        if (r != LF_RESULT_OK) {
            fail_call("lf_config_set_limit", r);
            lf_config_free(cfg);
            return NULL;
        }
    }
    return cfg;
}

/* Reports the first error or unexpected close of a session to stderr. */
static void report_end(const lf_event *ev) {
    lf_str t = lf_event_text(ev);
    if (lf_event_kind(ev) == LF_KIND_ERROR) {
        fprintf(stderr, "recv: session error %s: %.*s\n", lf_result_name(lf_event_result(ev)), (int)t.len,
                t.data);
    } else if (lf_event_kind(ev) == LF_KIND_CLOSE) {
        fprintf(stderr, "recv: session closed (%u) %.*s\n", (unsigned)lf_event_close_code(ev), (int)t.len,
                t.data);
    }
}

/* ---- throughput ----------------------------------------------------------------------- */

typedef struct {
    lf_loop *lp;
    uint64_t target;
    uint64_t count;
    uint64_t bytes;    /* payload bytes of messages 2..N (the timed interval) */
    uint64_t checksum; /* sum of first bytes: makes the callback read every payload */
    double t_first;
    double t_last;
    double cpu_first;
    double cpu_last;
    int done;
    int failed;
} throughput_state;

static void throughput_cb(void *userdata, const lf_event *ev) {
    throughput_state *s = userdata;
    switch (lf_event_kind(ev)) {
    case LF_KIND_MESSAGE: {
        lf_str text = lf_event_text(ev);
        if (s->count == 0) {
            s->t_first = now_s();
            s->cpu_first = cpu_s();
        } else {
            s->bytes += text.len;
        }
        s->count++;
        if (text.len > 0) {
            s->checksum += (unsigned char)text.data[0];
        }
        if (s->count == s->target) {
            s->t_last = now_s();
            s->cpu_last = cpu_s();
            s->done = 1;
            lf_loop_stop(s->lp);
        }
        break;
    }
    case LF_KIND_ERROR:
    case LF_KIND_CLOSE:
        if (!s->done && !s->failed) {
            report_end(ev);
            s->failed = 1;
            lf_loop_stop(s->lp);
        }
        break;
    default:
        break;
    }
}

static int run_throughput(const char *url, uint64_t n) {
    lf_loop *lp = NULL;
    lf_session *session = NULL;
    throughput_state s;
    memset(&s, 0, sizeof s);
    s.target = n;
    CHECK(lf_loop_new(&lp));
    s.lp = lp;
    lf_config *cfg = make_config(url);
    if (cfg == NULL) {
        return 1;
    }
    CHECK(lf_session_new(lp, cfg, throughput_cb, &s, NULL, &session));
    lf_config_free(cfg);

    if (run_until(lp, &s.done, &s.failed, THROUGHPUT_DEADLINE_S) != 0) {
        return 1;
    }
    lf_session_free(session);
    lf_loop_free(lp);
    if (!s.done) {
        fprintf(stderr, "recv: got %" PRIu64 " of %" PRIu64 " messages%s\n", s.count, n,
                s.failed ? "" : " before the deadline");
        return 1;
    }
    double secs = s.t_last - s.t_first;
    if (n < 2 || secs <= 0) {
        fprintf(stderr, "recv: too few messages to time\n");
        return 1;
    }
    /* CPU time over the same interval: what the receiver itself spent, independent of how
     * fast the sender (sharing the machine) could feed it. */
    double cpu = s.cpu_last - s.cpu_first;
    printf("mode=throughput messages=%" PRIu64 " seconds=%.4f msgs_per_s=%.0f mb_per_s=%.1f "
           "cpu_seconds=%.4f ns_cpu_per_msg=%.1f payload_bytes=%" PRIu64 " checksum=%" PRIu64 "\n",
           n, secs, (double)(n - 1) / secs, (double)s.bytes / secs / 1e6, cpu,
           cpu * 1e9 / (double)(n - 1), s.bytes, s.checksum);
    return 0;
}

/* ---- echo latency ---------------------------------------------------------------------- */

/* The 150-byte JSON text of the echo test (the same as the other clients send). */
static const char ECHO_MESSAGE[] =
    "{\"sensor\":\"greenhouse-07\",\"seq\":0,\"temperature\":21.50,\"humidity\":55.5,"
    "\"pressure\":1013.25,\"ts\":1732400000000,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
#define ECHO_LEN (sizeof ECHO_MESSAGE - 1)

typedef struct {
    lf_loop *lp;
    lf_session *session;
    uint64_t warmup, target, rounds;
    double t_sent;
    double *rtts; /* microseconds */
    int done;
    int failed;
} echo_state;

static void echo_send(echo_state *s) {
    s->t_sent = now_s();
    lf_result r = lf_session_send_text(s->session, ECHO_MESSAGE, ECHO_LEN);
    if (r != LF_RESULT_OK) {
        fail_call("lf_session_send_text", r);
        s->failed = 1;
        lf_loop_stop(s->lp);
    }
}

static void echo_cb(void *userdata, const lf_event *ev) {
    echo_state *s = userdata;
    switch (lf_event_kind(ev)) {
    case LF_KIND_STATE:
        if (lf_event_state(ev) == LF_STATE_OPEN) {
            echo_send(s);
        }
        break;
    case LF_KIND_MESSAGE: {
        double t = now_s();
        if (lf_event_text(ev).len != ECHO_LEN) {
            break;
        }
        if (s->rounds >= s->warmup) {
            s->rtts[s->rounds - s->warmup] = (t - s->t_sent) * 1e6;
        }
        s->rounds++;
        if (s->rounds == s->warmup + s->target) {
            s->done = 1;
            lf_loop_stop(s->lp);
        } else {
            echo_send(s);
        }
        break;
    }
    case LF_KIND_ERROR:
    case LF_KIND_CLOSE:
        if (!s->done && !s->failed) {
            report_end(ev);
            s->failed = 1;
            lf_loop_stop(s->lp);
        }
        break;
    default:
        break;
    }
}

static int run_echo(const char *url, uint64_t n, uint64_t warmup) {
    echo_state s;
    memset(&s, 0, sizeof s);
    s.target = n;
    s.warmup = warmup;
    s.rtts = calloc(n, sizeof *s.rtts);
    if (s.rtts == NULL) {
        fprintf(stderr, "recv: out of memory\n");
        return 1;
    }
    CHECK(lf_loop_new(&s.lp));
    lf_config *cfg = make_config(url);
    if (cfg == NULL) {
        return 1;
    }
    CHECK(lf_session_new(s.lp, cfg, echo_cb, &s, NULL, &s.session));
    lf_config_free(cfg);
    if (run_until(s.lp, &s.done, &s.failed, THROUGHPUT_DEADLINE_S) != 0) {
        return 1;
    }
    lf_session_free(s.session);
    lf_loop_free(s.lp);
    if (!s.done) {
        fprintf(stderr, "recv: %" PRIu64 " of %" PRIu64 " round trips\n", s.rounds, n + warmup);
        return 1;
    }
    qsort(s.rtts, n, sizeof *s.rtts, cmp_double);
    double sum = 0;
    for (uint64_t k = 0; k < n; k++) {
        sum += s.rtts[k];
    }
#define PCT(p) s.rtts[(n * (p) / 100) < n ? (n * (p) / 100) : n - 1]
    printf("mode=echo roundtrips=%" PRIu64 " p50_us=%.1f p90_us=%.1f p99_us=%.1f mean_us=%.1f "
           "max_us=%.1f\n",
           n, PCT(50), PCT(90), PCT(99), sum / (double)n, s.rtts[n - 1]);
    free(s.rtts);
    return 0;
}

/* ---- memory --------------------------------------------------------------------------- */

typedef struct {
    size_t opened;
    size_t failed;
} memory_state;

static void memory_cb(void *userdata, const lf_event *ev) {
    memory_state *s = userdata;
    lf_kind kind = lf_event_kind(ev);
    if (kind == LF_KIND_STATE && lf_event_state(ev) == LF_STATE_OPEN) {
        s->opened++;
    } else if (kind == LF_KIND_ERROR || kind == LF_KIND_CLOSE) {
        if (s->failed == 0) {
            report_end(ev);
        }
        s->failed++;
    }
}

/* Drives the loop until `want` sessions are open, one failed, or the deadline passed. */
static int await_open(lf_loop *lp, const memory_state *s, size_t want) {
    double deadline = now_s() + OPEN_DEADLINE_S;
    while (s->opened < want && s->failed == 0 && now_s() < deadline) {
        lf_result r = lf_loop_run_once(lp, TURN_MS);
        if (r != LF_RESULT_OK) {
            fail_call("lf_loop_run_once", r);
            return 1;
        }
    }
    if (s->opened < want) {
        fprintf(stderr, "recv: %zu of %zu sessions open (%zu failed)\n", s->opened, want, s->failed);
        return 1;
    }
    return 0;
}

static int run_memory(const char *url, size_t n) {
    raise_fd_limit(BENCH_NAME);
    lf_loop *lp = NULL;
    memory_state s = {0, 0};
    CHECK(lf_loop_new(&lp));
    lf_config *cfg = make_config(url);
    if (cfg == NULL) {
        return 1;
    }
    lf_session **sessions = calloc(n + 1, sizeof *sessions);
    if (sessions == NULL) {
        fprintf(stderr, "recv: out of memory\n");
        return 1;
    }
    /* One warm-up session first, so one-time costs (loop buffers, first-use allocations in
     * the library and libc) are not counted against the idle sessions. */
    CHECK(lf_session_new(lp, cfg, memory_cb, &s, NULL, &sessions[0]));
    if (await_open(lp, &s, 1) != 0) {
        return 1;
    }
    long before = vm_rss_kib();
    double t0 = now_s();
    for (size_t i = 1; i <= n; i++) {
        CHECK(lf_session_new(lp, cfg, memory_cb, &s, NULL, &sessions[i]));
    }
    if (await_open(lp, &s, n + 1) != 0) {
        return 1;
    }
    double open_secs = now_s() - t0;
    long after = vm_rss_kib();
    long threads = proc_status("Threads");
    lf_config_free(cfg);

    for (size_t i = 0; i <= n; i++) {
        lf_session_free(sessions[i]);
    }
    lf_loop_free(lp);
    free(sessions);

    if (before < 0 || after < 0) {
        fprintf(stderr, "recv: cannot read VmRSS from /proc/self/status\n");
        return 1;
    }
    printf("mode=memory sessions=%zu open=%zu open_seconds=%.3f rss_before_kib=%ld "
           "rss_after_kib=%ld kib_per_session=%.2f threads=%ld\n",
           n, s.opened - 1, open_secs, before, after, (double)(after - before) / (double)n, threads);
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: recv throughput URL N [READ_BUFFER]\n"
                    "       recv atmosphere URL N\n"
                    "       recv echo URL N [WARMUP]\n"
                    "       recv memory URL SESSIONS [READ_BUFFER]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) {
        return usage();
    }
    char *end = NULL;
    unsigned long long n = strtoull(argv[3], &end, 10);
    if (end == argv[3] || *end != '\0' || n == 0) {
        return usage();
    }
    if (argc == 5) {
        unsigned long long rb = strtoull(argv[4], &end, 10);
        if (end == argv[4] || *end != '\0' || rb == 0) {
            return usage();
        }
        read_buffer = (size_t)rb;
    }
    if (strcmp(argv[1], "echo") == 0) {
        uint64_t warmup = argc == 5 ? (uint64_t)read_buffer : 1000;
        read_buffer = 0;
        return run_echo(argv[2], (uint64_t)n, warmup);
    }
    if (strcmp(argv[1], "atmosphere") == 0 && argc == 4 && n >= 2) {
        protocol = LF_PROTOCOL_ATMOSPHERE;
        return run_throughput(argv[2], (uint64_t)n);
    }
    if (strcmp(argv[1], "throughput") == 0) {
        return run_throughput(argv[2], (uint64_t)n);
    }
    if (strcmp(argv[1], "memory") == 0) {
        return run_memory(argv[2], (size_t)n);
    }
    return usage();
}
