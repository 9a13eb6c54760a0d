/*
 * threads: managed mode (lf_loop_start) and sending from many threads at once.
 *
 *   usage: threads ws://host:port/echo [THREADS [PER_THREAD [SEND_BUFFER]]]
 *          (defaults: 4 threads, 1000 messages each, 4096-byte send buffer)
 *
 * The URL must be an echo server. Once the session is open, THREADS pthreads each send
 * PER_THREAD text messages "t<i>-<n>" through the same session. The send buffer is kept
 * small so that sends really meet back-pressure: a sender that gets
 * LF_RESULT_BACKPRESSURE waits (bounded) on a condition variable signalled by the
 * LF_KIND_WRITABLE event, then retries. The callback counts echoes (an atomic) and checks
 * that each thread's messages come back in the order that thread sent them.
 *
 * Then the main thread frees the session while more echoes are still in flight, and
 * checks that no callback runs after lf_session_free returned: a second "probe"
 * session round-trips a message through the same loop, which proves the loop went on
 * running (and handled the release) after the free. Prints "ok <n> echoes", exit 0.
 */
#define _POSIX_C_SOURCE 200809L

#include <livefeed.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 64
#define OPEN_WAIT_S 10    /* bound on connecting */
#define ECHO_WAIT_S 20    /* bound on sending everything and getting every echo back */
#define WRITABLE_WAIT_MS 1000 /* bound on one wait for LF_KIND_WRITABLE before retrying */
#define LATE_BURST 200    /* messages still in flight when the session is freed */

/* State shared by the main thread, the senders and the loop thread (callbacks). */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;      /* signalled on: open, closed, writable, all echoes, probe */
    int open;                 /* guarded by mu */
    int closed;               /* guarded by mu */
    unsigned long writable;   /* guarded by mu: number of LF_KIND_WRITABLE events seen */
    int probe_done;           /* guarded by mu */

    lf_session *session;
    long threads, per_thread, expected;
    atomic_long echoes;        /* "t<i>-<n>" echoes received */
    atomic_long late_echoes;   /* "late-<n>" echoes received before the free returned */
    atomic_long bad_echoes;    /* malformed or out of order */
    atomic_long backpressure;  /* sends refused with LF_RESULT_BACKPRESSURE */
    atomic_long stalls;        /* waits for WRITABLE that hit their bound */
    atomic_long send_errors;
    atomic_int freed;          /* set once lf_session_free returned */
    atomic_long after_free;    /* callbacks seen after that: must stay 0 */
    atomic_int userdata_freed; /* how many times userdata_free ran: must end at 1 */
    long next_seq[MAX_THREADS]; /* loop thread only: next n expected from each thread */
} shared_t;

static shared_t S;

static void signal_all(void) {
    pthread_cond_broadcast(&S.cond);
}

