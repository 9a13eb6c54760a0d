/*
 * socketio: a Socket.IO client (socket.io servers 1.x to 4.x): emit events, print what
 * the server emits, answer its acknowledgement requests.
 *
 *   usage: socketio [options] URL
 *     URL                 http(s)://host[:port][/namespace], e.g. https://example.com/chat
 *     --emit EVENT JSON   emit EVENT with the JSON array of arguments once the namespace is
 *                         joined (repeatable; again after every reconnect), asking for an
 *                         acknowledgement
 *     --on EVENT          route EVENT to its own handler (lf_session_on) (repeatable)
 *     --auth JSON         the namespace's auth object (socket.io 3+ servers)
 *     --transport T       websocket (default), polling, or upgrade
 *     --count N           exit 0 after N events and acknowledgements (default: until closed)
 *
 * One line per event on stdout:
 *   event /chat tick [{"i":0}]
 *   ack   1 ["hi"]
 *   on    question ["q1",42]   (asked for an acknowledgement: answered with ["ok"])
 * Guide: docs/socketio.md. Exit status: 0 done, 1 failure, 2 usage.
 */
#include <livefeed.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EMITS 16

struct app {
    lf_loop *loop;
    lf_session *session;
    const char *emits[MAX_EMITS][2]; /* event, args: pointers into argv */
    int nemits;
    const char *routes[MAX_EMITS]; /* --on EVENT names */
    int nroutes;
    long count; /* 0: no limit */
    long seen;
    int failed;
};

static int check(lf_result r, const char *what) {
    if (r == LF_RESULT_OK) return 0;
    char msg[256];
    lf_last_error_message(msg, sizeof msg);
    fprintf(stderr, "socketio: %s: %s: %s\n", what, lf_result_name(r), msg);
    return 1;
}

static void counted(struct app *app) {
    fflush(stdout);
    if (app->count > 0 && ++app->seen >= app->count) lf_loop_stop(app->loop);
}

/* The server asked for an acknowledgement (lf_event_ack_id != 0): answer it, on the
 * event's namespace. Allowed from inside a callback, like every lf_session_* call. */
static void answer(const struct app *app, const lf_event *ev) {
    uint64_t id = lf_event_ack_id(ev);
    if (id == 0) return;
    char ns[128];
    lf_str nsp = lf_event_namespace(ev);
    snprintf(ns, sizeof ns, "%.*s", (int)nsp.len, nsp.data);
    check(lf_session_ack(app->session, ns[0] ? ns : NULL, id, "[\"ok\"]", NULL, 0), "lf_session_ack");
}

/* Handler of the events named with --on (their own route, their own callback). */
static void on_routed(void *userdata, const lf_event *ev) {
    struct app *app = userdata;
    lf_str name = lf_event_topic(ev), args = lf_event_text(ev);
    printf("on    %.*s %.*s\n", (int)name.len, name.data, (int)args.len, args.data);
    answer(app, ev);
    counted(app);
}

