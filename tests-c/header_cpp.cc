// Header hygiene, C++: include/livefeed.h must compile as C++11 with -Wall -Wextra
// -Werror -pedantic (extern "C" guard, typed enums), and link: the symbols below must
// resolve with C linkage. Exit status: 0 when the header and the library agree.
#include <livefeed.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <type_traits>

static_assert(LF_VERSION_NUMBER == ((LF_VERSION_MAJOR << 16) | (LF_VERSION_MINOR << 8) | LF_VERSION_PATCH),
              "LF_VERSION_NUMBER is inconsistent");
static_assert(sizeof(lf_result) == 4 && sizeof(lf_kind) == 4 && sizeof(lf_state) == 4 &&
                  sizeof(lf_protocol) == 4 && sizeof(lf_log_level) == 4,
              "enums are 32 bits wide, as in C");
static_assert(std::is_same<std::underlying_type<lf_result>::type, uint32_t>::value, "lf_result is uint32_t");
static_assert(std::is_standard_layout<lf_str>::value && std::is_standard_layout<lf_bytes>::value,
              "views are plain structs");

extern "C" {
static void on_event(void *, const lf_event *) {}
static void on_log(void *, lf_log_level, const char *) {}
static void on_free(void *) {}
}

int main() {
    lf_event_callback cb = on_event;
    lf_log_callback lcb = on_log;
    lf_userdata_free ufree = on_free;
    (void)cb;
    (void)lcb;
    (void)ufree;
    int bad = 0;
    if (lf_version_number() != LF_VERSION_NUMBER) {
        std::fprintf(stderr, "header_cpp: library 0x%06" PRIx32 ", header 0x%06x\n", lf_version_number(),
                     LF_VERSION_NUMBER);
        bad = 1;
    }
    lf_protocol p = LF_PROTOCOL_NAVIXY;
    if (lf_protocol_from_name("ws", &p) != LF_RESULT_OK || p != LF_PROTOCOL_WEB_SOCKET ||
        std::strcmp(lf_result_name(LF_RESULT_AUTH), "LF_RESULT_AUTH") != 0) {
        std::fprintf(stderr, "header_cpp: enum values disagree with the library\n");
        bad = 1;
    }
    lf_config *cfg = nullptr;
    if (lf_config_new(&cfg) != LF_RESULT_OK ||
        lf_config_set_timeout(cfg, LF_TIMEOUT_CLOSE, 100) != LF_RESULT_OK) {
        bad = 1;
    }
    lf_config_free(cfg);
    if (!bad) {
        std::printf("header_cpp: ok (%s, C++ %ld)\n", lf_version(), __cplusplus);
    }
    return bad;
}
