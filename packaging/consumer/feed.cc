// feed: prints the first COUNT text messages of a WebSocket feed, from C++.
//   usage: feed URL [COUNT]
// The C API wrapped the way a C++ program would: owning handles with unique_ptr, a lambda
// as the event handler (through the userdata pointer), exceptions kept out of callbacks.
#include <livefeed.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

void check(lf_result r, const char *what) {
    if (r == LF_RESULT_OK) return;
    char msg[256];
    lf_last_error_message(msg, sizeof msg);
    throw std::runtime_error(std::string(what) + ": " + lf_result_name(r) + ": " + msg);
}

struct LoopFree { void operator()(lf_loop *p) const { lf_loop_free(p); } };
struct ConfigFree { void operator()(lf_config *p) const { lf_config_free(p); } };
struct SessionFree { void operator()(lf_session *p) const { lf_session_free(p); } };
using Handler = std::function<void(const lf_event *)>;

std::string_view view(lf_str s) { return {s.data, s.len}; }

}  // namespace

int main(int argc, char **argv) try {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s URL [COUNT]\n", argv[0]);
        return 2;
    }
    const long wanted = argc > 2 ? std::atol(argv[2]) : 5;
    if (lf_version_number() != LF_VERSION_NUMBER) throw std::runtime_error("header and library differ");

    lf_loop *raw_loop = nullptr;
    check(lf_loop_new(&raw_loop), "lf_loop_new");
    std::unique_ptr<lf_loop, LoopFree> loop(raw_loop);

    lf_config *raw_cfg = nullptr;
    check(lf_config_new(&raw_cfg), "lf_config_new");
    std::unique_ptr<lf_config, ConfigFree> cfg(raw_cfg);
    check(lf_config_set_url(cfg.get(), argv[1]), "url");

    long seen = 0;
    bool ended = false;
    // The handler runs on this thread, inside lf_loop_run; the event is borrowed.
    Handler handler = [&](const lf_event *ev) {
        switch (lf_event_kind(ev)) {
        case LF_KIND_MESSAGE: {
            double t = 0;
            bool has_t = lf_event_json_number(ev, "/temperature", &t) == LF_RESULT_OK;
            std::printf("%.*s%s\n", int(view(lf_event_text(ev)).size()), lf_event_text(ev).data,
                        has_t ? "" : "  (no temperature)");
            if (++seen == wanted) lf_loop_stop(loop.get());
            break;
        }
        case LF_KIND_STATE:
            if (lf_event_state(ev) == LF_STATE_CLOSED) {
                ended = true;
                lf_loop_stop(loop.get());
            }
            break;
        default:
            break;
        }
    };
    // A captureless lambda converts to the C function pointer; userdata carries the handler.
    // No exception may leave it (it is called from C).
    auto trampoline = [](void *userdata, const lf_event *ev) {
        try {
            (*static_cast<Handler *>(userdata))(ev);
        } catch (...) {
            std::fputs("feed: exception in the event handler\n", stderr);
        }
    };
    lf_session *raw_session = nullptr;
    check(lf_session_new(loop.get(), cfg.get(), trampoline, &handler, nullptr, &raw_session), "lf_session_new");
    std::unique_ptr<lf_session, SessionFree> session(raw_session);  // freed before the loop
    cfg.reset();  // the session keeps its own copy

    check(lf_loop_run(loop.get()), "lf_loop_run");
    session.reset();  // no callback runs after this returns: `handler` may go
    return !ended && seen == wanted ? 0 : 1;
} catch (const std::exception &e) {
    std::fprintf(stderr, "feed: %s\n", e.what());
    return 1;
}
