/*
 * lfcat: print the events of a live feed as JSON lines.
 *
 *   lfcat [options] URL
 *
 * Written only against include/livefeed.h: if lfcat can do it, any C program can.
 * The loop is driven in embedded style (lf_loop_run_once from our own while loop), so
 * the program decides when to stop: after --count data events, when the server closes,
 * on failure, or when --timeout expires.
 *
 * Exit status: 0 done, 1 connection/auth failure or early close, 2 usage, 3 timeout.
 */
#define _POSIX_C_SOURCE 200809L

#include <livefeed.h>

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { EXIT_DONE = 0, EXIT_FAILURE_ = 1, EXIT_USAGE = 2, EXIT_TIMEOUT = 3 };

static const char USAGE[] =
    "usage: lfcat [options] URL\n"
    "\n"
    "Connects to a live feed and prints one JSON object per data event on stdout:\n"
    "  {\"type\":\"message\"|\"binary\",\"topic\":\"...\",\"data\":<JSON value, string or base64>}\n"
    "\n"
    "options:\n"
    "  -p, --protocol NAME    ws | socketio | atmosphere | igtimi | thethings |\n"
    "                         smartserver | deconz | navixy (default: ws for ws:// and wss://)\n"
    "  -H, --header 'Name: value'\n"
    "                         extra handshake header (repeatable)\n"
    "      --token T          protocol option \"token\"\n"
    "      --user U           protocol option \"user\"\n"
    "      --password P       protocol option \"password\"\n"
    "      --apikey K         protocol option \"apikey\"\n"
    "      --device ID        protocol option \"device\" (repeatable)\n"
    "      --subscribe TOPIC  protocol option \"subscribe\" (repeatable); with -p socketio,\n"
    "                         the event names to print (all events when none)\n"
    "      --datalog QUERY    protocol option \"datalog\" (smartserver: run a data-log query)\n"
    "      --track-message-length\n"
    "                         protocol option \"track_message_length\" (atmosphere, navixy)\n"
    "  -o, --option KEY=VALUE any protocol option (repeatable)\n"
    "      --proxy URL        HTTP proxy (http://[user:pass@]host:port), '' for none;\n"
    "                         default: https_proxy / http_proxy / no_proxy\n"
    "      --reconnect MIN_MS,MAX_MS\n"
    "                         reconnect after a lost connection, backoff between the two\n"
    "      --send TEXT        text message to send once open (repeatable, sent in order)\n"
    "      --cafile FILE      also trust the CA certificates in this PEM file\n"
    "      --pin FILE         accept exactly the certificate in this PEM file (self-signed\n"
    "                         gateways), whoever signed it\n"
    "      --insecure         do not verify the server certificate (test rigs only)\n"
    "      --count N          exit 0 after N data events\n"
    "      --timeout S        exit 3 if not done after S seconds (may be fractional)\n"
    "  -v                     log to stderr: -v warn, -vv info, -vvv debug, -vvvv trace\n"
    "  -h, --help             show this help\n"
    "\n"
    "exit status: 0 done (count reached, or the server closed with code 1000 when no\n"
    "--count is given), 1 connection or authentication failure or early close,\n"
    "2 usage, 3 timeout\n";

/* Everything the event callback needs. The callback runs on this (the main) thread,
 * inside lf_loop_run_once, so no locking is needed. */
typedef struct {
    lf_session *session;
    lf_protocol protocol;
    char **subscribes;   /* --subscribe topics (pointers into argv): events to print */
    size_t nsubscribes;
    char **sends;        /* --send texts, in order (pointers into argv) */
    size_t nsends;
    size_t next_send;    /* index of the next --send text to queue */
    long count;          /* --count, 0 for none */
    long received;       /* data events printed */
    int verbose;
    int logging;         /* our log callback is installed */
    int failed;          /* an LF_KIND_ERROR event was reported */
    unsigned close_code; /* from the LF_KIND_CLOSE event, 0 if none */
    char close_reason[124];
    int done;
    int exit_code;
} app_t;

static void finish(app_t *app, int code) {
    if (!app->done) {
        app->done = 1;
        app->exit_code = code;
    }
}

/* ---- output -------------------------------------------------------------------- */

/* Writes bytes as the inside of a JSON string: quotes and backslashes escaped, control
 * characters as \b \f \n \r \t or \u00XX (the forms serde_json uses inside JSON data,
 * so both kinds of payload read the same). The input is UTF-8 (the library validates
 * text), which JSON carries as is. */
