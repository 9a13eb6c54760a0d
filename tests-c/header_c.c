/*
 * Header hygiene, C: include/livefeed.h must compile cleanly as C99 and C11 with
 * -Wall -Wextra -Werror -pedantic, and its version macros must agree with each other
 * (checked at compile time) and with the linked library (checked at run time).
 * Exit status: 0 when everything agrees, 1 otherwise.
 */
#include <livefeed.h>

#include <stdio.h>
#include <string.h>

/* Compile time: the packed number is made of the three components. */
#if LF_VERSION_NUMBER != ((LF_VERSION_MAJOR << 16) | (LF_VERSION_MINOR << 8) | LF_VERSION_PATCH)
#error "LF_VERSION_NUMBER does not match LF_VERSION_MAJOR/MINOR/PATCH"
#endif
#if LF_VERSION_MAJOR < 0 || LF_VERSION_MAJOR > 255 || LF_VERSION_MINOR < 0 || LF_VERSION_MINOR > 255 || \
    LF_VERSION_PATCH < 0 || LF_VERSION_PATCH > 255
#error "a version component does not fit in one byte"
#endif
#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(LF_VERSION_NUMBER == ((LF_VERSION_MAJOR << 16) | (LF_VERSION_MINOR << 8) | LF_VERSION_PATCH),
               "LF_VERSION_NUMBER is inconsistent");
_Static_assert(sizeof(lf_result) == 4 && sizeof(lf_kind) == 4 && sizeof(lf_state) == 4,
               "enum-valued types are 32 bits wide");
#else
typedef char lf_check_version[(LF_VERSION_NUMBER ==
                               ((LF_VERSION_MAJOR << 16) | (LF_VERSION_MINOR << 8) | LF_VERSION_PATCH))
                                  ? 1
                                  : -1];
#endif

/* Every public type and callback type is usable by name. */
static void on_event(void *userdata, const lf_event *event) {
    (void)userdata;
    (void)event;
}
static void on_log(void *userdata, lf_log_level level, const char *message) {
    (void)userdata;
    (void)level;
    (void)message;
}
static void on_free(void *userdata) {
    (void)userdata;
}

int main(void) {
    int bad = 0;
    lf_event_callback cb = on_event;
    lf_log_callback lcb = on_log;
    lf_userdata_free ufree = on_free;
    lf_str s = {"", 0};
    lf_bytes b = {NULL, 0};
    lf_config *cfg = NULL;
    lf_loop *loop = NULL;
    lf_session *session = NULL;
    lf_protocol protocol = LF_PROTOCOL_WEB_SOCKET;
    (void)cb;
    (void)lcb;
    (void)ufree;
    (void)s;
    (void)b;
    (void)session;

    if (lf_version_number() != LF_VERSION_NUMBER) {
        fprintf(stderr, "header_c: library version 0x%06x, header 0x%06x\n", (unsigned)lf_version_number(),
                (unsigned)LF_VERSION_NUMBER);
        bad = 1;
    }
    const char *v = lf_version();
    char expect[32];
    snprintf(expect, sizeof expect, "livefeed/%d.%d.%d", LF_VERSION_MAJOR, LF_VERSION_MINOR, LF_VERSION_PATCH);
    if (v == NULL || strncmp(v, expect, strlen(expect)) != 0 ||
        (v[strlen(expect)] != '\0' && v[strlen(expect)] != ' ')) {
        fprintf(stderr, "header_c: lf_version() is '%s', expected it to start with '%s'\n", v ? v : "(null)",
                expect);
        bad = 1;
    }
    if (LF_RESULT_OK != 0 || strcmp(lf_result_name(LF_RESULT_OK), "LF_RESULT_OK") != 0 ||
        strcmp(lf_event_kind_name(LF_KIND_MESSAGE), "message") != 0 ||
        strcmp(lf_state_name(LF_STATE_OPEN), "open") != 0) {
        fprintf(stderr, "header_c: names do not match the header's enum values\n");
        bad = 1;
    }
    if (lf_protocol_from_name("ws", &protocol) != LF_RESULT_OK || protocol != LF_PROTOCOL_WEB_SOCKET) {
        fprintf(stderr, "header_c: lf_protocol_from_name(\"ws\") failed\n");
        bad = 1;
    }
    /* The _new/_free pairs link and _free(NULL) is a no-op. */
    if (lf_config_new(&cfg) != LF_RESULT_OK || lf_loop_new(&loop) != LF_RESULT_OK) {
        fprintf(stderr, "header_c: cannot create a config and a loop\n");
        bad = 1;
    }
    lf_config_free(cfg);
    lf_loop_free(loop);
    lf_config_free(NULL);
    lf_loop_free(NULL);
    lf_session_free(NULL);
    if (!bad) {
        printf("header_c: ok (%s, C %ld)\n", lf_version(), (long)__STDC_VERSION__);
    }
    return bad;
}