/* Absolute CLOCK_REALTIME time `ms` from now, for pthread_cond_timedwait. */
static struct timespec deadline_in(long ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Waits (mu held) until *flag is nonzero or the deadline passes. Returns the flag. */
static int wait_flag(const int *flag, const struct timespec *until) {
    while (!*flag) {
        if (pthread_cond_timedwait(&S.cond, &S.mu, until) == ETIMEDOUT) {
            break;
        }
    }
    return *flag;
}

/* ---- callbacks (they run on the library's loop thread) ---------------------------- */

static void check_echo(const char *p, size_t len) {
    char buf[64];
    if (len >= sizeof buf) {
        atomic_fetch_add(&S.bad_echoes, 1);
        return;
    }
    memcpy(buf, p, len);
    buf[len] = '\0';
    long i, n;
    char tail;
    if (sscanf(buf, "late-%ld%c", &n, &tail) == 1) {
        atomic_fetch_add(&S.late_echoes, 1);
        return;
    }
    if (sscanf(buf, "t%ld-%ld%c", &i, &n, &tail) != 2 || i < 0 || i >= S.threads || n != S.next_seq[i]) {
        fprintf(stderr, "threads: unexpected echo '%s'\n", buf);
        atomic_fetch_add(&S.bad_echoes, 1);
        return;
    }
    S.next_seq[i]++;
    if (atomic_fetch_add(&S.echoes, 1) + 1 == S.expected) {
        pthread_mutex_lock(&S.mu);
        signal_all();
        pthread_mutex_unlock(&S.mu);
    }
}

static void on_event(void *userdata, const lf_event *ev) {
    (void)userdata;
    if (atomic_load(&S.freed)) {
        /* lf_session_free promised this never happens. Count it; main reports it. */
        atomic_fetch_add(&S.after_free, 1);
        return;
    }
    switch (lf_event_kind(ev)) {
    case LF_KIND_MESSAGE: {
        lf_str text = lf_event_text(ev);
        check_echo(text.data, text.len);
        break;
    }
    case LF_KIND_WRITABLE:
        pthread_mutex_lock(&S.mu);
        S.writable++;
        signal_all();
        pthread_mutex_unlock(&S.mu);
        break;
    case LF_KIND_STATE: {
        lf_state state = lf_event_state(ev);
        if (state == LF_STATE_OPEN || state == LF_STATE_CLOSED) {
            pthread_mutex_lock(&S.mu);
            S.open |= state == LF_STATE_OPEN;
            S.closed |= state == LF_STATE_CLOSED;
            signal_all();
            pthread_mutex_unlock(&S.mu);
        }
        break;
    }
    case LF_KIND_ERROR: {
        lf_str why = lf_event_text(ev);
        fprintf(stderr, "threads: %s: %.*s\n", lf_result_name(lf_event_result(ev)), (int)why.len, why.data);
        break;
    }
    default:
        break;
    }
}

static void on_userdata_free(void *userdata) {
    (void)userdata;
    atomic_fetch_add(&S.userdata_freed, 1);
}

/* The probe session: its echo proves the loop kept running after the free. */
static void on_probe(void *userdata, const lf_event *ev) {
    (void)userdata;
    if (lf_event_kind(ev) == LF_KIND_MESSAGE ||
        (lf_event_kind(ev) == LF_KIND_STATE && lf_event_state(ev) == LF_STATE_CLOSED)) {
        pthread_mutex_lock(&S.mu);
        S.probe_done = lf_event_kind(ev) == LF_KIND_MESSAGE ? 1 : -1;
        signal_all();
        pthread_mutex_unlock(&S.mu);
    }
}

/* ---- sender threads --------------------------------------------------------------- */

/* Sends one message, waiting out back-pressure. Returns 0, or -1 if the session failed
 * or `until` passed. */
static int send_one(const char *msg, const struct timespec *until) {
    for (;;) {
        /* Note the WRITABLE count *before* trying, so an event that arrives between the
         * refusal and our wait is not missed. */
        pthread_mutex_lock(&S.mu);
        unsigned long seen = S.writable;
        pthread_mutex_unlock(&S.mu);

        lf_result r = lf_session_send_text(S.session, msg, strlen(msg));
        if (r == LF_RESULT_OK) {
            return 0;
        }
        if (r != LF_RESULT_BACKPRESSURE) {
            char err[256];
            lf_last_error_message(err, sizeof err);
            fprintf(stderr, "threads: send: %s: %s\n", lf_result_name(r), err);
            atomic_fetch_add(&S.send_errors, 1);
            return -1;
        }
        atomic_fetch_add(&S.backpressure, 1);
        struct timespec bound = deadline_in(WRITABLE_WAIT_MS);
        pthread_mutex_lock(&S.mu);
        int rc = 0;
        while (S.writable == seen && !S.closed && rc != ETIMEDOUT) {
            rc = pthread_cond_timedwait(&S.cond, &S.mu, &bound);
        }
        int closed = S.closed;
        pthread_mutex_unlock(&S.mu);
        if (closed) {
            return -1;
        }
        if (rc == ETIMEDOUT) {
            /* No WRITABLE within the bound: retry anyway (the buffer may have drained). */
            atomic_fetch_add(&S.stalls, 1);
        }
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (now.tv_sec > until->tv_sec || (now.tv_sec == until->tv_sec && now.tv_nsec >= until->tv_nsec)) {
            return -1;
        }
    }
}

typedef struct {
    long index;
    struct timespec until;
} sender_t;

static void *sender(void *arg) {
    const sender_t *me = arg;
    char msg[64];
    for (long n = 0; n < S.per_thread; n++) {
        snprintf(msg, sizeof msg, "t%ld-%ld", me->index, n);
        if (send_one(msg, &me->until) != 0) {
            break;
        }
    }
    return NULL;
}

/* ---- main ------------------------------------------------------------------------- */

static int failed(lf_result r, const char *what) {
    if (r == LF_RESULT_OK) {
        return 0;
    }
    char msg[256];
    lf_last_error_message(msg, sizeof msg);
    fprintf(stderr, "threads: %s: %s: %s\n", what, lf_result_name(r), msg);
    return 1;
}

static long arg_or(int argc, char **argv, int i, long dflt, long lo, long hi) {
    if (argc <= i) {
        return dflt;
    }
    char *end;
    long v = strtol(argv[i], &end, 10);
    return (*end != '\0' || end == argv[i] || v < lo || v > hi) ? -1 : v;
}

int main(int argc, char **argv) {
    long send_buffer;
    if (argc < 2 || argc > 5 || (S.threads = arg_or(argc, argv, 2, 4, 1, MAX_THREADS)) < 0 ||
        (S.per_thread = arg_or(argc, argv, 3, 1000, 1, 10000000)) < 0 ||
        (send_buffer = arg_or(argc, argv, 4, 4096, 1, 1L << 30)) < 0) {
        fprintf(stderr, "usage: %s URL [THREADS (1-%d) [PER_THREAD [SEND_BUFFER]]]\n", argv[0], MAX_THREADS);
        return 2;
    }
    S.expected = S.threads * S.per_thread;
    pthread_mutex_init(&S.mu, NULL);
    pthread_cond_init(&S.cond, NULL);

    lf_loop *loop = NULL;
    lf_config *cfg = NULL;
    lf_session *probe = NULL;
    pthread_t tids[MAX_THREADS];
    sender_t senders[MAX_THREADS];
    long started = 0;
    int created = 0; /* the main session existed: its userdata_free must run exactly once */
    int ok = 0;

    if (failed(lf_loop_new(&loop), "lf_loop_new") || failed(lf_config_new(&cfg), "lf_config_new") ||
        failed(lf_config_set_url(cfg, argv[1]), "lf_config_set_url") ||
        failed(lf_config_set_limit(cfg, LF_LIMIT_SEND_BUFFER, (size_t)send_buffer), "lf_config_set_limit") ||
        /* Managed mode: the library runs the loop (and our callbacks) on its own thread. */
        failed(lf_loop_start(loop), "lf_loop_start") ||
        failed(lf_session_new(loop, cfg, on_event, &S, on_userdata_free, &S.session), "lf_session_new")) {
        goto out;
    }
    created = 1;

    /* 1. Wait (bounded) for the session to open. */
    struct timespec until = deadline_in(OPEN_WAIT_S * 1000L);
    pthread_mutex_lock(&S.mu);
    while (!S.open && !S.closed && pthread_cond_timedwait(&S.cond, &S.mu, &until) != ETIMEDOUT) {
    }
    int open = S.open && !S.closed;
    pthread_mutex_unlock(&S.mu);
    if (!open) {
        fprintf(stderr, "threads: the session did not open\n");
        goto out;
    }

    /* 2. Senders: all of them share one session handle. */
    until = deadline_in(ECHO_WAIT_S * 1000L);
    for (; started < S.threads; started++) {
        senders[started].index = started;
        senders[started].until = until;
        if (pthread_create(&tids[started], NULL, sender, &senders[started]) != 0) {
            fprintf(stderr, "threads: pthread_create failed\n");
            break;
        }
    }
    for (long i = 0; i < started; i++) {
        pthread_join(tids[i], NULL);
    }
    if (started < S.threads) {
        goto out;
    }

    /* 3. Wait (bounded) for every echo. */
    pthread_mutex_lock(&S.mu);
    while (atomic_load(&S.echoes) < S.expected && !S.closed &&
           pthread_cond_timedwait(&S.cond, &S.mu, &until) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&S.mu);
    long got = atomic_load(&S.echoes);
    if (got != S.expected) {
        fprintf(stderr, "threads: %ld of %ld echoes arrived\n", got, S.expected);
        goto out;
    }

    /* 4. Free the session while more echoes are on their way. From here on the callback
     *    must never run again, whatever arrives. */
    char late[32];
    for (int k = 0; k < LATE_BURST; k++) {
        snprintf(late, sizeof late, "late-%d", k);
        if (lf_session_send_text(S.session, late, strlen(late)) != LF_RESULT_OK) {
            break; /* back-pressure is fine here: the burst only needs to be in flight */
        }
    }
    lf_session_free(S.session);
    S.session = NULL;
    atomic_store(&S.freed, 1);
    if (atomic_load(&S.userdata_freed) != 1) {
        /* Allowed to happen later on the loop thread; checked again after lf_loop_free. */
        fprintf(stderr, "threads: note: userdata_free had not run when lf_session_free returned\n");
    }

    /* 5. Probe: a second session's echo proves the loop ran on (and handled the release,
     *    queued before it) after the free. Nothing is sent on the freed session. */
    if (failed(lf_session_new(loop, cfg, on_probe, NULL, NULL, &probe), "lf_session_new (probe)") ||
        failed(lf_session_send_text(probe, "probe", 5), "lf_session_send_text (probe)")) {
        goto out;
    }
    until = deadline_in(OPEN_WAIT_S * 1000L);
    pthread_mutex_lock(&S.mu);
    int probed = wait_flag(&S.probe_done, &until);
    pthread_mutex_unlock(&S.mu);
    if (probed != 1) {
        fprintf(stderr, "threads: the probe session got no echo\n");
        goto out;
    }
    ok = 1;

out:
    lf_session_free(S.session);
    lf_session_free(probe);
    lf_loop_free(loop); /* joins the loop thread: no callback of any kind runs after this */
    lf_config_free(cfg);
    fprintf(stderr,
            "threads: %ld echoes, %ld late echoes before the free, %ld back-pressure refusals, "
            "%ld writable waits timed out, %ld callbacks after free\n",
            atomic_load(&S.echoes), atomic_load(&S.late_echoes), atomic_load(&S.backpressure),
            atomic_load(&S.stalls), atomic_load(&S.after_free));
    if (atomic_load(&S.after_free) != 0) {
        fprintf(stderr, "threads: FAIL: a callback ran after lf_session_free returned\n");
        ok = 0;
    }
    if (atomic_load(&S.bad_echoes) != 0 || atomic_load(&S.send_errors) != 0) {
        fprintf(stderr, "threads: FAIL: %ld bad echoes, %ld send errors\n", atomic_load(&S.bad_echoes),
                atomic_load(&S.send_errors));
        ok = 0;
    }
    if (created && atomic_load(&S.userdata_freed) != 1) {
        fprintf(stderr, "threads: FAIL: userdata_free ran %d times (want 1)\n", atomic_load(&S.userdata_freed));
        ok = 0;
    }
    pthread_cond_destroy(&S.cond);
    pthread_mutex_destroy(&S.mu);
    if (!ok) {
        return 1;
    }
    printf("ok %ld echoes\n", atomic_load(&S.echoes));
    return 0;
}
