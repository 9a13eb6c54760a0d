/*
 * lws_recv.c: the libwebsockets peer of the benchmarks (the embedded C reference), written
 * against Debian's libwebsockets-dev (4.1.6 on bookworm) the way its docs and
 * minimal-examples/ws-client recommend: one lws_context with the default (poll) event loop,
 * CONTEXT_PORT_NO_LISTEN, a protocols table, lws_client_connect_via_info, data in
 * LWS_CALLBACK_CLIENT_RECEIVE, writes only from LWS_CALLBACK_CLIENT_WRITEABLE, lws_service
 * driving everything on this thread. Logging is limited to errors; the library is Debian's
 * release build.
 *
 *   lws_recv throughput URL N [RX]
 *       one connection; counts N messages in the RECEIVE callback (touching every payload,
 *       like bench/recv.c) and times the first message to the N-th. lws hands a message
 *       over in pieces of at most the protocol's rx buffer (RX bytes; 0 or absent: the
 *       default, pt_serv_buf_size = 4096); pieces of a message larger than that are copied
 *       into one buffer, as an application needs the whole message, and the message counts
 *       when its last piece arrives.
 *   lws_recv echo URL N [WARMUP]
 *       sends a 150-byte JSON text message, waits for its echo, N times after WARMUP
 *       (default 1000) untimed round trips; percentiles of the round-trip time. Each round
 *       trip is timed from the moment the program wants to send (lws_callback_on_writable)
 *       to the RECEIVE callback of the echo.
 *   lws_recv memory URL SESSIONS [RX]
 *       opens SESSIONS connections on one context (after one warm-up connection), waits
 *       until all are established, reports VmRSS growth per connection and the time to
 *       open them all (connect + WebSocket handshake). Raises RLIMIT_NOFILE to its hard
 *       limit first.
 *
 * Results go to stdout as one line of key=value pairs (the same keys as bench/recv.c,
 * parsed by scripts/bench.sh); failures go to stderr with a non-zero exit status. Every
 * wait is bounded.
 *
 * Build (scripts/bench.sh does this):
 *   cc -std=gnu11 -O2 bench/lws_recv.c -o build/bench-lws-recv -lwebsockets
 */
#define _GNU_SOURCE

#include <libwebsockets.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "process.h"

#define DEADLINE_S 60.0

enum mode { THROUGHPUT, ECHO, MEMORY };

/* The 150-byte JSON text of the echo test (the same as the other clients send). */
static const char ECHO_MESSAGE[] =
    "{\"sensor\":\"greenhouse-07\",\"seq\":0,\"temperature\":21.50,\"humidity\":55.5,"
    "\"pressure\":1013.25,\"ts\":1732400000000,\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}";
#define ECHO_LEN (sizeof ECHO_MESSAGE - 1)

typedef struct {
    enum mode mode;
    uint64_t target;
    /* throughput */
    uint64_t count, bytes, checksum;
    double t_first, t_last, cpu_first, cpu_last;
    unsigned char *asm_buf; /* reassembly of messages that arrive in pieces */
    size_t asm_len, asm_cap;
    uint64_t pieces;
    /* echo */
    uint64_t warmup, rounds;
    double t_sent;
    double *rtts;
    unsigned char out[LWS_PRE + ECHO_LEN];
    /* memory */
    size_t opened, failed;
    int done;
    int error;
    double deadline;
} state;

static state S;

static void message(const unsigned char *data, size_t len) {
    if (S.count == 0) {
        S.t_first = now_s();
        S.cpu_first = cpu_s();
    } else {
        S.bytes += len;
    }
    S.count++;
    if (len > 0) {
        S.checksum += data[0];
    }
    if (S.count == S.target) {
        S.t_last = now_s();
        S.cpu_last = cpu_s();
        S.done = 1;
    }
}

