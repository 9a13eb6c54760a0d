/*
 * autobahn-client: drives the Autobahn|Testsuite fuzzing server through the public C API.
 *
 *   build/autobahn-client [URL [AGENT]]      defaults: ws://127.0.0.1:9001 livefeed
 *
 * A local conformance check, never part of CI (the suite is not on a registry): install the
 * Python 3 fork ricardo-valero/autobahn-testsuite in a venv (pip install
 * --ignore-requires-python, plus autobahn[twisted] and twisted[tls]), start
 * `wstest -m fuzzingserver -s spec.json` with url ws://127.0.0.1:9001 and exclude-cases
 * ["12.*", "13.*"] (permessage-deflate: tungstenite has none), then run this program.
 * It asks the server how many cases there are, runs each one (echoing every text and
 * binary message back unchanged until the server closes), then asks the server to write
 * its reports (reports/clients/index.json and one JSON/HTML file per case).
 *
 * One session at a time on one loop, driven by lf_loop_run on the main thread; the
 * callback stops the loop when the session reaches LF_STATE_CLOSED. Sends that meet
 * back-pressure wait in a FIFO until LF_KIND_WRITABLE, so the echo keeps message order.
 *
 * Environment: AUTOBAHN_LOG=1..5 prints library log records (error..trace) on stderr.
 */

#include <livefeed.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB ((size_t)1 << 20)

enum mode {
    MODE_COUNT, /* getCaseCount: one text message, the number of cases */
    MODE_INFO,  /* getCaseInfo: one JSON text message, {"id": ..., "description": ...} */
    MODE_ECHO,  /* runCase: echo everything back */
    MODE_WAIT   /* updateReports: just wait for the close */
};

/* A message waiting for send budget. */
struct pending {
    struct pending *next;
    int binary;
    size_t len;
    unsigned char data[];
};

/* Everything one session's callback needs (its userdata). */
struct run {
    lf_loop *loop;
    lf_session *session;
    enum mode mode;
    int closed;                   /* LF_STATE_CLOSED seen */
    long count;                   /* MODE_COUNT: the answer, -1 until known */
    char case_id[32];             /* MODE_INFO: the case id, e.g. "1.1.1" */
    unsigned long received;       /* data messages received */
    unsigned long echoed;         /* data messages accepted by lf_session_send_* */
    unsigned long dropped;        /* echoes refused because the session was closing */
    unsigned long backpressured;  /* sends that met LF_RESULT_BACKPRESSURE */
    struct pending *head, *tail;  /* echoes waiting for LF_KIND_WRITABLE */
    int got_close;
    uint16_t close_code;
    char close_reason[128];
    lf_result error;              /* first LF_KIND_ERROR, LF_RESULT_OK if none */
    char error_text[256];
};

