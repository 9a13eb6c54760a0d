/*
 * igtimi: live sailing data (YachtBot / WindBot devices) from an Igtimi-compatible service.
 *
 *   usage: igtimi [--header-token] [--count N] BASE_URL TOKEN DEVICE...
 *     BASE_URL  the service, e.g. https://www.igtimi.com (the WebSocket servers are read
 *               from BASE_URL/server_listers/web_sockets on every connect)
 *     TOKEN     the access token
 *     DEVICE    device serial numbers, e.g. GA-DK-AAAD
 *     --header-token  send the token as "Authorization: Bearer" (SAP Sailing Analytics'
 *                     replacement service) instead of in the configuration block
 *     --count N       exit 0 after N samples (default: run until the session ends)
 *
 * One line per sample on stdout:
 *   GA-DK-AAAD  GPS position   1384906722040  170.503938 -45.877031
 *   GA-DK-AAAD  SOG            1384906722040  6.1
 * Reconnects with backoff (trying every listed server in turn). Guide: docs/igtimi.md.
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
    fprintf(stderr, "igtimi: %s: %s: %s\n", what, lf_result_name(r), msg);
    return 1;
}

/* Some of the data type codes (PROTOCOLS.md §1.2); others print as their number. */
static const char *type_name(int type) {
    switch (type) {
    case 1: return "GPS position"; /* longitude, latitude */
    case 2: return "GPS quality";
    case 3: return "GPS satellites";
    case 4: return "GPS HDOP";
    case 5: return "GPS altitude";
    case 6: return "COG";
    case 7: return "heading (mag)";
    case 8: return "heading (true)";
    case 9: return "SOG";
    case 10: return "STW";
    case 11: return "AWA";
    case 12: return "AWS";
    case 13: return "heart rate"; /* ANT event time, beat count, heart rate */
    default: return NULL;
    }
}

/* Payload: {"serial":S,"type":T,"dsi":D,"samples":[{"t":ms,"v":[c1,c2,...]},...]} */
static long print_samples(const lf_event *ev) {
    lf_str serial;
    double type;
    char ptr[64], label[16];
    long n = 0;
    if (lf_event_json_string(ev, "/serial", &serial) != LF_RESULT_OK ||
        lf_event_json_number(ev, "/type", &type) != LF_RESULT_OK)
        return 0;
    const char *name = type_name((int)type);
    if (!name) {
        snprintf(label, sizeof label, "type %d", (int)type);
        name = label;
    }
    for (int s = 0;; s++) {
        double t, v;
        snprintf(ptr, sizeof ptr, "/samples/%d/t", s);
        if (lf_event_json_number(ev, ptr, &t) != LF_RESULT_OK) break;
        printf("%.*s  %-14s %.0f ", (int)serial.len, serial.data, name, t);
        for (int c = 0;; c++) {
            snprintf(ptr, sizeof ptr, "/samples/%d/v/%d", s, c);
            if (!lf_event_json_has(ev, ptr)) break;
            if (lf_event_json_number(ev, ptr, &v) == LF_RESULT_OK)
                printf(" %.10g", v);
            else
                printf(" -"); /* the server sent no value for this component */
        }
        printf("\n");
        n++;
    }
    return n;
}

static void on_event(void *userdata, const lf_event *ev) {
    struct app *app = userdata;
    switch (lf_event_kind(ev)) {
    case LF_KIND_EVENT: /* topic SERIAL/TYPE, one event per device and data type of a frame */
        app->seen += print_samples(ev);
        fflush(stdout);
        if (app->count > 0 && app->seen >= app->count) lf_loop_stop(app->loop);
        break;
    case LF_KIND_STATE: {
        /* open: {"server":"wss://...","time":<the server's clock>} */
        lf_str text = lf_event_text(ev);
        const char *name = lf_state_name(lf_event_state(ev));
        if (text.len == strlen(name) && memcmp(text.data, name, text.len) == 0) text.len = 0;
        fprintf(stderr, "igtimi: %s %.*s\n", name, (int)text.len, text.data);
        if (lf_event_state(ev) == LF_STATE_CLOSED) {
            app->failed = app->count == 0 || app->seen < app->count;
            lf_loop_stop(app->loop);
        }
        break;
    }
    case LF_KIND_ERROR: {
        lf_str why = lf_event_text(ev);
        fprintf(stderr, "igtimi: %s: %.*s\n", lf_result_name(lf_event_result(ev)), (int)why.len, why.data);
        break;
    }
    default: /* LF_KIND_BINARY: protobuf frames of replacement services, not decoded here */
        break;
    }
}

int main(int argc, char **argv) {
    struct app app = {NULL, 0, 0, 0};
    int header_token = 0, arg = 1;
    for (; arg < argc && strncmp(argv[arg], "--", 2) == 0; arg++) {
        if (strcmp(argv[arg], "--header-token") == 0) {
            header_token = 1;
        } else if (strcmp(argv[arg], "--count") == 0 && arg + 1 < argc) {
            app.count = atol(argv[++arg]);
        } else {
            break;
        }
    }
    if (argc - arg < 3) {
        fprintf(stderr, "usage: %s [--header-token] [--count N] BASE_URL TOKEN DEVICE...\n", argv[0]);
        return 2;
    }
    lf_config *cfg = NULL;
    lf_session *session = NULL;
    int failed = 1;
    if (check(lf_loop_new(&app.loop), "lf_loop_new")) goto out;
    if (check(lf_config_new(&cfg), "lf_config_new")) goto out;
    if (check(lf_config_set_url(cfg, argv[arg]), "url")) goto out;
    if (check(lf_config_set_protocol(cfg, LF_PROTOCOL_IGTIMI), "protocol")) goto out;
    if (check(lf_config_set_option(cfg, "token", argv[arg + 1]), "token")) goto out;
    if (header_token && check(lf_config_set_option(cfg, "token_in", "header"), "token_in")) goto out;
    for (int i = arg + 2; i < argc; i++)
        if (check(lf_config_set_option(cfg, "device", argv[i]), "device")) goto out;
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