static int append(const void *in, size_t len) {
    if (S.asm_len + len > S.asm_cap) {
        size_t cap = S.asm_cap ? S.asm_cap : 65536;
        while (cap < S.asm_len + len) {
            cap *= 2;
        }
        unsigned char *p = realloc(S.asm_buf, cap);
        if (p == NULL) {
            return -1;
        }
        S.asm_buf = p;
        S.asm_cap = cap;
    }
    memcpy(S.asm_buf + S.asm_len, in, len);
    S.asm_len += len;
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len) {
    (void)user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (S.failed++ == 0) {
            fprintf(stderr, "lws_recv: connection error: %s\n", in ? (const char *)in : "(null)");
        }
        if (S.mode != MEMORY) {
            S.error = 1;
        }
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        S.opened++;
        if (S.mode == ECHO) {
            S.t_sent = now_s();
            lws_callback_on_writable(wsi);
        }
        break;
    case LWS_CALLBACK_CLIENT_RECEIVE: {
        S.pieces++;
        int final = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
        if (S.mode == THROUGHPUT) {
            if (final && S.asm_len == 0) {
                message(in, len);
            } else {
                if (append(in, len) != 0) {
                    S.error = 1;
                    return -1;
                }
                if (final) {
                    message(S.asm_buf, S.asm_len);
                    S.asm_len = 0;
                }
            }
        } else if (S.mode == ECHO && final) {
            double t = now_s();
            if (S.rounds >= S.warmup) {
                S.rtts[S.rounds - S.warmup] = (t - S.t_sent) * 1e6;
            }
            S.rounds++;
            if (S.rounds == S.warmup + S.target) {
                S.done = 1;
            } else {
                S.t_sent = now_s();
                lws_callback_on_writable(wsi);
            }
        }
        break;
    }
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (S.mode == ECHO && !S.done) {
            /* lws masks the payload in place: copy it in for every write. */
            memcpy(S.out + LWS_PRE, ECHO_MESSAGE, ECHO_LEN);
            if (lws_write(wsi, S.out + LWS_PRE, ECHO_LEN, LWS_WRITE_TEXT) < (int)ECHO_LEN) {
                S.error = 1;
                return -1;
            }
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (!S.done) {
            if (S.failed++ == 0) {
                fprintf(stderr, "lws_recv: connection closed\n");
            }
            if (S.mode != MEMORY) {
                S.error = 1;
            }
        }
        break;
    default:
        break;
    }
    return 0;
}

