/*
 * smartserver: datapoint updates from an EnOcean/Dialog SmartServer IoT (IAP/WS), or one
 * data-log query.
 *
 *   usage: smartserver [options] URL USER PASSWORD [DATAPOINT...]
 *     URL        the SmartServer, e.g. https://smartserver.local/
 *     USER, PASSWORD   an IAP login of its own (the server keeps one subscription per login)
 *     DATAPOINT  qualifiers to follow, e.g. 17q4bn7/lon/2.1/Joystick/0/nvoValue
 *     --cafile FILE    trust the CA (or the self-signed certificate) in this PEM file
 *     --pin FILE       accept exactly the certificate in this PEM file, whoever signed it
 *     --datalog QUERY  run a data-log query instead (e.g.
 *                      '*+utc>2026-01-01T00:00:00.000&utc<=2026-01-02T00:00:00.000')
 *     --count N        exit 0 after N values (default: until the session ends)
 *
 * One line per value on stdout:
 *   17q4bn7/lon/2.1/Joystick/0/nvoValue = 42   (2026-01-01T10:00:00.000Z)
 *   2026-01-01T00:30:00.000  Sensor 1 / nvoTemp = 21.5          (data log)
 * A data-log query ends by itself after the server's "end" (exit 0). The live feed
 * reconnects with backoff, logging in again when the session expired.
 * Guide: docs/smartserver.md. Exit status: 0 done, 1 failure, 2 usage.
 */
#include <livefeed.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct app {
    lf_loop *loop;
    long count; /* 0: no limit */
    long seen;
    int datalog;
    int failed;
};

static int check(lf_result r, const char *what) {
    if (r == LF_RESULT_OK) return 0;
    char msg[256];
    lf_last_error_message(msg, sizeof msg);
    fprintf(stderr, "smartserver: %s: %s: %s\n", what, lf_result_name(r), msg);
    return 1;
}

static int is(lf_str s, const char *text) {
    return s.len == strlen(text) && memcmp(s.data, text, s.len) == 0;
}

/* Prints `label = <value at ptr>`, the value as compact JSON (numbers keep their spelling). */
static void print_value(const lf_event *ev, const char *ptr) {
    lf_str value;
    if (lf_event_json_raw(ev, ptr, &value) != LF_RESULT_OK) value = (lf_str){"?", 1};
    printf(" = %.*s", (int)value.len, value.data);
}

static void on_event(void *userdata, const lf_event *ev) {
    struct app *app = userdata;
    switch (lf_event_kind(ev)) {
    case LF_KIND_EVENT: {
        lf_str type = lf_event_type(ev), topic = lf_event_topic(ev), s;
        if (is(type, "UPD:DATAPOINT")) {
            /* topic: the datapointQualifier; payload: the entry as the server sent it */
            printf("%.*s", (int)topic.len, topic.data);
            print_value(ev, "/value");
            if (lf_event_json_string(ev, "/timestamp", &s) == LF_RESULT_OK)
                printf("   (%.*s)", (int)s.len, s.data);
            app->seen++;
        } else if (is(type, "DATALOG")) {
            /* entries may come out of time order: sort by utc if order matters */
            if (lf_event_json_string(ev, "/utc", &s) == LF_RESULT_OK) printf("%.*s  ", (int)s.len, s.data);
            if (lf_event_json_string(ev, "/deviceName", &s) == LF_RESULT_OK) printf("%.*s / ", (int)s.len, s.data);
            printf("%.*s", (int)topic.len, topic.data);
            print_value(ev, "/value");
            app->seen++;
        } else {
            /* other actions (CRT:ALARM, NTF:TIME, ...): topic = type = the action */
            printf("%.*s", (int)type.len, type.data);
            print_value(ev, "");
        }
        printf("\n");
        fflush(stdout);
        if (app->count > 0 && app->seen >= app->count) lf_loop_stop(app->loop);
        break;
    }
    case LF_KIND_CLOSE: /* a data-log query ends with a normal close after "end" */
        if (app->datalog && lf_event_close_code(ev) == 1000) app->datalog = 2;
        break;
    case LF_KIND_STATE: {
        lf_state state = lf_event_state(ev);
        fprintf(stderr, "smartserver: %s\n", lf_state_name(state));
        if (state == LF_STATE_CLOSED) {
            app->failed = app->datalog == 2 ? 0 : (app->count == 0 || app->seen < app->count);
            lf_loop_stop(app->loop);
        }
        break;
    }
    case LF_KIND_ERROR: {
        lf_str why = lf_event_text(ev);
        fprintf(stderr, "smartserver: %s: %.*s\n", lf_result_name(lf_event_result(ev)), (int)why.len,
                why.data);
        break;
    }
    default:
        break;
    }
}

int main(int argc, char **argv) {
    struct app app = {NULL, 0, 0, 0, 0};
    const char *cafile = NULL, *pin = NULL, *datalog = NULL;
    int arg = 1;
    for (; arg + 1 < argc && strncmp(argv[arg], "--", 2) == 0; arg += 2) {
        if (strcmp(argv[arg], "--cafile") == 0) cafile = argv[arg + 1];
        else if (strcmp(argv[arg], "--pin") == 0) pin = argv[arg + 1];
        else if (strcmp(argv[arg], "--datalog") == 0) datalog = argv[arg + 1];
        else if (strcmp(argv[arg], "--count") == 0) app.count = atol(argv[arg + 1]);
        else break;
    }
    if (argc - arg < 3 || (arg < argc && strncmp(argv[arg], "--", 2) == 0)) {
        fprintf(stderr,
                "usage: %s [--cafile FILE | --pin FILE] [--datalog QUERY] [--count N] "
                "URL USER PASSWORD [DATAPOINT...]\n",
                argv[0]);
        return 2;
    }
    app.datalog = datalog != NULL;
    lf_config *cfg = NULL;
    lf_session *session = NULL;
    int failed = 1;
    if (check(lf_loop_new(&app.loop), "lf_loop_new")) goto out;
    if (check(lf_config_new(&cfg), "lf_config_new")) goto out;
    if (check(lf_config_set_url(cfg, argv[arg]), "url")) goto out;
    if (check(lf_config_set_protocol(cfg, LF_PROTOCOL_SMART_SERVER), "protocol")) goto out;
    if (check(lf_config_set_option(cfg, "user", argv[arg + 1]), "user")) goto out;
    if (check(lf_config_set_option(cfg, "password", argv[arg + 2]), "password")) goto out;
    for (int i = arg + 3; i < argc; i++)
        if (check(lf_config_set_option(cfg, "subscribe", argv[i]), "subscribe")) goto out;
    if (datalog && check(lf_config_set_option(cfg, "datalog", datalog), "datalog")) goto out;
    /* SmartServers present self-signed certificates: trust them explicitly. */
    if (cafile && check(lf_config_add_ca_file(cfg, cafile), "--cafile")) goto out;
    if (pin && check(lf_config_pin_certificate_file(cfg, pin), "--pin")) goto out;
    /* A live feed keeps reconnecting; a query that failed before its end is run again
     * from the start (entries may repeat), at most 3 times in a row. */
    if (check(lf_config_set_reconnect(cfg, 1000, 60000, datalog ? 3 : 0), "reconnect")) goto out;
    if (check(lf_session_new(app.loop, cfg, on_event, &app, NULL, &session), "lf_session_new")) goto out;
    if (check(lf_loop_run(app.loop), "lf_loop_run")) goto out;
    failed = app.failed;
out:
    lf_session_free(session);
    lf_loop_free(app.loop);
    lf_config_free(cfg);
    return failed;
}
