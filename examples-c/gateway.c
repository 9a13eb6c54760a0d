/*
 * gateway: several feeds of different platforms in one loop, one normalized JSON line per
 * event on stdout: what a gateway forwarding to MQTT, a database or a message bus does.
 *
 *   usage: gateway [--count N] [--timeout S] --feed NAME PROTOCOL URL [-o KEY=VALUE]... ...
 *     --feed NAME PROTOCOL URL   a feed (repeatable, up to 16); PROTOCOL is an lfcat name:
 *                                ws, socketio, atmosphere, igtimi, thethings, smartserver,
 *                                deconz, navixy
 *     -o KEY=VALUE               a protocol option of the feed before it (repeatable):
 *                                apikey, token, user, password, subscribe, device, ...
 *     --count N                  exit 0 after N data events, all feeds together
 *     --timeout S                exit 3 after S seconds
 *   SIGINT or SIGTERM: stop, print each feed's counters on stderr, exit 0.
 *
 * For example, a deCONZ gateway, a Navixy account and a plain WebSocket sensor feed:
 *   gateway --feed lights deconz http://192.168.1.20 -o apikey=0123ABCDEF \
 *           --feed fleet navixy https://api.eu.navixy.com/v2 -o token=$NAVIXY_HASH \
 *                  -o subscribe=state_batch -o track_message_length=true \
 *           --feed sensors ws ws://127.0.0.1:8080/
 * prints
 *   {"feed":"lights","kind":"state","state":"open"}
 *   {"feed":"lights","kind":"event","type":"changed","topic":"sensors/5","data":{"t":"event",...}}
 *   {"feed":"fleet","kind":"event","type":"event","topic":"state_batch","data":[{"source_id":...}]}
 *   {"feed":"sensors","kind":"message","type":"","topic":"","data":{"sensor":"greenhouse-1",...}}
 * `data` is the payload as compact JSON when it is JSON, else a JSON string (base64 for
 * binary payloads, with "encoding":"base64").
 *
 * Threads: lf_loop_run drives every feed on the main thread, so the callbacks need no
 * locks. Signals are blocked in every thread (before the loop starts any) and taken by a
 * small thread with sigwait(), which asks the loop to stop: lf_loop_stop is safe from any
 * thread, but not from a signal handler. Every feed reconnects with backoff on its own;
 * when all of them have ended for good, the gateway exits 1.
 */
#define _POSIX_C_SOURCE 200809L

#include <livefeed.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_FEEDS 16
#define MAX_OPTIONS 32

struct gateway;

struct feed {
    const char *name, *protocol, *url; /* pointers into argv */
    const char *options[MAX_OPTIONS];  /* "key=value" */
    int noptions;
    lf_session *session;
    struct gateway *gw;
    int ended; /* closed for good */
};

struct gateway {
    lf_loop *loop;
    struct feed feeds[MAX_FEEDS];
    int nfeeds;
    int ended; /* feeds closed for good */
    long count, seen;
    atomic_int signal;   /* set by the signal thread */
    atomic_int finished; /* the loop returned: the signal thread may go */
};

static int check(lf_result r, const char *what) {
    if (r == LF_RESULT_OK) return 0;
    char msg[256];
    lf_last_error_message(msg, sizeof msg);
    fprintf(stderr, "gateway: %s: %s: %s\n", what, lf_result_name(r), msg);
    return 1;
}

/* ---- output ------------------------------------------------------------------------- */

static void put_string(const char *s, size_t len) {
    putchar('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') fputs("\\n", stdout);
        else if (c < 0x20 || c == 0x7f) printf("\\u%04x", c);
        else putchar(c); /* UTF-8 passes through: lf_str text is valid UTF-8 */
    }
    putchar('"');
}

static void put_base64(const uint8_t *p, size_t len) {
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    putchar('"');
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < len ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < len ? p[i + 2] : 0);
        putchar(abc[v >> 18 & 63]);
        putchar(abc[v >> 12 & 63]);
        putchar(i + 1 < len ? abc[v >> 6 & 63] : '=');
        putchar(i + 2 < len ? abc[v & 63] : '=');
    }
    putchar('"');
}

