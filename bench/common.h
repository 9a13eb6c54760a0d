/* Shared by the livefeed benchmark clients: checked calls (clocks from process.h). BENCH_NAME names the
 * program in error messages. */
#ifndef LIVEFEED_BENCH_COMMON_H
#define LIVEFEED_BENCH_COMMON_H

#include <livefeed.h>
#include <stdio.h>

#include "process.h"

/* How long one loop turn may wait, so deadlines are checked often enough. */
#define TURN_MS 100

static void fail_call(const char *what, lf_result r) {
    char msg[512];
    lf_last_error_message(msg, sizeof msg);
    fprintf(stderr, "%s: %s failed: %s: %s\n", BENCH_NAME, what, lf_result_name(r), msg);
}

#define CHECK(call)                                                                                \
    do {                                                                                           \
        lf_result r_ = (call);                                                                     \
        if (r_ != LF_RESULT_OK) {                                                                  \
            fail_call(#call, r_);                                                                  \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

/* Drives `lp` from this thread until the callback sets *done or *failed, or `limit_s`
 * seconds pass. Returns 0, or 1 after reporting a failed lf_loop_run_once. */
static int run_until(lf_loop *lp, const int *done, const int *failed, double limit_s) {
    double deadline = now_s() + limit_s;
    while (!*done && !*failed && now_s() < deadline) {
        lf_result r = lf_loop_run_once(lp, TURN_MS);
        if (r != LF_RESULT_OK) {
            fail_call("lf_loop_run_once", r);
            return 1;
        }
    }
    return 0;
}

#endif