static void put_json_string_body(const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != '"' && c != '\\' && c >= 0x20) {
            continue;
        }
        fwrite(s + start, 1, i - start, stdout);
        const char *shortform = NULL;
        switch (c) {
        case '"': shortform = "\\\""; break;
        case '\\': shortform = "\\\\"; break;
        case '\b': shortform = "\\b"; break;
        case '\f': shortform = "\\f"; break;
        case '\n': shortform = "\\n"; break;
        case '\r': shortform = "\\r"; break;
        case '\t': shortform = "\\t"; break;
        default: break;
        }
        if (shortform != NULL) {
            fputs(shortform, stdout);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
            fwrite(esc, 1, sizeof esc, stdout);
        }
        start = i + 1;
    }
    fwrite(s + start, 1, len - start, stdout);
}

static void put_json_string(const char *s, size_t len) {
    putchar('"');
    put_json_string_body(s, len);
    putchar('"');
}

/* Standard base64 (RFC 4648, with padding) of `len` bytes, written to stdout. */
static void put_base64(const uint8_t *p, size_t len) {
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[4 * 256];
    size_t n = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        out[n++] = alphabet[(v >> 18) & 63];
        out[n++] = alphabet[(v >> 12) & 63];
        out[n++] = alphabet[(v >> 6) & 63];
        out[n++] = alphabet[v & 63];
        if (n == sizeof out) {
            fwrite(out, 1, n, stdout);
            n = 0;
        }
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t)p[i + 1] << 8;
        }
        out[n++] = alphabet[(v >> 18) & 63];
        out[n++] = alphabet[(v >> 12) & 63];
        out[n++] = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        out[n++] = '=';
    }
    fwrite(out, 1, n, stdout);
}

/* Socket.IO-based protocols: event payloads are argument arrays and --subscribe names the
 * events to print. */
static int socketio_like(lf_protocol p) {
    return p == LF_PROTOCOL_SOCKET_IO || p == LF_PROTOCOL_THE_THINGS;
}

/* One line per data event: {"type":...,"topic":...,["event":...,]"data":...}, flushed. */
static int print_data_event(const app_t *app, const lf_event *ev) {
    lf_kind kind = lf_event_kind(ev);
    lf_str topic = lf_event_topic(ev);
    lf_str event_type = lf_event_type(ev);
    fputs("{\"type\":", stdout);
    const char *name = lf_event_kind_name(kind);
    put_json_string(name, strlen(name));
    fputs(",\"topic\":", stdout);
    put_json_string(topic.data, topic.len);
    if (event_type.len > 0) {
        fputs(",\"event\":", stdout);
        put_json_string(event_type.data, event_type.len);
    }
    fputs(",\"data\":", stdout);
    if (kind == LF_KIND_BINARY) {
        lf_bytes data = lf_event_data(ev);
        putchar('"');
        put_base64(data.data, data.len);
        putchar('"');
    } else {
        lf_str json;
        /* An event's payload is its argument list: print the argument when there is one. */
        const char *pointer =
            kind == LF_KIND_EVENT && socketio_like(app->protocol) && lf_event_json_has(ev, "/0") && !lf_event_json_has(ev, "/1") ? "/0" : "";
        if (lf_event_json_raw(ev, pointer, &json) == LF_RESULT_OK) {
            fwrite(json.data, 1, json.len, stdout);
        } else {
            lf_str text = lf_event_text(ev);
            put_json_string(text.data, text.len);
        }
    }
    fputs("}\n", stdout);
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -1;
}

/* ---- the session callback ------------------------------------------------------ */

static int is_event_protocol(lf_protocol p) {
    return p == LF_PROTOCOL_SOCKET_IO || p == LF_PROTOCOL_THE_THINGS;
}

/* Socket.IO: --send 'EVENT JSON' emits EVENT with the JSON value as its one argument
 * (no argument when there is no JSON) on the main namespace. */
static lf_result emit_text(app_t *app, const char *text) {
    const char *space = strchr(text, ' ');
    size_t name_len = space ? (size_t)(space - text) : strlen(text);
    const char *json = space ? space + 1 : "";
    while (*json == ' ') {
        json++;
    }
    size_t json_len = strlen(json);
    char *event = malloc(name_len + 1);
    char *args = malloc(json_len + 3);
    lf_result r = LF_RESULT_INVALID_PARAMETER;
    if (event != NULL && args != NULL) {
        memcpy(event, text, name_len);
        event[name_len] = '\0';
        if (json_len > 0) {
            args[0] = '[';
            memcpy(args + 1, json, json_len);
            args[json_len + 1] = ']';
            args[json_len + 2] = '\0';
        } else {
            strcpy(args, "[]");
        }
        r = lf_session_emit(app->session, NULL, event, args, NULL, 0, 0, NULL);
    }
    free(event);
    free(args);
    return r;
}