static void copy_view(char *dst, size_t cap, const char *src, size_t len) {
    if (len >= cap) {
        len = cap - 1;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static lf_result send_message(const struct run *r, int binary, const unsigned char *data, size_t len) {
    if (binary) {
        return lf_session_send_binary(r->session, data, len);
    }
    return lf_session_send_text(r->session, (const char *)data, len);
}

static void report_send_failure(struct run *r, lf_result rc) {
    if (rc == LF_RESULT_CLOSED) {
        r->dropped++; /* the peer already started closing: nothing to echo into */
        return;
    }
    char msg[256];
    lf_last_error_message(msg, sizeof msg);
    fprintf(stderr, "  send failed: %s (%s)\n", lf_result_name(rc), msg);
    if (r->error == LF_RESULT_OK) {
        r->error = rc;
        copy_view(r->error_text, sizeof r->error_text, msg, strlen(msg));
    }
}

static void free_pending(struct run *r) {
    while (r->head != NULL) {
        struct pending *p = r->head;
        r->head = p->next;
        free(p);
    }
    r->tail = NULL;
}

static int enqueue(struct run *r, int binary, const unsigned char *data, size_t len) {
    struct pending *p = malloc(sizeof *p + len);
    if (p == NULL) {
        fprintf(stderr, "  out of memory queueing a %zu-byte echo\n", len);
        return -1;
    }
    p->next = NULL;
    p->binary = binary;
    p->len = len;
    if (len > 0) {
        memcpy(p->data, data, len);
    }
    if (r->tail != NULL) {
        r->tail->next = p;
    } else {
        r->head = p;
    }
    r->tail = p;
    return 0;
}

/* Sends queued echoes in order until the queue is empty or back-pressure returns. */
static void drain(struct run *r) {
    while (r->head != NULL) {
        struct pending *p = r->head;
        lf_result rc = send_message(r, p->binary, p->data, p->len);
        if (rc == LF_RESULT_BACKPRESSURE) {
            r->backpressured++;
            return;
        }
        if (rc == LF_RESULT_OK) {
            r->echoed++;
        } else {
            report_send_failure(r, rc);
        }
        r->head = p->next;
        if (r->head == NULL) {
            r->tail = NULL;
        }
        free(p);
    }
}

static void echo(struct run *r, int binary, const unsigned char *data, size_t len) {
    if (r->head == NULL) { /* nothing waits: try right away */
        lf_result rc = send_message(r, binary, data, len);
        if (rc == LF_RESULT_OK) {
            r->echoed++;
            return;
        }
        if (rc != LF_RESULT_BACKPRESSURE) {
            report_send_failure(r, rc);
            return;
        }
        r->backpressured++;
    }
    /* Back-pressure, or older echoes still wait: keep the order. */
    if (enqueue(r, binary, data, len) != 0) {
        lf_session_close(r->session, 1011, "client out of memory");
    }
}

static void on_message(struct run *r, const lf_event *ev, int binary) {
    lf_bytes data = lf_event_data(ev);
    r->received++;
    switch (r->mode) {
    case MODE_COUNT: {
        char text[32];
        char *end = NULL;
        copy_view(text, sizeof text, (const char *)data.data, data.len);
        long n = strtol(text, &end, 10);
        if (end != text && n >= 0) {
            r->count = n;
        }
        break;
    }
    case MODE_INFO: {
        lf_str id;
        if (lf_event_json_string(ev, "/id", &id) == LF_RESULT_OK) {
            copy_view(r->case_id, sizeof r->case_id, id.data, id.len);
        }
        break;
    }
    case MODE_ECHO:
        echo(r, binary, data.data, data.len);
        break;
    case MODE_WAIT:
        break;
    }
}

static void on_event(void *userdata, const lf_event *ev) {
    struct run *r = userdata;
    switch (lf_event_kind(ev)) {
    case LF_KIND_MESSAGE:
        on_message(r, ev, 0);
        break;
    case LF_KIND_BINARY:
        on_message(r, ev, 1);
        break;
    case LF_KIND_WRITABLE:
        drain(r);
        break;
    case LF_KIND_CLOSE: {
        lf_str reason = lf_event_text(ev);
        r->got_close = 1;
        r->close_code = lf_event_close_code(ev);
        copy_view(r->close_reason, sizeof r->close_reason, reason.data, reason.len);
        break;
    }
    case LF_KIND_ERROR:
        if (r->error == LF_RESULT_OK) {
            lf_str text = lf_event_text(ev);
            r->error = lf_event_result(ev);
            copy_view(r->error_text, sizeof r->error_text, text.data, text.len);
        }
        break;
    case LF_KIND_STATE:
        if (lf_event_state(ev) == LF_STATE_CLOSED && !r->closed) {
            r->closed = 1;
            lf_loop_stop(r->loop);
        }
        break;
    default: /* kinds added later */
        break;
    }
}

static void on_log(void *userdata, lf_log_level level, const char *message) {
    (void)userdata;
    fprintf(stderr, "    [livefeed %u] %s\n", (unsigned)level, message);
}

static int check(lf_result rc, const char *what) {
    if (rc == LF_RESULT_OK) {
        return 0;
    }
    char msg[256];
    lf_last_error_message(msg, sizeof msg);
    fprintf(stderr, "autobahn-client: %s: %s (%s)\n", what, lf_result_name(rc), msg);
    return -1;
}

/* Opens `url`, runs the loop until the session is closed. Returns 0 if it ran (whatever
 * the outcome on the wire, which r describes), -1 if the session could not be set up. */
static int run_session(lf_loop *loop, const char *url, enum mode mode, struct run *r) {
    memset(r, 0, sizeof *r);
    r->loop = loop;
    r->mode = mode;
    r->count = -1;

    lf_config *cfg = NULL;
    if (check(lf_config_new(&cfg), "lf_config_new") != 0) {
        return -1;
    }
    int failed = check(lf_config_set_url(cfg, url), "lf_config_set_url") != 0
        || check(lf_config_set_limit(cfg, LF_LIMIT_MAX_MESSAGE, 64 * MIB), "max message") != 0
        || check(lf_config_set_limit(cfg, LF_LIMIT_MAX_FRAME, 64 * MIB), "max frame") != 0
        || check(lf_config_set_limit(cfg, LF_LIMIT_SEND_BUFFER, 64 * MIB), "send buffer") != 0
        || check(lf_config_set_timeout(cfg, LF_TIMEOUT_PING_INTERVAL, 0), "ping interval") != 0
        || check(lf_session_new(loop, cfg, on_event, r, NULL, &r->session), "lf_session_new") != 0;
    lf_config_free(cfg);
    if (failed) {
        return -1;
    }

    int rc = 0;
    while (!r->closed) { /* a stale stop request would end a run early: run again */
        if (check(lf_loop_run(loop), "lf_loop_run") != 0) {
            rc = -1;
            break;
        }
    }
    lf_session_free(r->session);
    r->session = NULL;
    free_pending(r);
    return rc;
}

/* Appends `s` percent-encoded (RFC 3986 unreserved characters stay). */
static void append_encoded(char *dst, size_t cap, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(dst);
    for (; *s != '\0' && n + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'
            || c == '_' || c == '~') {
            dst[n++] = (char)c;
        } else {
            dst[n++] = '%';
            dst[n++] = hex[c >> 4];
            dst[n++] = hex[c & 15];
        }
    }
    dst[n] = '\0';
}

static void describe_end(const struct run *r, char *out, size_t cap) {
    int n;
    if (r->got_close) {
        n = snprintf(out, cap, "close %u", (unsigned)r->close_code);
    } else {
        n = snprintf(out, cap, "no close event");
    }
    if (n > 0 && (size_t)n < cap && r->close_reason[0] != '\0') {
        n += snprintf(out + n, cap - (size_t)n, " \"%s\"", r->close_reason);
    }
    if (n > 0 && (size_t)n < cap && r->error != LF_RESULT_OK) {
        snprintf(out + n, cap - (size_t)n, "; %s: %s", lf_result_name(r->error), r->error_text);
    }
}

int main(int argc, char **argv) {
    const char *base = argc > 1 ? argv[1] : "ws://127.0.0.1:9001";
    const char *agent = argc > 2 ? argv[2] : "livefeed";
    if (argc > 3 || (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))) {
        fprintf(stderr, "usage: %s [URL [AGENT]]   (defaults: ws://127.0.0.1:9001 livefeed)\n", argv[0]);
        return 2;
    }
    const char *log = getenv("AUTOBAHN_LOG");
    if (log != NULL && *log != '\0') {
        check(lf_set_log_callback((uint32_t)strtoul(log, NULL, 10), on_log, NULL), "lf_set_log_callback");
    }

    /* URL + path, without a doubled slash. */
    char root[512];
    copy_view(root, sizeof root, base, strlen(base));
    size_t root_len = strlen(root);
    if (root_len > 0 && root[root_len - 1] == '/') {
        root[root_len - 1] = '\0';
    }
    char agent_q[256] = "";
    append_encoded(agent_q, sizeof agent_q, agent);

    lf_loop *loop = NULL;
    if (check(lf_loop_new(&loop), "lf_loop_new") != 0) {
        return 1;
    }
    fprintf(stderr, "autobahn-client: %s, agent %s, %s\n", root, agent, lf_version());

    int status = 1;
    struct run r;
    char url[1024];
    char end[512];

    snprintf(url, sizeof url, "%s/getCaseCount", root);
    if (run_session(loop, url, MODE_COUNT, &r) != 0 || r.count < 0) {
        describe_end(&r, end, sizeof end);
        fprintf(stderr, "autobahn-client: no case count from %s (%s)\n", url, end);
        goto out;
    }
    long count = r.count;
    fprintf(stderr, "autobahn-client: %ld cases\n", count);

    for (long i = 1; i <= count; i++) {
        char id[32] = "?";
        snprintf(url, sizeof url, "%s/getCaseInfo?case=%ld", root, i);
        if (run_session(loop, url, MODE_INFO, &r) == 0 && r.case_id[0] != '\0') {
            memcpy(id, r.case_id, sizeof id);
        }
        snprintf(url, sizeof url, "%s/runCase?case=%ld&agent=%s", root, i, agent_q);
        if (run_session(loop, url, MODE_ECHO, &r) != 0) {
            goto out;
        }
        describe_end(&r, end, sizeof end);
        fprintf(stderr, "[%ld/%ld] case %s: %lu received, %lu echoed", i, count, id, r.received, r.echoed);
        if (r.dropped > 0) {
            fprintf(stderr, ", %lu not echoed (closing)", r.dropped);
        }
        if (r.backpressured > 0) {
            fprintf(stderr, ", %lu back-pressured", r.backpressured);
        }
        fprintf(stderr, "; %s\n", end);
    }

    snprintf(url, sizeof url, "%s/updateReports?agent=%s", root, agent_q);
    if (run_session(loop, url, MODE_WAIT, &r) != 0) {
        goto out;
    }
    describe_end(&r, end, sizeof end);
    fprintf(stderr, "autobahn-client: reports updated (%s)\n", end);
    status = r.got_close && r.error == LF_RESULT_OK ? 0 : 1;

out:
    lf_loop_free(loop);
    if (log != NULL && *log != '\0') {
        lf_set_log_callback(LF_LOG_LEVEL_OFF, NULL, NULL);
    }
    return status;
}
