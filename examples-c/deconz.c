/*
 * deconz: follow a deCONZ gateway (Phoscon, ConBee, RaspBee): lights, sensors, groups and
 * scenes as they are added, changed, deleted and recalled.
 *
 *   usage: deconz [--snapshot] [--count N] URL APIKEY
 *     URL     the gateway's REST API, e.g. http://192.168.1.20 (not the WebSocket:
 *             the session reads the WebSocket port from the gateway's config)
 *     APIKEY  a key the gateway knows (lfcat -p deconz -o devicetype=NAME URL gets one)
 *     --snapshot  read lights, sensors and groups first, after every (re)connect
 *     --count N   exit 0 after N gateway events (default: run until the session ends)
 *
 * One line per event on stdout, for example
 *   changed  sensors/5   state  {"buttonevent":2002,"lastupdated":"2019-03-15T20:16:30"}
 *   changed  lights/1    state  {"on":true,"bri":200,"reachable":true}
 *   snapshot lights/1    name   "Desk"
 * Reconnects with backoff (the gateway may move its WebSocket when it restarts: the whole
 * bootstrap runs again). Guide: docs/deconz.md. Exit status: 0 done, 1 failure, 2 usage.
 */
#include <livefeed.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct app {
    lf_loop *loop;
    long count; /* 0: no limit */
    long seen;
    int failed;
};

static int check(lf_result r, const char *what) {
    if (r == LF_RESULT_OK) return 0;
    char msg[256];
    lf_last_error_message(msg, sizeof msg);
    fprintf(stderr, "deconz: %s: %s: %s\n", what, lf_result_name(r), msg);
    return 1;
}

/* The attribute group a message carries: a `changed` message has one of these
 * (PROTOCOLS.md §4.3), an `added` one the whole resource under its singular name. */
static const char *const GROUPS[] = {"/state", "/config", "/name", "/attr", "/light", "/sensor", "/group"};

static int is(lf_str s, const char *text) {
    return s.len == strlen(text) && memcmp(s.data, text, s.len) == 0;
}

static void print_gateway_event(const lf_event *ev) {
    lf_str type = lf_event_type(ev), topic = lf_event_topic(ev), what;
    printf("%-12.*s %-22.*s", (int)type.len, type.data, (int)topic.len, topic.data);
    if (is(type, "snapshot")) {
        /* A snapshot item is the REST object itself: show its name. */
        if (lf_event_json_raw(ev, "/name", &what) == LF_RESULT_OK)
            printf(" name   %.*s", (int)what.len, what.data);
    } else if (is(type, "snapshot-end")) {
        /* The ids read: any id missing from it is gone. */
        if (lf_event_json_raw(ev, "", &what) == LF_RESULT_OK)
            printf(" ids    %.*s", (int)what.len, what.data);
    } else {
        for (size_t i = 0; i < sizeof GROUPS / sizeof GROUPS[0]; i++) {
            if (lf_event_json_raw(ev, GROUPS[i], &what) == LF_RESULT_OK) {
                printf(" %-6s %.*s", GROUPS[i] + 1, (int)what.len, what.data);
                break;
            }
        }
    }
    printf("\n");
}

static void on_event(void *userdata, const lf_event *ev) {
    struct app *app = userdata;
    switch (lf_event_kind(ev)) {
    case LF_KIND_EVENT:
        print_gateway_event(ev);
        fflush(stdout);
        if (app->count > 0 && ++app->seen == app->count) lf_loop_stop(app->loop);
        break;
    case LF_KIND_STATE: {
        lf_state state = lf_event_state(ev);
        lf_str detail = lf_event_text(ev);
        /* The text is the state's name, or a detail (reconnecting: attempt, delay, reason). */
        if (is(detail, lf_state_name(state)))
            fprintf(stderr, "deconz: %s\n", lf_state_name(state));
        else
            fprintf(stderr, "deconz: %s %.*s\n", lf_state_name(state), (int)detail.len, detail.data);
        if (state == LF_STATE_CLOSED) {
            app->failed = app->count == 0 || app->seen < app->count; /* ended early */
            lf_loop_stop(app->loop);
        }
        break;
    }
    case LF_KIND_ERROR: {
        /* Reported, then either reconnected or followed by the closed state. */
        lf_str why = lf_event_text(ev);
        fprintf(stderr, "deconz: %s: %.*s\n", lf_result_name(lf_event_result(ev)), (int)why.len, why.data);
        break;
    }
    default:
        break;
    }
}

int main(int argc, char **argv) {
    struct app app = {NULL, 0, 0, 0};
    int snapshot = 0, arg = 1;
    for (; arg < argc && strncmp(argv[arg], "--", 2) == 0; arg++) {
        if (strcmp(argv[arg], "--snapshot") == 0) {
            snapshot = 1;
        } else if (strcmp(argv[arg], "--count") == 0 && arg + 1 < argc) {
            app.count = atol(argv[++arg]);
        } else {
            break;
        }
    }
    if (argc - arg != 2) {
        fprintf(stderr, "usage: %s [--snapshot] [--count N] URL APIKEY\n", argv[0]);
        return 2;
    }
    lf_config *cfg = NULL;
    lf_session *session = NULL;
    int failed = 1;
    if (check(lf_loop_new(&app.loop), "lf_loop_new")) goto out;
    if (check(lf_config_new(&cfg), "lf_config_new")) goto out;
    if (check(lf_config_set_url(cfg, argv[arg]), "url")) goto out;
    if (check(lf_config_set_protocol(cfg, LF_PROTOCOL_DECONZ), "protocol")) goto out;
    if (check(lf_config_set_option(cfg, "apikey", argv[arg + 1]), "apikey")) goto out;
    if (snapshot && check(lf_config_set_option(cfg, "snapshot", "true"), "snapshot")) goto out;
    /* Keep following the gateway across restarts: 1 s .. 60 s between attempts. */
    if (check(lf_config_set_reconnect(cfg, 1000, 60000, 0), "reconnect")) goto out;
    if (check(lf_session_new(app.loop, cfg, on_event, &app, NULL, &session), "lf_session_new")) goto out;
    if (check(lf_loop_run(app.loop), "lf_loop_run")) goto out;
    failed = app.failed;
out:
    lf_session_free(session);
    lf_loop_free(app.loop);
    lf_config_free(cfg);
    return failed;
}