/* Whether an event with this topic is printed: all of them when no --subscribe was given
 * (except Socket.IO's own connect/disconnect), otherwise the subscribed ones. */
static int wanted(const app_t *app, lf_str topic) {
    if (!socketio_like(app->protocol)) {
        return 1; /* --subscribe is the platform's subscription, not a filter */
    }
    if (app->nsubscribes == 0) {
        int lifecycle = (topic.len == 7 && memcmp(topic.data, "connect", 7) == 0) ||
                        (topic.len == 10 && memcmp(topic.data, "disconnect", 10) == 0);
        return !lifecycle;
    }
    for (size_t i = 0; i < app->nsubscribes; i++) {
        if (strlen(app->subscribes[i]) == topic.len && memcmp(app->subscribes[i], topic.data, topic.len) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Queues the --send texts in order; stops at back-pressure and resumes on WRITABLE. */
static void send_pending(app_t *app) {
    while (app->next_send < app->nsends) {
        const char *text = app->sends[app->next_send];
        lf_result r = is_event_protocol(app->protocol) ? emit_text(app, text)
                                                       : lf_session_send_text(app->session, text, strlen(text));
        if (r == LF_RESULT_BACKPRESSURE) {
            if (app->verbose >= 3) {
                fprintf(stderr, "lfcat: send buffer full after %zu of %zu messages; waiting\n", app->next_send,
                        app->nsends);
            }
            return; /* an LF_KIND_WRITABLE event follows when the buffer drains */
        }
        if (r != LF_RESULT_OK) {
            char msg[256];
            lf_last_error_message(msg, sizeof msg);
            fprintf(stderr, "lfcat: cannot send: %s: %s\n", lf_result_name(r), msg);
            finish(app, EXIT_FAILURE_);
            return;
        }
        app->next_send++;
    }
}

static void on_event(void *userdata, const lf_event *ev) {
    app_t *app = userdata;
    if (app->done) {
        return; /* the rest of this loop turn is of no interest any more */
    }
    lf_kind kind = lf_event_kind(ev);
    switch (kind) {
    case LF_KIND_EVENT:
    case LF_KIND_MESSAGE:
    case LF_KIND_BINARY:
        if (kind == LF_KIND_EVENT && !wanted(app, lf_event_topic(ev))) {
            break;
        }
        if (print_data_event(app, ev) != 0) {
            fprintf(stderr, "lfcat: cannot write to stdout\n");
            finish(app, EXIT_FAILURE_);
            return;
        }
        app->received++;
        if (app->count > 0 && app->received >= app->count) {
            finish(app, EXIT_DONE);
        }
        break;
    case LF_KIND_STATE: {
        lf_state state = lf_event_state(ev);
        if (app->verbose >= 2) {
            fprintf(stderr, "lfcat: state %s\n", lf_state_name(state));
        }
        if (state == LF_STATE_OPEN) {
            app->failed = 0; /* back after a reconnect */
            send_pending(app);
        } else if (state == LF_STATE_RECONNECTING) {
            lf_str detail = lf_event_text(ev);
            fprintf(stderr, "lfcat: reconnecting: %.*s\n", (int)detail.len, detail.data);
        } else if (state == LF_STATE_CLOSED) {
            if (app->failed) {
                finish(app, EXIT_FAILURE_);
            } else if (app->count > 0) {
                fprintf(stderr, "lfcat: the session closed after %ld of %ld events\n", app->received,
                        app->count);
                finish(app, EXIT_FAILURE_);
            } else if (app->close_code == 1000) {
                finish(app, EXIT_DONE);
            } else {
                fprintf(stderr, "lfcat: the session closed with code %u%s%s\n", app->close_code,
                        app->close_reason[0] ? ": " : "", app->close_reason);
                finish(app, EXIT_FAILURE_);
            }
        }
        break;
    }
    case LF_KIND_ERROR: {
        lf_str text = lf_event_text(ev);
        fprintf(stderr, "lfcat: %s: %.*s\n", lf_result_name(lf_event_result(ev)), (int)text.len, text.data);
        app->failed = 1;
        break;
    }
    case LF_KIND_CLOSE: {
        /* The reason is only valid during the callback: keep a copy (at most 123 bytes). */
        lf_str reason = lf_event_text(ev);
        size_t n = reason.len < sizeof app->close_reason - 1 ? reason.len : sizeof app->close_reason - 1;
        memcpy(app->close_reason, reason.data, n);
        app->close_reason[n] = '\0';
        app->close_code = lf_event_close_code(ev);
        if (app->verbose >= 2) {
            fprintf(stderr, "lfcat: close code %u, reason '%s'\n", app->close_code, app->close_reason);
        }
        break;
    }
    case LF_KIND_WRITABLE:
        send_pending(app);
        break;
    default:
        break; /* new kinds may appear: ignore them */
    }
}

/* ---- logging --------------------------------------------------------------------- */

/* May run on any thread, concurrently: one fprintf per record keeps lines whole. */
static void on_log(void *userdata, lf_log_level level, const char *message) {
    static const char *const names[] = {"off", "error", "warn", "info", "debug", "trace"};
    (void)userdata;
    fprintf(stderr, "lfcat: [%s] %s\n", (unsigned)level < 6 ? names[level] : "?", message);
}

/* ---- options --------------------------------------------------------------------- */

enum {
    OPT_TOKEN = 256,
    OPT_USER,
    OPT_PASSWORD,
    OPT_APIKEY,
    OPT_DEVICE,
    OPT_SUBSCRIBE,
    OPT_SEND,
    OPT_CAFILE,
    OPT_INSECURE,
    OPT_COUNT,
    OPT_TIMEOUT,
    OPT_DATALOG,
    OPT_TRACK_LENGTH,
    OPT_RECONNECT,
    OPT_PROXY,
    OPT_PIN,
};

static const struct option LONG_OPTIONS[] = {
    {"protocol", required_argument, NULL, 'p'},
    {"header", required_argument, NULL, 'H'},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"user", required_argument, NULL, OPT_USER},
    {"password", required_argument, NULL, OPT_PASSWORD},
    {"apikey", required_argument, NULL, OPT_APIKEY},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"subscribe", required_argument, NULL, OPT_SUBSCRIBE},
    {"send", required_argument, NULL, OPT_SEND},
    {"cafile", required_argument, NULL, OPT_CAFILE},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"count", required_argument, NULL, OPT_COUNT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"datalog", required_argument, NULL, OPT_DATALOG},
    {"track-message-length", no_argument, NULL, OPT_TRACK_LENGTH},
    {"option", required_argument, NULL, 'o'},
    {"reconnect", required_argument, NULL, OPT_RECONNECT},
    {"proxy", required_argument, NULL, OPT_PROXY},
    {"pin", required_argument, NULL, OPT_PIN},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Prints "lfcat: <what>: <RESULT>: <last error message>" for a failed call. */
static void report(const char *what, lf_result r) {
    char msg[512];
    lf_last_error_message(msg, sizeof msg);
    fprintf(stderr, "lfcat: %s: %s: %s\n", what, lf_result_name(r), msg);
}

static int usage_error(const char *fmt, const char *arg) {
    fputs("lfcat: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'lfcat --help'.\n", stderr);
    return EXIT_USAGE;
}

static int has_ws_scheme(const char *url) {
    static const char *const schemes[] = {"ws://", "wss://"};
    for (size_t s = 0; s < 2; s++) {
        size_t i = 0;
        const char *p = schemes[s];
        while (p[i] && url[i] && (url[i] | 0x20) == p[i]) {
            i++;
        }
        if (p[i] == '\0') {
            return 1;
        }
    }
    return 0;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
        s[--n] = '\0';
    }
    return s;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Applies the command line to `cfg` and `app`. Returns -1 to go on, or an exit status. */
static int parse_options(int argc, char **argv, lf_config *cfg, app_t *app, double *timeout_s) {
    int protocol_set = 0;
    int insecure = 0;
    int opt;
    lf_result r = LF_RESULT_OK;
    while ((opt = getopt_long(argc, argv, "p:H:o:vh", LONG_OPTIONS, NULL)) != -1) {
        const char *key = NULL;
        switch (opt) {
        case 'h':
            fputs(USAGE, stdout);
            return EXIT_DONE;
        case 'v':
            app->verbose++;
            break;
        case 'p': {
            lf_protocol protocol;
            if (lf_protocol_from_name(optarg, &protocol) != LF_RESULT_OK) {
                return usage_error("unknown protocol '%s' (ws, socketio, atmosphere, igtimi, thethings, "
                                   "smartserver, deconz, navixy)",
                                   optarg);
            }
            app->protocol = protocol;
            if ((r = lf_config_set_protocol(cfg, protocol)) != LF_RESULT_OK) {
                report("--protocol", r);
                return EXIT_USAGE;
            }
            protocol_set = 1;
            break;
        }
        case 'H': {
            char *colon = strchr(optarg, ':');
            if (colon == NULL) {
                return usage_error("--header '%s': expected 'Name: value'", optarg);
            }
            *colon = '\0'; /* argv strings are ours to modify */
            char *name = trim(optarg);
            char *value = trim(colon + 1);
            if ((r = lf_config_add_header(cfg, name, value)) != LF_RESULT_OK) {
                report("--header", r);
                return EXIT_USAGE;
            }
            break;
        }
        case 'o': {
            char *eq = strchr(optarg, '=');
            if (eq == NULL || eq == optarg) {
                return usage_error("--option '%s': expected KEY=VALUE", optarg);
            }
            *eq = '\0'; /* argv strings are ours to modify */
            if ((r = lf_config_set_option(cfg, optarg, eq + 1)) != LF_RESULT_OK) {
                report("--option", r);
                return EXIT_USAGE;
            }
            break;
        }
        case OPT_RECONNECT: {
            unsigned min_ms = 0, max_ms = 0;
            char tail = 0;
            if (sscanf(optarg, "%u,%u%c", &min_ms, &max_ms, &tail) != 2 ||
                (r = lf_config_set_reconnect(cfg, min_ms, max_ms, 0)) != LF_RESULT_OK) {
                return usage_error("--reconnect '%s': expected MIN_MS,MAX_MS with 1 <= MIN <= MAX", optarg);
            }
            break;
        }
        case OPT_PIN:
            if ((r = lf_config_pin_certificate_file(cfg, optarg)) != LF_RESULT_OK) {
                report("--pin", r);
                return EXIT_USAGE;
            }
            break;
        case OPT_PROXY:
            if ((r = lf_config_set_proxy(cfg, optarg)) != LF_RESULT_OK) {
                report("--proxy", r);
                return EXIT_USAGE;
            }
            break;
        case OPT_DATALOG: key = "datalog"; break;
        case OPT_TRACK_LENGTH:
            if ((r = lf_config_set_option(cfg, "track_message_length", "true")) != LF_RESULT_OK) {
                report("--track-message-length", r);
                return EXIT_USAGE;
            }
            break;
        case OPT_TOKEN: key = "token"; break;
        case OPT_USER: key = "user"; break;
        case OPT_PASSWORD: key = "password"; break;
        case OPT_APIKEY: key = "apikey"; break;
        case OPT_DEVICE: key = "device"; break;
        case OPT_SUBSCRIBE:
            key = "subscribe";
            app->subscribes[app->nsubscribes++] = optarg;
            break;
        case OPT_SEND:
            app->sends[app->nsends++] = optarg;
            break;
        case OPT_CAFILE:
            if ((r = lf_config_add_ca_file(cfg, optarg)) != LF_RESULT_OK) {
                report("--cafile", r);
                return EXIT_USAGE;
            }
            break;
        case OPT_INSECURE:
            if ((r = lf_config_set_insecure(cfg, true)) != LF_RESULT_OK) {
                report("--insecure", r);
                return EXIT_USAGE;
            }
            insecure = 1;
            break;
        case OPT_COUNT: {
            char *end;
            errno = 0;
            long n = strtol(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || n < 1) {
                return usage_error("--count '%s': expected a positive integer", optarg);
            }
            app->count = n;
            break;
        }
        case OPT_TIMEOUT: {
            char *end;
            errno = 0;
            double s = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0' || !isfinite(s) || s <= 0 || s > 1e9) {
                return usage_error("--timeout '%s': expected a positive number of seconds", optarg);
            }
            *timeout_s = s;
            break;
        }
        default: /* getopt_long printed what was wrong */
            fputs("Try 'lfcat --help'.\n", stderr);
            return EXIT_USAGE;
        }
        if (key != NULL && (r = lf_config_set_option(cfg, key, optarg)) != LF_RESULT_OK) {
            report(key, r);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        return usage_error("%s", optind >= argc ? "missing URL" : "expected exactly one URL");
    }
    const char *url = argv[optind];
    if (!protocol_set && !has_ws_scheme(url)) {
        return usage_error("'%s' is not a ws:// or wss:// URL; choose a protocol with -p", url);
    }
    if ((r = lf_config_set_url(cfg, url)) != LF_RESULT_OK) {
        report("URL", r);
        return EXIT_USAGE;
    }
    /* Logging: off by default; --insecure shows at least the library's warning. */
    int level = app->verbose > 0 ? 1 + (app->verbose > 4 ? 4 : app->verbose) : (insecure ? 2 : 0);
    static const uint32_t levels[] = {LF_LOG_LEVEL_OFF,  LF_LOG_LEVEL_ERROR,
                                      LF_LOG_LEVEL_WARN, LF_LOG_LEVEL_INFO,
                                      LF_LOG_LEVEL_DEBUG, LF_LOG_LEVEL_TRACE};
    if (level > 0) {
        if ((r = lf_set_log_callback(levels[level], on_log, NULL)) != LF_RESULT_OK) {
            report("logging", r);
        } else {
            app->logging = 1;
        }
    }
    return -1;
}

int main(int argc, char **argv) {
    app_t app;
    memset(&app, 0, sizeof app);
    lf_config *cfg = NULL;
    lf_loop *loop = NULL;
    double timeout_s = 0;
    int status;
    lf_result r;

    app.sends = calloc((size_t)argc, sizeof *app.sends);
    app.subscribes = calloc((size_t)argc, sizeof *app.subscribes);
    if (app.sends == NULL || app.subscribes == NULL) {
        free(app.sends);
        free(app.subscribes);
        fputs("lfcat: out of memory\n", stderr);
        return EXIT_FAILURE_;
    }
    if ((r = lf_config_new(&cfg)) != LF_RESULT_OK) {
        report("lf_config_new", r);
        status = EXIT_FAILURE_;
        goto out;
    }
    if ((status = parse_options(argc, argv, cfg, &app, &timeout_s)) >= 0) {
        goto out;
    }
    int64_t deadline = timeout_s > 0 ? now_ns() + (int64_t)(timeout_s * 1e9) : 0;

    if ((r = lf_loop_new(&loop)) != LF_RESULT_OK) {
        report("lf_loop_new", r);
        status = EXIT_FAILURE_;
        goto out;
    }
    /* The callback gets &app; it lives on our stack, so no userdata_free is needed. */
    if ((r = lf_session_new(loop, cfg, on_event, &app, NULL, &app.session)) != LF_RESULT_OK) {
        char msg[512];
        lf_last_error_message(msg, sizeof msg);
        fprintf(stderr, "lfcat: %s: %s\n", lf_result_name(r), msg);
        if (r == LF_RESULT_NOT_SUPPORTED && strstr(msg, "not supported yet") == NULL) {
            fputs("lfcat: this protocol is not supported yet\n", stderr);
        }
        /* Bad URL, unsupported protocol, bad TLS settings: the command line is at fault. */
        int usage = r == LF_RESULT_INVALID_PARAMETER || r == LF_RESULT_NOT_SUPPORTED ||
                    r == LF_RESULT_INVALID_UTF8 || r == LF_RESULT_TLS_CONFIG;
        status = usage ? EXIT_USAGE : EXIT_FAILURE_;
        goto out;
    }

    /* Embedded style: we own the loop and give the library bounded turns. */
    status = -1;
    while (!app.done) {
        int32_t wait_ms = -1;
        if (deadline) {
            int64_t left = deadline - now_ns();
            if (left <= 0) {
                status = EXIT_TIMEOUT;
                break;
            }
            int64_t ms = (left + 999999) / 1000000;
            wait_ms = ms > INT32_MAX ? INT32_MAX : (int32_t)ms;
        }
        if ((r = lf_loop_run_once(loop, wait_ms)) != LF_RESULT_OK) {
            report("lf_loop_run_once", r);
            status = EXIT_FAILURE_;
            break;
        }
    }
    if (app.done) {
        status = app.exit_code;
    } else if (status == EXIT_TIMEOUT) {
        fprintf(stderr, "lfcat: timed out after %g s (%ld data events)\n", timeout_s, app.received);
    }

out:
    lf_session_free(app.session); /* its callback never runs again after this */
    lf_loop_free(loop);
    lf_config_free(cfg);
    if (app.logging) {
        lf_set_log_callback(LF_LOG_LEVEL_OFF, NULL, NULL);
    }
    free(app.sends);
    free(app.subscribes);
    return status;
}