/* One line per event: {"feed":..,"kind":..,...}. */
static void print_event(const struct feed *f, const lf_event *ev) {
    lf_kind kind = lf_event_kind(ev);
    printf("{\"feed\":");
    put_string(f->name, strlen(f->name));
    printf(",\"kind\":\"%s\"", lf_event_kind_name(kind));
    if (kind == LF_KIND_STATE) {
        printf(",\"state\":\"%s\"", lf_state_name(lf_event_state(ev)));
        lf_str json;
        /* reconnecting: {"attempt":N,"delay_ms":D,"reason":...} */
        if (lf_event_state(ev) == LF_STATE_RECONNECTING && lf_event_json_raw(ev, "", &json) == LF_RESULT_OK)
            printf(",\"detail\":%.*s", (int)json.len, json.data);
    } else if (kind == LF_KIND_ERROR) {
        lf_str why = lf_event_text(ev);
        printf(",\"error\":\"%s\",\"message\":", lf_result_name(lf_event_result(ev)));
        put_string(why.data, why.len);
    } else {
        lf_str type = lf_event_type(ev), topic = lf_event_topic(ev), json;
        printf(",\"type\":");
        put_string(type.data, type.len);
        printf(",\"topic\":");
        put_string(topic.data, topic.len);
        printf(",\"data\":");
        if (kind == LF_KIND_BINARY) {
            lf_bytes data = lf_event_data(ev);
            put_base64(data.data, data.len);
            printf(",\"encoding\":\"base64\"");
        } else if (lf_event_json_raw(ev, "", &json) == LF_RESULT_OK) {
            printf("%.*s", (int)json.len, json.data); /* parsed once, printed compact */
        } else {
            lf_str text = lf_event_text(ev);
            put_string(text.data, text.len);
        }
    }
    printf("}\n");
    fflush(stdout);
}

/* ---- events --------------------------------------------------------------------------- */

/* Every feed's callback; `userdata` says which feed. Runs on the main thread (inside
 * lf_loop_run), one event at a time: no locks. */
static void on_event(void *userdata, const lf_event *ev) {
    struct feed *f = userdata;
    struct gateway *gw = f->gw;
    lf_kind kind = lf_event_kind(ev);
    print_event(f, ev);
    if (kind == LF_KIND_MESSAGE || kind == LF_KIND_BINARY || kind == LF_KIND_EVENT) {
        if (gw->count > 0 && ++gw->seen == gw->count) lf_loop_stop(gw->loop);
    } else if (kind == LF_KIND_STATE && lf_event_state(ev) == LF_STATE_CLOSED && !f->ended) {
        /* Closed for good: refused credentials, a bad option, or the reconnect attempts ran
         * out. The other feeds go on. */
        f->ended = 1;
        if (++gw->ended == gw->nfeeds) lf_loop_stop(gw->loop);
    }
}

/* ---- signals -------------------------------------------------------------------------- */

static void stop_signals(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGALRM);
}

static void *signal_thread(void *arg) {
    struct gateway *gw = arg;
    sigset_t set;
    int sig = 0;
    stop_signals(&set);
    if (sigwait(&set, &sig) == 0 && !atomic_load(&gw->finished)) {
        atomic_store(&gw->signal, sig);
        lf_loop_stop(gw->loop); /* any thread; never blocks */
    }
    return NULL;
}

/* ---- setup ---------------------------------------------------------------------------- */

