/*
 * thethings: live resource values from thethings.io (Socket.IO real-time API).
 *
 *   usage: thethings (--token T | --user EMAIL --password P [--app ID]) [--count N]
 *                    URL RESOURCE...
 *     URL       the Socket.IO endpoint, https://ws.thethings.io (namespace /v2 by default;
 *               the REST login goes to https://api.thethings.io unless -o api=... says
 *               otherwise)
 *     RESOURCE  /me/resources/<key> or /things/<thingToken>
 *     --token T         a session token, or
 *     --user/--password log in over REST (again after a reconnect or a refused token)
 *     --count N         exit 0 after N values (default: until the session ends)
 *
 * One line per value on stdout:
 *   /me/resources/temperature  temperature = 23.5  at 2026-01-01T10:00:00.000Z
 * Reconnects with backoff: log in, authenticate and subscribe again.
 * Guide: docs/socketio.md. Exit status: 0 done, 1 failure, 2 usage.
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
    fprintf(stderr, "thethings: %s: %s: %s\n", what, lf_result_name(r), msg);
    return 1;
}

/* A resource event: topic = the resource, payload = the Socket.IO arguments, whose first
 * is an array of value objects {"key":..,"value":..,"datetime":..}. */
static long print_values(const lf_event *ev) {
    lf_str topic = lf_event_topic(ev), key, value, when;
    char ptr[48];
    long n = 0;
    for (int i = 0;; i++) {
        snprintf(ptr, sizeof ptr, "/0/%d/value", i);
        if (lf_event_json_raw(ev, ptr, &value) != LF_RESULT_OK) break;
        snprintf(ptr, sizeof ptr, "/0/%d/key", i);
        if (lf_event_json_string(ev, ptr, &key) != LF_RESULT_OK) key = (lf_str){"value", 5};
        printf("%.*s  %.*s = %.*s", (int)topic.len, topic.data, (int)key.len, key.data, (int)value.len,
               value.data);
        snprintf(ptr, sizeof ptr, "/0/%d/datetime", i);
        if (lf_event_json_string(ev, ptr, &when) == LF_RESULT_OK) printf("  at %.*s", (int)when.len, when.data);
        printf("\n");
        n++;
    }
    return n;
}

static void on_event(void *userdata, const lf_event *ev) {
    struct app *app = userdata;
    switch (lf_event_kind(ev)) {
    case LF_KIND_EVENT: {
        lf_str topic = lf_event_topic(ev), args;
        if (topic.len > 0 && topic.data[0] == '/') {
            app->seen += print_values(ev);
        } else if (lf_event_json_raw(ev, "", &args) == LF_RESULT_OK) {
            /* "connect" (the namespace joined), "error" {"status":"error",...}, ... */
            fprintf(stderr, "thethings: event %.*s %.*s\n", (int)topic.len, topic.data, (int)args.len, args.data);
        }
        fflush(stdout);
        if (app->count > 0 && app->seen >= app->count) lf_loop_stop(app->loop);
        break;
    }
    case LF_KIND_STATE:
        fprintf(stderr, "thethings: %s\n", lf_state_name(lf_event_state(ev)));
        if (lf_event_state(ev) == LF_STATE_CLOSED) {
            app->failed = app->count == 0 || app->seen < app->count;
            lf_loop_stop(app->loop);
        }
        break;
    case LF_KIND_ERROR: {
        lf_str why = lf_event_text(ev);
        fprintf(stderr, "thethings: %s: %.*s\n", lf_result_name(lf_event_result(ev)), (int)why.len, why.data);
        break;
    }
    default:
        break;
    }
}

int main(int argc, char **argv) {
    struct app app = {NULL, 0, 0, 0};
    lf_config *cfg = NULL;
    lf_session *session = NULL;
    const char *url = NULL;
    int failed = 1, usage = 0, resources = 0;

    if (check(lf_loop_new(&app.loop), "lf_loop_new")) goto out;
    if (check(lf_config_new(&cfg), "lf_config_new")) goto out;
    if (check(lf_config_set_protocol(cfg, LF_PROTOCOL_THE_THINGS), "protocol")) goto out;
    for (int i = 1; i < argc; i++) {
        const char *key = NULL;
        if (strcmp(argv[i], "--token") == 0) key = "token";
        else if (strcmp(argv[i], "--user") == 0) key = "user";
        else if (strcmp(argv[i], "--password") == 0) key = "password";
        else if (strcmp(argv[i], "--app") == 0) key = "app";
        if (key && i + 1 < argc) {
            if (check(lf_config_set_option(cfg, key, argv[++i]), key)) goto out;
        } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            app.count = atol(argv[++i]);
        } else if (argv[i][0] == '-') {
            usage = 1;
        } else if (!url) {
            url = argv[i];
        } else {
            /* Subscribed once the session has authenticated, and after every reconnect. */
            if (check(lf_config_set_option(cfg, "subscribe", argv[i]), "subscribe")) goto out;
            resources++;
        }
    }
    if (usage || !url || resources == 0) {
        fprintf(stderr,
                "usage: %s (--token T | --user EMAIL --password P [--app ID]) [--count N] URL RESOURCE...\n",
                argv[0]);
        failed = 2;
        goto out;
    }
    if (check(lf_config_set_url(cfg, url), "url")) goto out;
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
