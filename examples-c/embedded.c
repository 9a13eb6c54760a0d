/*
 * embedded: the host owns the main loop (as firmware or a GUI toolkit would).
 *
 *   usage: embedded ws://host:port/path COUNT
 *
 * livefeed never blocks here: the host polls the loop's file descriptor together with
 * its own (stdin, to show the idea), sleeps no longer than lf_loop_next_timeout()
 * allows, and calls lf_loop_run_once(loop, 0) whenever the fd is readable or a library
 * deadline is due. Prints text messages; exits 0 after COUNT of them, 1 on failure or
 * if the feed ends first.
 */
#define _POSIX_C_SOURCE 200809L

#include <livefeed.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    long wanted;
    long seen;
    int ended; /* the session closed (after an error or a close) */
    int done;
} host_t;

static void on_event(void *userdata, const lf_event *ev) {
    host_t *host = userdata;
    if (host->done) {
        return;
    }
    switch (lf_event_kind(ev)) {
    case LF_KIND_MESSAGE: {
        lf_str text = lf_event_text(ev);
        printf("%.*s\n", (int)text.len, text.data);
        fflush(stdout);
        if (++host->seen >= host->wanted) {
            host->done = 1;
        }
        break;
    }
    case LF_KIND_ERROR: {
        lf_str why = lf_event_text(ev);
        fprintf(stderr, "embedded: %s: %.*s\n", lf_result_name(lf_event_result(ev)), (int)why.len, why.data);
        break;
    }
    case LF_KIND_STATE:
        if (lf_event_state(ev) == LF_STATE_CLOSED) {
            host->ended = 1;
            host->done = 1;
        }
        break;
    default:
        break;
    }
}

static int failed(lf_result r, const char *what) {
    if (r == LF_RESULT_OK) {
        return 0;
    }
    char msg[256];
    lf_last_error_message(msg, sizeof msg);
    fprintf(stderr, "embedded: %s: %s: %s\n", what, lf_result_name(r), msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 3 || atol(argv[2]) < 1) {
        fprintf(stderr, "usage: %s URL COUNT\n", argv[0]);
        return 2;
    }
    host_t host = {atol(argv[2]), 0, 0, 0};
    lf_loop *loop = NULL;
    lf_config *cfg = NULL;
    lf_session *session = NULL;
    int status = 1;

    if (failed(lf_loop_new(&loop), "lf_loop_new") || failed(lf_config_new(&cfg), "lf_config_new") ||
        failed(lf_config_set_url(cfg, argv[1]), "lf_config_set_url") ||
        failed(lf_session_new(loop, cfg, on_event, &host, NULL, &session), "lf_session_new")) {
        goto out;
    }

    /* The host's own poll set: livefeed's fd plus whatever else the host watches. */
    struct pollfd fds[2] = {
        {.fd = lf_loop_fd(loop), .events = POLLIN, .revents = 0},
        {.fd = isatty(STDIN_FILENO) ? STDIN_FILENO : -1, .events = POLLIN, .revents = 0},
    };
    unsigned long turns = 0;
    while (!host.done) {
        int32_t wait_ms;
        if (failed(lf_loop_next_timeout(loop, &wait_ms), "lf_loop_next_timeout")) {
            goto out;
        }
        /* wait_ms is -1 (nothing scheduled: wait for the fd), 0 (work due now) or a bound. */
        int n = poll(fds, 2, wait_ms);
        if (n < 0 && errno != EINTR) {
            perror("embedded: poll");
            goto out;
        }
        if (n > 0 && (fds[1].revents & POLLIN)) {
            char line[256]; /* the host's own work: here, just echo what is typed */
            ssize_t got = read(STDIN_FILENO, line, sizeof line);
            if (got <= 0) {
                fds[1].fd = -1;
            } else {
                fprintf(stderr, "embedded: host read %zd bytes from stdin\n", got);
            }
        }
        /* Readable fd or a deadline reached (n == 0): let livefeed do its work without
         * blocking. Calling it a little too often is harmless. */
        if (n == 0 || (n > 0 && fds[0].revents != 0)) {
            if (failed(lf_loop_run_once(loop, 0), "lf_loop_run_once")) {
                goto out;
            }
            turns++;
        }
    }
    status = host.seen >= host.wanted ? 0 : 1;
    if (host.ended && status != 0) {
        fprintf(stderr, "embedded: the feed ended after %ld of %ld messages\n", host.seen, host.wanted);
    }
    fprintf(stderr, "embedded: %lu loop turns\n", turns);

out:
    lf_session_free(session);
    lf_loop_free(loop);
    lf_config_free(cfg);
    return status;
}
