/*
 * navixy: live tracker positions from Navixy's WebSocket API (Atmosphere protocol).
 *
 *   usage: navixy [options] BASE_URL
 *     BASE_URL            the API base, e.g. https://api.eu.navixy.com/v2
 *     --token HASH        an API key hash or session hash, or
 *     --user U --password P   log in (and log in again when the session hash expires)
 *     --device ID         a tracker id (repeatable; `state` needs at least one)
 *     --subscribe TYPE    state, state_batch (default), readings_batch, iot_monitor (repeatable)
 *     --count N           exit 0 after N tracker states (default: run until the session ends)
 *
 * One line per tracker state on stdout:
 *   1015564  52.50010 13.56400  speed 12 km/h  heading 90  moving
 * (source_id is Navixy's own id of the device, not the tracker id). Other events
 * (lifecycle, readings_batch, iot_monitor, subscription answers) are printed as JSON.
 * Reconnects with backoff and subscribes again. Guide: docs/navixy.md.
 * Exit status: 0 done, 1 failure, 2 usage.
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
    fprintf(stderr, "navixy: %s: %s: %s\n", what, lf_result_name(r), msg);
    return 1;
}

static int is(lf_str s, const char *text) {
    return s.len == strlen(text) && memcmp(s.data, text, s.len) == 0;
}

/* Prints the state object at JSON pointer `at` ("" for a `state` event, "/3" for the
 * fourth entry of a `state_batch`). Returns 0 when there is none. */
static int print_state(const lf_event *ev, const char *at) {
    char ptr[64];
    double id, lat, lng, speed = 0, heading = 0;
    lf_str movement = {"", 0};
#define AT(suffix) (snprintf(ptr, sizeof ptr, "%s%s", at, suffix), ptr)
    if (lf_event_json_number(ev, AT("/source_id"), &id) != LF_RESULT_OK) return 0;
    if (lf_event_json_number(ev, AT("/gps/location/lat"), &lat) != LF_RESULT_OK ||
        lf_event_json_number(ev, AT("/gps/location/lng"), &lng) != LF_RESULT_OK) {
        printf("%.0f  (no position)\n", id);
        return 1;
    }
    lf_event_json_number(ev, AT("/gps/speed"), &speed);     /* optional: keep 0 */
    lf_event_json_number(ev, AT("/gps/heading"), &heading);
    lf_event_json_string(ev, AT("/movement_status"), &movement);
#undef AT
    printf("%.0f  %.5f %.5f  speed %.0f km/h  heading %.0f  %.*s\n", id, lat, lng, speed, heading,
           (int)movement.len, movement.data);
    return 1;
}

static void on_event(void *userdata, const lf_event *ev) {
    struct app *app = userdata;
    switch (lf_event_kind(ev)) {
    case LF_KIND_EVENT: {
        /* type: "event" (topic = the event name) or "response" (topic = the action). */
        lf_str type = lf_event_type(ev), topic = lf_event_topic(ev), json;
        long states = 0;
        if (is(type, "event") && is(topic, "state")) {
            states = print_state(ev, "");
        } else if (is(type, "event") && is(topic, "state_batch")) {
            char at[32];
            for (int i = 0;; i++) {
                snprintf(at, sizeof at, "/%d", i);
                if (!print_state(ev, at)) break;
                states++;
            }
        } else if (lf_event_json_raw(ev, "", &json) == LF_RESULT_OK) {
            printf("%.*s %.*s %.*s\n", (int)type.len, type.data, (int)topic.len, topic.data, (int)json.len,
                   json.data);
        }
        fflush(stdout);
        app->seen += states;
        if (app->count > 0 && app->seen >= app->count) lf_loop_stop(app->loop);
        break;
    }
    case LF_KIND_STATE:
        fprintf(stderr, "navixy: %s\n", lf_state_name(lf_event_state(ev)));
        if (lf_event_state(ev) == LF_STATE_CLOSED) {
            app->failed = app->count == 0 || app->seen < app->count;
            lf_loop_stop(app->loop);
        }
        break;
    case LF_KIND_ERROR: {
        lf_str why = lf_event_text(ev);
        fprintf(stderr, "navixy: %s: %.*s\n", lf_result_name(lf_event_result(ev)), (int)why.len, why.data);
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
    int failed = 1, usage = 0;

    if (check(lf_loop_new(&app.loop), "lf_loop_new")) goto out;
    if (check(lf_config_new(&cfg), "lf_config_new")) goto out;
    if (check(lf_config_set_protocol(cfg, LF_PROTOCOL_NAVIXY), "protocol")) goto out;
    /* Options map one to one onto protocol options (lf_config_set_option appends). */
    for (int i = 1; i < argc; i++) {
        const char *key = NULL;
        if (strcmp(argv[i], "--token") == 0) key = "token";
        else if (strcmp(argv[i], "--user") == 0) key = "user";
        else if (strcmp(argv[i], "--password") == 0) key = "password";
        else if (strcmp(argv[i], "--device") == 0) key = "device";
        else if (strcmp(argv[i], "--subscribe") == 0) key = "subscribe";
        if (key && i + 1 < argc) {
            if (check(lf_config_set_option(cfg, key, argv[++i]), key)) goto out;
        } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            app.count = atol(argv[++i]);
        } else if (argv[i][0] != '-' && !url) {
            url = argv[i];
        } else {
            usage = 1;
        }
    }
    if (usage || !url) {
        fprintf(stderr,
                "usage: %s (--token HASH | --user U --password P) [--device ID]... "
                "[--subscribe TYPE]... [--count N] BASE_URL\n",
                argv[0]);
        failed = 2;
        goto out;
    }
    if (check(lf_config_set_url(cfg, url), "url")) goto out;
    /* Ask for <length>|<message> framing: Navixy messages can span WebSocket frames. */
    if (check(lf_config_set_option(cfg, "track_message_length", "true"), "option")) goto out;
    if (check(lf_config_set_reconnect(cfg, 1000, 60000, 0), "reconnect")) goto out;
    /* Fails here, before connecting, on a bad URL or missing credentials. */
    if (check(lf_session_new(app.loop, cfg, on_event, &app, NULL, &session), "lf_session_new")) goto out;
    if (check(lf_loop_run(app.loop), "lf_loop_run")) goto out;
    failed = app.failed;
out:
    lf_session_free(session);
    lf_loop_free(app.loop);
    lf_config_free(cfg);
    return failed;
}
