/*
 * sio_recv.c: Socket.IO benchmark client for livefeed, written against include/livefeed.h only.
 *
 *   sio_recv URL N [json]
 *
 * Opens one Socket.IO session (LF_PROTOCOL_SOCKET_IO, default options: WebSocket transport,
 * Engine.IO version from the server's open packet) to bench/sio_flood.js, which streams N
 * events "tick" on connection and then "done". Counts the LF_KIND_EVENT events whose topic is
 * "tick", touching every payload (the JSON array of the arguments: its length and first byte),
 * and times the first to the N-th with CLOCK_MONOTONIC; CPU time over the same interval comes
 * from the process CPU clock. Then waits for "done" and checks the server's count.
 *
 * With `json`, every event is also read through the library's JSON accessor
 * (lf_event_json_number "/0/seq", which parses the payload): closer to what socket.io-client
 * does for every event (it always parses), and the checksum then covers every "seq".
 *
 * Results go to stdout as one line of key=value pairs (parsed by scripts/bench.sh), including
 * the server's own figures from the "done" event; failures go to stderr with a non-zero exit
 * status. Every wait is bounded.
 *
 * Build (scripts/bench.sh does this):
 *   cc -std=c11 -O2 -Iinclude bench/sio_recv.c -o build/bench-sio-recv \
 *      target/release/liblivefeed.a -lssl -lcrypto -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
 */
#define _POSIX_C_SOURCE 200809L

#include "livefeed.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Upper bound for the whole run (connect, stream, "done"). */
#define DEADLINE_S 60.0

#define BENCH_NAME "sio_recv"
#include "common.h"

static int topic_is(lf_str topic, const char *name) {
    size_t len = strlen(name);
    return topic.len == len && memcmp(topic.data, name, len) == 0;
}

typedef struct {
    lf_loop *lp;
    int json; /* read "/0/seq" of every event through lf_event_json_number */
    uint64_t target;
    uint64_t count;
    uint64_t bytes;    /* payload bytes of events 2..N (the timed interval) */
    uint64_t checksum; /* first payload bytes, or the sum of "seq" with `json` */
    double t_first, t_last;
    double cpu_first, cpu_last;
    double server_count, server_seconds, server_cpu_seconds;
    int done;
    int failed;
} state;

static void on_event(void *userdata, const lf_event *ev) {
    state *s = userdata;
    switch (lf_event_kind(ev)) {
    case LF_KIND_EVENT: {
        lf_str topic = lf_event_topic(ev);
        if (topic_is(topic, "tick")) {
            lf_str text = lf_event_text(ev);
            if (s->count == 0) {
                s->t_first = now_s();
                s->cpu_first = cpu_s();
            } else {
                s->bytes += text.len;
            }
            s->count++;
            if (s->json) {
                double seq = 0;
                if (lf_event_json_number(ev, "/0/seq", &seq) != LF_RESULT_OK) {
                    fprintf(stderr, "sio_recv: event %" PRIu64 " has no /0/seq: %.*s\n", s->count,
                            (int)text.len, text.data);
                    s->failed = 1;
                    lf_loop_stop(s->lp);
                    return;
                }
                s->checksum += (uint64_t)seq;
            } else if (text.len > 0) {
                s->checksum += (unsigned char)text.data[0];
            }
            if (s->count == s->target) {
                s->t_last = now_s();
                s->cpu_last = cpu_s();
            }
        } else if (topic_is(topic, "done")) {
            /* After the timed interval: parsing here costs nothing that is measured. */
            if (lf_event_json_number(ev, "/0/count", &s->server_count) != LF_RESULT_OK ||
                lf_event_json_number(ev, "/0/seconds", &s->server_seconds) != LF_RESULT_OK ||
                lf_event_json_number(ev, "/0/cpu_seconds", &s->server_cpu_seconds) != LF_RESULT_OK) {
                lf_str text = lf_event_text(ev);
                fprintf(stderr, "sio_recv: unexpected \"done\" payload: %.*s\n", (int)text.len,
                        text.data);
                s->failed = 1;
            } else {
                s->done = 1;
            }
            lf_loop_stop(s->lp);
        }
        break;
    }
    case LF_KIND_ERROR:
    case LF_KIND_CLOSE:
        if (!s->done && !s->failed) {
            lf_str t = lf_event_text(ev);
            if (lf_event_kind(ev) == LF_KIND_ERROR) {
                fprintf(stderr, "sio_recv: session error %s: %.*s\n",
                        lf_result_name(lf_event_result(ev)), (int)t.len, t.data);
            } else {
                fprintf(stderr, "sio_recv: session closed (%u) %.*s\n",
                        (unsigned)lf_event_close_code(ev), (int)t.len, t.data);
            }
            s->failed = 1;
            lf_loop_stop(s->lp);
        }
        break;
    default:
        break;
    }
}

static int run(const char *url, uint64_t n, int json) {
    lf_loop *lp = NULL;
    lf_config *cfg = NULL;
    lf_session *session = NULL;
    state s;
    memset(&s, 0, sizeof s);
    s.target = n;
    s.json = json;
    CHECK(lf_loop_new(&lp));
    s.lp = lp;
    CHECK(lf_config_new(&cfg));
    CHECK(lf_config_set_url(cfg, url));
    CHECK(lf_config_set_protocol(cfg, LF_PROTOCOL_SOCKET_IO));
    CHECK(lf_session_new(lp, cfg, on_event, &s, NULL, &session));
    lf_config_free(cfg);

    if (run_until(lp, &s.done, &s.failed, DEADLINE_S) != 0) {
        return 1;
    }
    lf_session_free(session);
    lf_loop_free(lp);
    if (!s.done) {
        fprintf(stderr, "sio_recv: got %" PRIu64 " of %" PRIu64 " events%s\n", s.count, n,
                s.failed ? "" : " and no \"done\" before the deadline");
        return 1;
    }
    if (s.count != n || s.server_count != (double)n) {
        fprintf(stderr, "sio_recv: got %" PRIu64 " events, expected %" PRIu64 " (server sent %.0f)\n",
                s.count, n, s.server_count);
        return 1;
    }
    if (json && s.checksum != n * (n - 1) / 2) {
        fprintf(stderr, "sio_recv: seq checksum %" PRIu64 ", expected %" PRIu64 "\n", s.checksum,
                n * (n - 1) / 2);
        return 1;
    }
    double secs = s.t_last - s.t_first;
    if (secs <= 0) {
        fprintf(stderr, "sio_recv: too few events to time\n");
        return 1;
    }
    double cpu = s.cpu_last - s.cpu_first;
    printf("mode=%s events=%" PRIu64 " seconds=%.4f events_per_s=%.0f cpu_seconds=%.4f "
           "ns_cpu_per_event=%.1f payload_bytes=%" PRIu64 " server_seconds=%.4f "
           "server_cpu_seconds=%.4f checksum=%" PRIu64 "\n",
           json ? "livefeed-json" : "livefeed", n, secs, (double)(n - 1) / secs, cpu,
           cpu * 1e9 / (double)(n - 1), s.bytes, s.server_seconds, s.server_cpu_seconds, s.checksum);
    return 0;
}

static int usage(void) {
    fprintf(stderr, "usage: sio_recv URL N [json]   (N >= 2)\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) {
        return usage();
    }
    char *end = NULL;
    unsigned long long n = strtoull(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0' || n < 2) {
        return usage();
    }
    int json = 0;
    if (argc == 4) {
        if (strcmp(argv[3], "json") != 0) {
            return usage();
        }
        json = 1;
    }
    return run(argv[1], (uint64_t)n, json);
}