static int open_feed(struct gateway *gw, struct feed *f) {
    lf_config *cfg = NULL;
    lf_protocol protocol;
    int failed = 1;
    if (lf_protocol_from_name(f->protocol, &protocol) != LF_RESULT_OK) {
        fprintf(stderr, "gateway: %s: unknown protocol %s\n", f->name, f->protocol);
        return 1;
    }
    if (check(lf_config_new(&cfg), "lf_config_new")) goto out;
    if (check(lf_config_set_url(cfg, f->url), f->name)) goto out;
    if (check(lf_config_set_protocol(cfg, protocol), f->name)) goto out;
    for (int i = 0; i < f->noptions; i++) {
        char key[64];
        const char *eq = strchr(f->options[i], '=');
        if (!eq || (size_t)(eq - f->options[i]) >= sizeof key) {
            fprintf(stderr, "gateway: %s: option %s is not KEY=VALUE\n", f->name, f->options[i]);
            goto out;
        }
        snprintf(key, sizeof key, "%.*s", (int)(eq - f->options[i]), f->options[i]);
        if (check(lf_config_set_option(cfg, key, eq + 1), f->name)) goto out;
    }
    /* Each feed stays connected on its own: 1 s .. 60 s backoff with jitter, no limit. */
    if (check(lf_config_set_reconnect(cfg, 1000, 60000, 0), f->name)) goto out;
    /* The config is copied: one config per feed, freed right away. */
    f->gw = gw;
    if (check(lf_session_new(gw->loop, cfg, on_event, f, NULL, &f->session), f->name)) goto out;
    failed = 0;
out:
    lf_config_free(cfg);
    return failed;
}

static int usage(const char *argv0) {
    fprintf(stderr,
            "usage: %s [--count N] [--timeout S] --feed NAME PROTOCOL URL [-o KEY=VALUE]... "
            "[--feed ...]\n",
            argv0);
    return 2;
}

int main(int argc, char **argv) {
    static struct gateway gw; /* zeroed */
    long timeout = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--feed") == 0 && i + 3 < argc && gw.nfeeds < MAX_FEEDS) {
            struct feed *f = &gw.feeds[gw.nfeeds++];
            f->name = argv[i + 1];
            f->protocol = argv[i + 2];
            f->url = argv[i + 3];
            i += 3;
        } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc && gw.nfeeds > 0 &&
                   gw.feeds[gw.nfeeds - 1].noptions < MAX_OPTIONS) {
            struct feed *f = &gw.feeds[gw.nfeeds - 1];
            f->options[f->noptions++] = argv[++i];
        } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            gw.count = atol(argv[++i]);
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            timeout = atol(argv[++i]);
        } else {
            return usage(argv[0]);
        }
    }
    if (gw.nfeeds == 0) return usage(argv[0]);

    /* Block the stop signals before any thread exists (the loop's threads inherit it). */
    sigset_t set;
    stop_signals(&set);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return 1;

    int status = 1;
    pthread_t signals;
    int have_signal_thread = 0;
    if (check(lf_loop_new(&gw.loop), "lf_loop_new")) goto out;
    for (int i = 0; i < gw.nfeeds; i++)
        if (open_feed(&gw, &gw.feeds[i])) goto out;
    if (pthread_create(&signals, NULL, signal_thread, &gw) != 0) goto out;
    have_signal_thread = 1;
    if (timeout > 0) alarm((unsigned)timeout);

    if (check(lf_loop_run(gw.loop), "lf_loop_run")) goto out;
    int sig = atomic_load(&gw.signal);
    if (sig == SIGALRM) status = 3;                           /* --timeout */
    else if (sig != 0) status = 0;                            /* SIGINT, SIGTERM */
    else status = gw.count > 0 && gw.seen >= gw.count ? 0 : 1; /* count reached, or all ended */

    for (int i = 0; i < gw.nfeeds; i++) {
        lf_stats st;
        if (gw.feeds[i].session && lf_session_stats(gw.feeds[i].session, &st, sizeof st) == LF_RESULT_OK)
            fprintf(stderr,
                    "gateway: %s: %s, %llu messages in, %llu reconnects, %llu dropped, last error %s\n",
                    gw.feeds[i].name, lf_state_name(st.state), (unsigned long long)st.messages_in,
                    (unsigned long long)st.reconnects, (unsigned long long)st.dropped,
                    lf_result_name(st.last_error));
    }
out:
    if (have_signal_thread) {
        atomic_store(&gw.finished, 1);
        pthread_kill(signals, SIGTERM); /* wakes its sigwait(); blocked everywhere else */
        pthread_join(signals, NULL);
    }
    for (int i = 0; i < gw.nfeeds; i++) lf_session_free(gw.feeds[i].session);
    lf_loop_free(gw.loop);
    return status;
}