static struct lws_protocols protocols[] = {
    {"bench", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Ticks every 100 ms so the service loop can check its deadline. */
static lws_sorted_usec_list_t tick_sul;
static struct lws_context *ctx;
static void tick(lws_sorted_usec_list_t *sul) {
    if (now_s() > S.deadline) {
        S.error = 1;
    }
    lws_sul_schedule(ctx, 0, sul, tick, 100 * LWS_US_PER_MS);
}

static char host[256], path[512];
static int port;

static int parse_url(const char *url) {
    const char *prot = NULL, *address = NULL, *p = NULL;
    char *copy = strdup(url);
    if (copy == NULL || lws_parse_uri(copy, &prot, &address, &port, &p) != 0 ||
        strcmp(prot, "ws") != 0) {
        fprintf(stderr, "lws_recv: not a ws:// URL: %s\n", url);
        return -1;
    }
    snprintf(host, sizeof host, "%s", address);
    /* lws_parse_uri drops the leading '/'. */
    snprintf(path, sizeof path, "/%s", p);
    free(copy);
    return 0;
}

static struct lws *connect_one(void) {
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = ctx;
    i.address = host;
    i.port = port;
    i.path = path;
    i.host = host;
    i.origin = host;
    i.ssl_connection = 0;
    i.local_protocol_name = "bench";
    return lws_client_connect_via_info(&i);
}

static int service_until(int (*cond)(void)) {
    while (!cond() && !S.error) {
        if (lws_service(ctx, 0) < 0) {
            fprintf(stderr, "lws_recv: lws_service failed\n");
            return 1;
        }
    }
    return S.error;
}

static int is_done(void) { return S.done; }
static size_t want_open;
static int all_open(void) { return S.opened + S.failed >= want_open; }

static int usage(void) {
    fprintf(stderr, "usage: lws_recv throughput URL N [RX]\n"
                    "       lws_recv echo URL N [WARMUP]\n"
                    "       lws_recv memory URL SESSIONS [RX]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) {
        return usage();
    }
    char *end = NULL;
    unsigned long long n = strtoull(argv[3], &end, 10);
    if (end == argv[3] || *end != '\0' || n < 1) {
        return usage();
    }
    unsigned long long extra = 0;
    if (argc == 5) {
        extra = strtoull(argv[4], &end, 10);
        if (end == argv[4] || *end != '\0') {
            return usage();
        }
    }
    memset(&S, 0, sizeof S);
    if (strcmp(argv[1], "throughput") == 0 && n >= 2) {
        S.mode = THROUGHPUT;
        protocols[0].rx_buffer_size = (size_t)extra;
    } else if (strcmp(argv[1], "echo") == 0) {
        S.mode = ECHO;
        S.warmup = argc == 5 ? extra : 1000;
        S.rtts = calloc(n, sizeof *S.rtts);
    } else if (strcmp(argv[1], "memory") == 0) {
        S.mode = MEMORY;
        protocols[0].rx_buffer_size = (size_t)extra;
    } else {
        return usage();
    }
    S.target = n;
    if (parse_url(argv[2]) != 0) {
        return 2;
    }
    if (S.mode == MEMORY) {
        /* One descriptor per connection: lws sizes its fd tables from this limit. */
        raise_fd_limit("lws_recv");
    }

    lws_set_log_level(LLL_ERR, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.gid = -1;
    info.uid = -1;
    ctx = lws_create_context(&info);
    if (ctx == NULL) {
        fprintf(stderr, "lws_recv: lws_create_context failed\n");
        return 1;
    }
    S.deadline = now_s() + DEADLINE_S;
    lws_sul_schedule(ctx, 0, &tick_sul, tick, 100 * LWS_US_PER_MS);

    int rc = 0;
    if (S.mode == THROUGHPUT || S.mode == ECHO) {
        if (connect_one() == NULL) {
            fprintf(stderr, "lws_recv: lws_client_connect_via_info failed\n");
            return 1;
        }
        if (service_until(is_done) != 0 || !S.done) {
            fprintf(stderr, "lws_recv: got %" PRIu64 " of %" PRIu64 " %s\n",
                    S.mode == ECHO ? S.rounds : S.count, (uint64_t)n,
                    S.mode == ECHO ? "round trips" : "messages");
            return 1;
        }
        if (S.mode == THROUGHPUT) {
            double secs = S.t_last - S.t_first, cpu = S.cpu_last - S.cpu_first;
            printf("mode=throughput messages=%llu seconds=%.4f msgs_per_s=%.0f mb_per_s=%.1f "
                   "cpu_seconds=%.4f ns_cpu_per_msg=%.1f payload_bytes=%" PRIu64
                   " checksum=%" PRIu64 " pieces=%" PRIu64 "\n",
                   n, secs, (double)(n - 1) / secs, (double)S.bytes / secs / 1e6, cpu,
                   cpu * 1e9 / (double)(n - 1), S.bytes, S.checksum, S.pieces);
        } else {
            qsort(S.rtts, n, sizeof *S.rtts, cmp_double);
            double sum = 0;
            for (size_t k = 0; k < n; k++) {
                sum += S.rtts[k];
            }
#define PCT(p) S.rtts[(n * (p) / 100) < n ? (n * (p) / 100) : n - 1]
            printf("mode=echo roundtrips=%llu p50_us=%.1f p90_us=%.1f p99_us=%.1f mean_us=%.1f "
                   "max_us=%.1f\n",
                   n, PCT(50), PCT(90), PCT(99), sum / (double)n, S.rtts[n - 1]);
        }
    } else {
        /* Warm-up connection: one-time costs are not counted against the idle ones. */
        want_open = 1;
        if (connect_one() == NULL || service_until(all_open) != 0 || S.opened != 1) {
            fprintf(stderr, "lws_recv: the warm-up connection failed\n");
            return 1;
        }
        long before = vm_rss_kib();
        double t0 = now_s();
        want_open = n + 1;
        for (unsigned long long k = 0; k < n; k++) {
            if (connect_one() == NULL) {
                S.failed++;
            }
        }
        if (service_until(all_open) != 0 || S.opened != n + 1) {
            fprintf(stderr, "lws_recv: %zu of %llu connections open (%zu failed)\n",
                    S.opened - 1, n, S.failed);
            return 1;
        }
        double open_secs = now_s() - t0;
        long after = vm_rss_kib();
        long threads = proc_status("Threads");
        printf("mode=memory sessions=%llu open=%zu open_seconds=%.3f rss_before_kib=%ld "
               "rss_after_kib=%ld kib_per_session=%.2f threads=%ld\n",
               n, S.opened - 1, open_secs, before, after, (double)(after - before) / (double)n,
               threads);
    }
    S.done = 1; /* closing now is expected */
    lws_context_destroy(ctx);
    free(S.rtts);
    free(S.asm_buf);
    return rc;
}