static void on_event(void *userdata, const lf_event *ev) {
    struct app *app = userdata;
    switch (lf_event_kind(ev)) {
    case LF_KIND_EVENT: {
        /* topic = the event name, payload = the JSON array of its arguments (binary
         * attachments: lf_event_attachment_count / lf_event_attachment) */
        lf_str ns = lf_event_namespace(ev), name = lf_event_topic(ev), args = lf_event_text(ev);
        printf("event %.*s %.*s %.*s", (int)ns.len, ns.data, (int)name.len, name.data, (int)args.len, args.data);
        if (lf_event_attachment_count(ev) > 0) printf(" (+%zu binary)", lf_event_attachment_count(ev));
        printf("\n");
        answer(app, ev);
        if (!(name.len == 7 && memcmp(name.data, "connect", 7) == 0)) counted(app); /* joins don't count */
        break;
    }
    case LF_KIND_ACK: {
        lf_str args = lf_event_text(ev);
        if (lf_event_result(ev) == LF_RESULT_OK)
            printf("ack   %llu %.*s\n", (unsigned long long)lf_event_ack_id(ev), (int)args.len, args.data);
        else /* LF_RESULT_TIMEOUT: no answer in time */
            printf("ack   %llu timed out\n", (unsigned long long)lf_event_ack_id(ev));
        counted(app);
        break;
    }
    case LF_KIND_STATE: {
        lf_state state = lf_event_state(ev);
        fprintf(stderr, "socketio: %s\n", lf_state_name(state));
        if (state == LF_STATE_OPEN) {
            /* Joined the namespace: emit, each asking for an acknowledgement within 5 s. */
            for (int i = 0; i < app->nemits; i++) {
                uint64_t id = 0;
                if (check(lf_session_emit(app->session, NULL, app->emits[i][0], app->emits[i][1], NULL, 0,
                                          5000, &id),
                          "lf_session_emit") == 0)
                    fprintf(stderr, "socketio: emitted %s as %llu\n", app->emits[i][0], (unsigned long long)id);
            }
        } else if (state == LF_STATE_CLOSED) {
            app->failed = app->count == 0 || app->seen < app->count;
            lf_loop_stop(app->loop);
        }
        break;
    }
    case LF_KIND_ERROR: {
        lf_str why = lf_event_text(ev);
        fprintf(stderr, "socketio: %s: %.*s\n", lf_result_name(lf_event_result(ev)), (int)why.len, why.data);
        break;
    }
    default:
        break;
    }
}

int main(int argc, char **argv) {
    struct app app;
    memset(&app, 0, sizeof app);
    lf_config *cfg = NULL;
    const char *url = NULL;
    int failed = 1, usage = 0;

    if (check(lf_loop_new(&app.loop), "lf_loop_new")) goto out;
    if (check(lf_config_new(&cfg), "lf_config_new")) goto out;
    if (check(lf_config_set_protocol(cfg, LF_PROTOCOL_SOCKET_IO), "protocol")) goto out;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--emit") == 0 && i + 2 < argc && app.nemits < MAX_EMITS) {
            app.emits[app.nemits][0] = argv[i + 1];
            app.emits[app.nemits][1] = argv[i + 2];
            app.nemits++;
            i += 2;
        } else if (strcmp(argv[i], "--auth") == 0 && i + 1 < argc) {
            if (check(lf_config_set_option(cfg, "auth", argv[++i]), "--auth")) goto out;
        } else if (strcmp(argv[i], "--transport") == 0 && i + 1 < argc) {
            if (check(lf_config_set_option(cfg, "transport", argv[++i]), "--transport")) goto out;
        } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            app.count = atol(argv[++i]);
        } else if (strcmp(argv[i], "--on") == 0 && i + 1 < argc && app.nroutes < MAX_EMITS) {
            app.routes[app.nroutes++] = argv[++i]; /* routed once the session exists */
        } else if (argv[i][0] != '-' && !url) {
            url = argv[i];
        } else {
            usage = 1;
        }
    }
    if (usage || !url) {
        fprintf(stderr,
                "usage: %s [--emit EVENT JSON]... [--on EVENT]... [--auth JSON] [--transport T] "
                "[--count N] URL\n",
                argv[0]);
        failed = 2;
        goto out;
    }
    if (check(lf_config_set_url(cfg, url), "url")) goto out;
    if (check(lf_config_set_reconnect(cfg, 500, 30000, 0), "reconnect")) goto out;
    if (check(lf_session_new(app.loop, cfg, on_event, &app, NULL, &app.session), "lf_session_new")) goto out;
    for (int i = 0; i < app.nroutes; i++)
        if (check(lf_session_on(app.session, app.routes[i], on_routed, &app, NULL), "lf_session_on")) goto out;
    if (check(lf_loop_run(app.loop), "lf_loop_run")) goto out;
    failed = app.failed;
out:
    lf_session_free(app.session);
    lf_loop_free(app.loop);
    lf_config_free(cfg);
    return failed;
}
