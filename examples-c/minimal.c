/* minimal: connect to a WebSocket feed and print its first text messages.
 *   usage: minimal ws://host:port/path [COUNT]      (COUNT defaults to 5)
 * Exits 0 after COUNT messages, 1 if anything fails or the feed ends first. */
#include <livefeed.h>
#include <stdio.h>
#include <stdlib.h>

/* Our own state, handed to the callback through its `userdata` pointer. */
struct app { lf_loop *loop; long wanted, seen; };

/* Every fallible call returns an lf_result; LF_RESULT_OK is 0. */
static int check(lf_result r, const char *what) {
    if (r == LF_RESULT_OK) return 0;
    char msg[256];
    lf_last_error_message(msg, sizeof msg);           /* why the last call on this thread failed */
    fprintf(stderr, "%s: %s: %s\n", what, lf_result_name(r), msg);
    return 1;
}

/* The library calls this for every event of the session, on the thread that runs the
 * loop (here: main, inside lf_loop_run). `ev` is only valid until we return. */
static void on_event(void *userdata, const lf_event *ev) {
    struct app *app = userdata;
    if (app->seen >= app->wanted) return;             /* done: ignore the rest */
    lf_kind kind = lf_event_kind(ev);
    if (kind == LF_KIND_MESSAGE) {
        lf_str text = lf_event_text(ev);              /* not NUL-terminated: use len */
        printf("%.*s\n", (int)text.len, text.data);
        if (++app->seen == app->wanted)               /* enough: make lf_loop_run return */
            check(lf_loop_stop(app->loop), "lf_loop_stop");
    } else if (kind == LF_KIND_ERROR) {
        lf_str why = lf_event_text(ev);
        fprintf(stderr, "error %s: %.*s\n", lf_result_name(lf_event_result(ev)), (int)why.len, why.data);
    } else if (kind == LF_KIND_STATE && lf_event_state(ev) == LF_STATE_CLOSED) {
        check(lf_loop_stop(app->loop), "lf_loop_stop"); /* the feed ended: stop waiting */
    }
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s URL [COUNT]\n", argv[0]); return 2; }
    struct app app = { NULL, argc > 2 ? atol(argv[2]) : 5, 0 };
    if (app.wanted < 1) { fprintf(stderr, "COUNT must be at least 1\n"); return 2; }
    lf_config *cfg = NULL;
    lf_session *session = NULL;
    int failed = 1;

    /* 1. A loop drives any number of sessions. */
    if (check(lf_loop_new(&app.loop), "lf_loop_new")) goto out;
    /* 2. A config says where to connect (and, optionally, headers, TLS, timeouts...). */
    if (check(lf_config_new(&cfg), "lf_config_new")) goto out;
    if (check(lf_config_set_url(cfg, argv[1]), "lf_config_set_url")) goto out;
    /* 3. A session connects using the config; events go to on_event(&app, ...).
     *    `app` lives on this stack, so there is no userdata_free function (NULL). */
    if (check(lf_session_new(app.loop, cfg, on_event, &app, NULL, &session), "lf_session_new")) goto out;
    /* 4. Run the loop on this thread until on_event calls lf_loop_stop. */
    if (check(lf_loop_run(app.loop), "lf_loop_run")) goto out;
    failed = app.seen < app.wanted;

out: /* 5. Free in reverse order; freeing NULL is a no-op, so this is safe on any path. */
    lf_session_free(session);
    lf_loop_free(app.loop);
    lf_config_free(cfg);
    return failed;
}
