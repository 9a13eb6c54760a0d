// Kotlin/JVM binding of livefeed through JNA (https://github.com/java-native-access/jna).
//
// Two layers in one file:
//  - `LibLivefeed`: the C API of include/livefeed.h, one JNA method per C function, as is.
//  - the idiomatic wrapper: `Loop`, `Config { ... }`, `Session` (Closeable, so `use { }`
//    works), `Event`, callbacks as Kotlin lambdas, failures as `LivefeedException`.
//
// Needs JNA 5 (Debian: libjna-java, /usr/share/java/jna.jar) and liblivefeed.so on the
// library path (-Djna.library.path=PREFIX/lib, or LD_LIBRARY_PATH). Written for Kotlin 1.3
// and later. Guide: docs/kotlin.md.
//
// Threads: callbacks run on the thread that drives the loop (Loop.run on a thread of yours,
// or the library's own thread after Loop.start); JNA attaches that thread to the JVM. Every
// Session method may be called from any thread, including from inside a callback.
// An Event is valid only while its callback runs: copy what you need.

package livefeed

import com.sun.jna.Callback
import com.sun.jna.CallbackThreadInitializer
import com.sun.jna.IntegerType
import com.sun.jna.Library
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.Structure
import com.sun.jna.ptr.ByteByReference
import com.sun.jna.ptr.DoubleByReference
import com.sun.jna.ptr.IntByReference
import com.sun.jna.ptr.LongByReference
import com.sun.jna.ptr.PointerByReference
import java.io.Closeable
import java.util.Collections
import java.util.concurrent.ConcurrentHashMap

// ---- the C API, as is ------------------------------------------------------------------

/** C `size_t`. */
class SizeT @JvmOverloads constructor(value: Long = 0) : IntegerType(Native.SIZE_T_SIZE, value, true) {
    // kotlin.Number declares these abstract; java.lang.Number (IntegerType's base) does not.
    override fun toByte(): Byte = toLong().toByte()
    override fun toChar(): Char = toLong().toChar()
    override fun toShort(): Short = toLong().toShort()
}

/** C `lf_str`: borrowed UTF-8, not NUL-terminated. */
@Structure.FieldOrder("data", "len")
open class LfStr : Structure() {
    @JvmField var data: Pointer? = null
    @JvmField var len: SizeT = SizeT()

    /** Returned by value. */
    class ByValue : LfStr(), Structure.ByValue

    fun string(): String {
        val n = len.toLong()
        val p = data
        return if (n == 0L || p == null) "" else String(p.getByteArray(0, n.toInt()), Charsets.UTF_8)
    }
}

/** C `lf_bytes`: borrowed bytes. */
@Structure.FieldOrder("data", "len")
open class LfBytes : Structure() {
    @JvmField var data: Pointer? = null
    @JvmField var len: SizeT = SizeT()

    /** Returned by value. */
    class ByValue : LfBytes(), Structure.ByValue

    fun bytes(): ByteArray {
        val n = len.toLong()
        val p = data
        return if (n == 0L || p == null) ByteArray(0) else p.getByteArray(0, n.toInt())
    }
}

/** C `lf_stats`: a session's counters. */
@Structure.FieldOrder(
    "state", "last_error", "reconnects", "messages_in", "bytes_in", "messages_out", "bytes_out",
    "dropped", "rtt_us"
)
class LfStats : Structure() {
    @JvmField var state: Int = 0
    @JvmField var last_error: Int = 0
    @JvmField var reconnects: Long = 0
    @JvmField var messages_in: Long = 0
    @JvmField var bytes_in: Long = 0
    @JvmField var messages_out: Long = 0
    @JvmField var bytes_out: Long = 0
    @JvmField var dropped: Long = 0
    @JvmField var rtt_us: Long = 0
}

/** C `lf_event_callback`. */
interface LfEventCallback : Callback {
    fun invoke(userdata: Pointer?, event: Pointer?)
}

/** C `lf_log_callback`. */
interface LfLogCallback : Callback {
    fun invoke(userdata: Pointer?, level: Int, message: Pointer?)
}

/**
 * include/livefeed.h, one method per function. Enums are `Int` (the C ABI passes
 * uint32_t), C `bool` is `Byte` (one byte; JNA's `Boolean` would be a 4-byte int).
 * Strings go in as UTF-8 (OPTION_STRING_ENCODING).
 */
@Suppress("FunctionName")
interface LibLivefeed : Library {
    fun lf_config_new(out: PointerByReference): Int
    fun lf_config_free(config: Pointer?)
    fun lf_config_set_url(config: Pointer, url: String): Int
    fun lf_config_set_protocol(config: Pointer, protocol: Int): Int
    fun lf_protocol_from_name(name: String, out: IntByReference): Int
    fun lf_config_add_header(config: Pointer, name: String, value: String): Int
    fun lf_config_add_subprotocol(config: Pointer, subprotocol: String): Int
    fun lf_config_set_origin(config: Pointer, origin: String?): Int
    fun lf_config_add_cookie(config: Pointer, name: String, value: String): Int
    fun lf_config_add_ca_file(config: Pointer, path: String): Int
    fun lf_config_add_ca_pem(config: Pointer, pem: ByteArray, len: SizeT): Int
    fun lf_config_pin_certificate_file(config: Pointer, path: String): Int
    fun lf_config_pin_certificate_pem(config: Pointer, pem: ByteArray, len: SizeT): Int
    fun lf_config_set_insecure(config: Pointer, insecure: Byte): Int
    fun lf_config_set_timeout(config: Pointer, which: Int, ms: Int): Int
    fun lf_config_set_limit(config: Pointer, which: Int, value: SizeT): Int
    fun lf_config_set_reconnect(config: Pointer, minMs: Int, maxMs: Int, maxAttempts: Int): Int
    fun lf_config_set_outbox(config: Pointer, maxMessages: SizeT, overflow: Int): Int
    fun lf_config_set_proxy(config: Pointer, proxy: String?): Int
    fun lf_config_set_option(config: Pointer, key: String, value: String): Int

    fun lf_event_kind(event: Pointer): Int
    fun lf_event_state(event: Pointer): Int
    fun lf_event_topic(event: Pointer): LfStr.ByValue
    fun lf_event_type(event: Pointer): LfStr.ByValue
    fun lf_event_text(event: Pointer): LfStr.ByValue
    fun lf_event_data(event: Pointer): LfBytes.ByValue
    fun lf_event_result(event: Pointer): Int
    fun lf_event_namespace(event: Pointer): LfStr.ByValue
    fun lf_event_ack_id(event: Pointer): Long
    fun lf_event_attachment_count(event: Pointer): SizeT
    fun lf_event_attachment(event: Pointer, index: SizeT): LfBytes.ByValue
    fun lf_event_close_code(event: Pointer): Short
    fun lf_event_json_string(event: Pointer, pointer: String, out: LfStr): Int
    fun lf_event_json_number(event: Pointer, pointer: String, out: DoubleByReference): Int
    fun lf_event_json_bool(event: Pointer, pointer: String, out: ByteByReference): Int
    fun lf_event_json_has(event: Pointer, pointer: String): Byte
    fun lf_event_json_raw(event: Pointer, pointer: String, out: LfStr): Int
    fun lf_event_kind_name(kind: Int): String
    fun lf_state_name(state: Int): String

    fun lf_set_log_callback(maxLevel: Int, callback: LfLogCallback?, userdata: Pointer?): Int

    fun lf_loop_new(out: PointerByReference): Int
    fun lf_loop_free(loop: Pointer?)
    fun lf_loop_run(loop: Pointer): Int
    fun lf_loop_run_once(loop: Pointer, timeoutMs: Int): Int
    fun lf_loop_fd(loop: Pointer): Int
    fun lf_loop_next_timeout(loop: Pointer, outMs: IntByReference): Int
    fun lf_loop_stop(loop: Pointer): Int
    fun lf_loop_network_changed(loop: Pointer): Int
    fun lf_loop_start(loop: Pointer): Int

    fun lf_session_new(
        loop: Pointer, config: Pointer, callback: LfEventCallback, userdata: Pointer?,
        userdataFree: Pointer?, out: PointerByReference
    ): Int
    fun lf_session_on(
        session: Pointer, event: String, callback: LfEventCallback?, userdata: Pointer?,
        userdataFree: Pointer?
    ): Int
    fun lf_session_send_text(session: Pointer, data: ByteArray, len: SizeT): Int
    fun lf_session_send_binary(session: Pointer, data: ByteArray, len: SizeT): Int
    fun lf_session_close(session: Pointer, code: Short, reason: String?): Int
    fun lf_session_stats(session: Pointer, out: LfStats, outSize: SizeT): Int
    fun lf_session_reconnect(session: Pointer): Int
    fun lf_session_reconfigure(session: Pointer, config: Pointer): Int
    fun lf_session_state(session: Pointer): Int
    fun lf_session_queued_bytes(session: Pointer): SizeT
    fun lf_session_free(session: Pointer?)
    fun lf_session_emit(
        session: Pointer, namespace: String?, event: String, argsJson: String?, attachments: Pointer?,
        attachmentCount: SizeT, ackTimeoutMs: Int, ackIdOut: LongByReference?
    ): Int
    fun lf_session_ack(
        session: Pointer, namespace: String?, ackId: Long, argsJson: String?, attachments: Pointer?,
        attachmentCount: SizeT
    ): Int
    fun lf_session_join(session: Pointer, namespace: String, authJson: String?): Int
    fun lf_session_leave(session: Pointer, namespace: String): Int
    fun lf_session_subscribe(session: Pointer, topic: String): Int
    fun lf_session_unsubscribe(session: Pointer, topic: String): Int

    fun lf_version(): String
    fun lf_version_number(): Int
    fun lf_result_name(result: Int): String
    fun lf_last_error_message(buf: ByteArray?, len: SizeT): SizeT
}

// ---- the idiomatic wrapper ---------------------------------------------------------------

/** The library: loading, versions, logging. */
object Livefeed {
    /** The C API version this binding was written for (LF_VERSION_NUMBER of 0.1.0). */
    const val BINDING_VERSION_NUMBER = 0x000100

    /** The C functions (loaded on first use). */
    @JvmField
    val lib: LibLivefeed = Native.load(
        "livefeed", LibLivefeed::class.java,
        mapOf(Library.OPTION_STRING_ENCODING to "UTF-8")
    )

    init {
        // Before 1.0 every minor version may change the ABI: refuse another one.
        val found = lib.lf_version_number()
        if (found shr 8 != BINDING_VERSION_NUMBER shr 8) {
            throw UnsatisfiedLinkError(
                "liblivefeed is ${lib.lf_version()}, this binding was written for " +
                    "0.${(BINDING_VERSION_NUMBER shr 8) and 0xff}.x"
            )
        }
    }

    /** For example "livefeed/0.1.0 tungstenite/0.30.0 native-tls/0.2.18 mio/1.2.5". */
    val version: String get() = lib.lf_version()

    /** The name of a result code, e.g. "LF_RESULT_TIMEOUT". */
    fun resultName(code: Int): String = lib.lf_result_name(code)

    /** What happens to an exception thrown by a callback (it must not reach the C side). */
    @Volatile
    @JvmStatic
    var onCallbackError: (Throwable) -> Unit = { it.printStackTrace() }

    @Volatile private var logger: LfLogCallback? = null

    /**
     * Routes the library's log (levels 1 error .. 5 trace; 0 turns it off) to `sink`, which
     * may be called from any thread, concurrently. Secrets never appear in it.
     */
    @JvmStatic
    fun setLogger(maxLevel: Int, sink: ((Int, String) -> Unit)?) {
        val callback = if (sink == null) null else object : LfLogCallback {
            override fun invoke(userdata: Pointer?, level: Int, message: Pointer?) {
                try {
                    sink(level, message?.getString(0, "UTF-8") ?: "")
                } catch (t: Throwable) {
                    onCallbackError(t)
                }
            }
        }
        check(lib.lf_set_log_callback(if (sink == null) 0 else maxLevel, callback, null), "lf_set_log_callback")
        logger = callback // kept referenced: JNA holds callbacks weakly
    }

    /** Throws a LivefeedException unless `code` is LF_RESULT_OK. */
    internal fun check(code: Int, what: String) {
        if (code == 0) return
        val buf = ByteArray(512)
        val n = lib.lf_last_error_message(buf, SizeT(buf.size.toLong())).toLong()
        val message = String(buf, 0, minOf(n, (buf.size - 1).toLong()).toInt(), Charsets.UTF_8)
        throw LivefeedException(code, "$what: ${resultName(code)}: $message")
    }
}

/** A failed call: `code` is the lf_result value, `name` its name ("LF_RESULT_AUTH"). */
class LivefeedException(val code: Int, message: String) : RuntimeException(message) {
    val name: String get() = Livefeed.resultName(code)
}

/** lf_protocol. */
enum class Protocol(internal val value: Int) {
    WEBSOCKET(0), SOCKET_IO(1), ATMOSPHERE(2), IGTIMI(3), THETHINGS(4), SMARTSERVER(5), DECONZ(6), NAVIXY(7);

    companion object {
        /** By lfcat name: "ws", "socketio", "atmosphere", "igtimi", "thethings", ... */
        @JvmStatic
        fun byName(name: String): Protocol {
            val out = IntByReference()
            Livefeed.check(Livefeed.lib.lf_protocol_from_name(name, out), "protocol $name")
            return values().first { it.value == out.value }
        }
    }
}

/** lf_kind. New kinds may appear in newer libraries: they arrive as UNKNOWN. */
enum class Kind { STATE, MESSAGE, BINARY, ERROR, CLOSE, WRITABLE, EVENT, ACK, DROPPED, UNKNOWN }

/** lf_state. */
enum class State { CONNECTING, OPEN, CLOSING, CLOSED, RECONNECTING, UNKNOWN }

/** lf_overflow: what a send does when the outbox is full. */
enum class Overflow { REJECT, DROP_OLDEST, DROP_NEWEST }

/** lf_timeout: which deadline Config.timeout sets. */
enum class Timeout { DNS, CONNECT, TLS, HANDSHAKE, CLOSE, PING_INTERVAL, PONG }

/** lf_limit: which size Config.limit sets. */
enum class Limit { MAX_FRAME, MAX_MESSAGE, SEND_BUFFER, HTTP_HEAD, HTTP_BODY, REDIRECTS, READ_BUFFER }

private fun kindOf(value: Int) = if (value in 0..8) Kind.values()[value] else Kind.UNKNOWN

private fun stateOf(value: Int) = if (value in 0..4) State.values()[value] else State.UNKNOWN

/**
 * What a session connects to and how. Plain Kotlin data: nothing native is held until a
 * session is opened with it, so a Config can be reused and shared.
 *
 *     val config = Config("http://192.168.1.20") {
 *         protocol = Protocol.DECONZ
 *         option("apikey", "0123ABCDEF")
 *         reconnect(1000, 60_000)
 *     }
 */
class Config(val url: String) {
    var protocol: Protocol = Protocol.WEBSOCKET
    /** INSECURE: no certificate verification (test rigs only). */
    var insecure: Boolean = false
    /** HTTP proxy URL, "" for none, null for the environment's (http_proxy, ...). */
    var proxy: String? = null
    var origin: String? = null
    private val steps = ArrayList<(Pointer) -> Unit>()

    constructor(url: String, init: Config.() -> Unit) : this(url) {
        init()
    }

    /** A protocol option (token, user, password, apikey, device, subscribe, ...); repeatable. */
    fun option(key: String, value: String) = add("option $key") { lf_config_set_option(it, key, value) }
    fun header(name: String, value: String) = add("header $name") { lf_config_add_header(it, name, value) }
    fun subprotocol(name: String) = add("subprotocol") { lf_config_add_subprotocol(it, name) }
    fun cookie(name: String, value: String) = add("cookie") { lf_config_add_cookie(it, name, value) }
    fun caFile(path: String) = add("CA file") { lf_config_add_ca_file(it, path) }
    fun pinCertificateFile(path: String) = add("pin") { lf_config_pin_certificate_file(it, path) }
    fun timeout(which: Timeout, ms: Int) = add("timeout") { lf_config_set_timeout(it, which.ordinal, ms) }
    fun limit(which: Limit, value: Long) = add("limit") { lf_config_set_limit(it, which.ordinal, SizeT(value)) }
    /** Reconnect with full-jitter backoff between minMs and maxMs (maxAttempts 0: no limit). */
    fun reconnect(minMs: Int, maxMs: Int, maxAttempts: Int = 0) =
        add("reconnect") { lf_config_set_reconnect(it, minMs, maxMs, maxAttempts) }
    fun outbox(maxMessages: Long, overflow: Overflow = Overflow.REJECT) =
        add("outbox") { lf_config_set_outbox(it, SizeT(maxMessages), overflow.ordinal) }

    private fun add(what: String, step: LibLivefeed.(Pointer) -> Int): Config {
        steps.add { cfg -> Livefeed.check(Livefeed.lib.step(cfg), what) }
        return this
    }

    /** Builds an lf_config, hands it to `use`, frees it. */
    internal fun <T> withNative(use: (Pointer) -> T): T {
        val lib = Livefeed.lib
        val out = PointerByReference()
        Livefeed.check(lib.lf_config_new(out), "lf_config_new")
        val cfg = out.value
        try {
            Livefeed.check(lib.lf_config_set_url(cfg, url), "url")
            Livefeed.check(lib.lf_config_set_protocol(cfg, protocol.value), "protocol")
            if (insecure) Livefeed.check(lib.lf_config_set_insecure(cfg, 1), "insecure")
            if (proxy != null) Livefeed.check(lib.lf_config_set_proxy(cfg, proxy), "proxy")
            if (origin != null) Livefeed.check(lib.lf_config_set_origin(cfg, origin), "origin")
            for (step in steps) step(cfg)
            return use(cfg)
        } finally {
            lib.lf_config_free(cfg)
        }
    }
}

/**
 * An event, borrowed from the library: valid only while the callback that received it runs
 * (reading it later throws IllegalStateException). Copy what you need.
 */
class Event internal constructor(private val ptr: Pointer) {
    @Volatile internal var valid = true

    private fun p(): Pointer {
        check(valid) { "an Event is only valid during its callback" }
        return ptr
    }

    val kind: Kind get() = kindOf(Livefeed.lib.lf_event_kind(p()))
    /** The session's state (for STATE events: the new one). */
    val state: State get() = stateOf(Livefeed.lib.lf_event_state(p()))
    /** The payload as text: message, error message, close reason, state detail. */
    val text: String get() = Livefeed.lib.lf_event_text(p()).string()
    /** The payload bytes. */
    val data: ByteArray get() = Livefeed.lib.lf_event_data(p()).bytes()
    /** Event name, resource or channel (Socket.IO event, deCONZ `lights/1`, ...). */
    val topic: String get() = Livefeed.lib.lf_event_topic(p()).string()
    /** What happened, for platform events (`changed`, `event`, `UPD:DATAPOINT`, ...). */
    val type: String get() = Livefeed.lib.lf_event_type(p()).string()
    /** For ERROR events: the lf_result code (0 otherwise). */
    val result: Int get() = Livefeed.lib.lf_event_result(p())
    val resultName: String get() = Livefeed.resultName(result)
    /** Socket.IO namespace. */
    val namespace: String get() = Livefeed.lib.lf_event_namespace(p()).string()
    /** Socket.IO: the ack id (ACK events), or nonzero when the server wants an answer. */
    val ackId: Long get() = Livefeed.lib.lf_event_ack_id(p())
    /** For CLOSE events: the close code. */
    val closeCode: Int get() = Livefeed.lib.lf_event_close_code(p()).toInt() and 0xffff
    /** Socket.IO binary attachments. */
    val attachments: List<ByteArray>
        get() {
            val n = Livefeed.lib.lf_event_attachment_count(p()).toLong()
            return (0 until n).map { Livefeed.lib.lf_event_attachment(p(), SizeT(it)).bytes() }
        }

    /** The string at a JSON pointer ("/state/on"), or null. */
    fun jsonString(pointer: String): String? {
        val out = LfStr()
        return if (Livefeed.lib.lf_event_json_string(p(), pointer, out) == 0) out.string() else null
    }

    fun jsonNumber(pointer: String): Double? {
        val out = DoubleByReference()
        return if (Livefeed.lib.lf_event_json_number(p(), pointer, out) == 0) out.value else null
    }

    fun jsonBoolean(pointer: String): Boolean? {
        val out = ByteByReference()
        return if (Livefeed.lib.lf_event_json_bool(p(), pointer, out) == 0) out.value.toInt() != 0 else null
    }

    fun jsonHas(pointer: String): Boolean = Livefeed.lib.lf_event_json_has(p(), pointer).toInt() != 0

    /** The value at a JSON pointer as compact JSON ("" = the whole payload), or null. */
    fun jsonRaw(pointer: String = ""): String? {
        val out = LfStr()
        return if (Livefeed.lib.lf_event_json_raw(p(), pointer, out) == 0) out.string() else null
    }

    override fun toString(): String =
        if (valid) "Event(${kind.name.toLowerCase()}, topic=$topic, text=$text)" else "Event(expired)"
}

/** A session's counters. */
data class Stats(
    val state: State, val lastError: Int, val reconnects: Long, val messagesIn: Long, val bytesIn: Long,
    val messagesOut: Long, val bytesOut: Long, val dropped: Long, val rttMicros: Long
)

/** Wraps a Kotlin handler as a C callback: events are valid for the call, exceptions stay here. */
private class Handler(private val handler: (Event) -> Unit) : LfEventCallback {
    override fun invoke(userdata: Pointer?, event: Pointer?) {
        if (event == null) return
        val ev = Event(event)
        try {
            handler(ev)
        } catch (t: Throwable) {
            Livefeed.onCallbackError(t)
        } finally {
            ev.valid = false
        }
    }

    companion object {
        // Keep the loop's own thread attached to the JVM between callbacks (cheaper than an
        // attach and detach per event); it is a daemon, so it never holds the JVM open.
        private val threadInit = CallbackThreadInitializer(true, false, "livefeed-loop")

        fun of(handler: (Event) -> Unit): Handler =
            Handler(handler).also { Native.setCallbackThreadInitializer(it, threadInit) }
    }
}

/**
 * An event loop driving any number of sessions. Drive it one way: `run()` on a thread of
 * yours until `stop()`, `runOnce()` from your own poll loop (with `fd` and `nextTimeoutMs`),
 * or `start()` (a thread owned by the library). Close it after its sessions.
 */
class Loop : Closeable {
    internal val ptr: Pointer

    init {
        val out = PointerByReference()
        Livefeed.check(Livefeed.lib.lf_loop_new(out), "lf_loop_new")
        ptr = out.value
    }

    @Volatile private var closed = false

    private fun p(): Pointer {
        check(!closed) { "the loop is closed" }
        return ptr
    }

    /** Runs the loop on this thread until stop(); callbacks run on this thread. */
    fun run() = Livefeed.check(Livefeed.lib.lf_loop_run(p()), "lf_loop_run")

    /** One turn: waits up to timeoutMs (-1: until something happens, 0: not at all). */
    fun runOnce(timeoutMs: Int) = Livefeed.check(Livefeed.lib.lf_loop_run_once(p(), timeoutMs), "lf_loop_run_once")

    /** Starts the library's own thread for this loop (managed mode); callbacks run there. */
    fun start() = Livefeed.check(Livefeed.lib.lf_loop_start(p()), "lf_loop_start")

    /** Makes run() return; any thread, including callbacks. */
    fun stop() = Livefeed.check(Livefeed.lib.lf_loop_stop(p()), "lf_loop_stop")

    /** Every session drops its connection and connects again now (a new network). */
    fun networkChanged() = Livefeed.check(Livefeed.lib.lf_loop_network_changed(p()), "lf_loop_network_changed")

    /** The descriptor a host poll loop watches for readability. */
    val fd: Int get() = Livefeed.lib.lf_loop_fd(p())

    /** Milliseconds until runOnce is due even without fd activity; -1: nothing scheduled. */
    val nextTimeoutMs: Int
        get() {
            val out = IntByReference()
            Livefeed.check(Livefeed.lib.lf_loop_next_timeout(p(), out), "lf_loop_next_timeout")
            return out.value
        }

    /** Stops and joins the managed thread, closes every connection, frees the loop. */
    override fun close() {
        if (closed) return
        closed = true
        Livefeed.lib.lf_loop_free(ptr)
    }
}

/**
 * One feed on a loop. Opened with `Session.open(loop, config) { event -> ... }`; the
 * handler runs on the loop's thread, never concurrently for one session. `close()` frees
 * it: no callback runs once it has returned. A session not closed stays alive (with its
 * callbacks) until its loop is closed and it is closed: it is never collected under a
 * running callback.
 */
class Session private constructor(private val ptr: Pointer, private val handler: Handler) : Closeable {
    private val routes = ConcurrentHashMap<String, Handler>()
    /** Replaced routes: a call of one may still be under way on the loop thread. */
    private val retired: MutableList<Handler> = Collections.synchronizedList(ArrayList<Handler>())
    @Volatile private var closed = false

    companion object {
        /** Open sessions: keeps their callbacks reachable (JNA holds callbacks weakly). */
        private val open: MutableSet<Session> = Collections.newSetFromMap(ConcurrentHashMap<Session, Boolean>())

        /** Creates a session on `loop`; connecting starts on the loop's thread. */
        @JvmStatic
        fun open(loop: Loop, config: Config, onEvent: (Event) -> Unit): Session {
            val handler = Handler.of(onEvent)
            val out = PointerByReference()
            config.withNative { cfg ->
                Livefeed.check(Livefeed.lib.lf_session_new(loop.ptr, cfg, handler, null, null, out), "lf_session_new")
            }
            return Session(out.value, handler).also { open.add(it) }
        }
    }

    private fun p(): Pointer {
        if (closed) throw LivefeedException(7, "the session is closed") // LF_RESULT_CLOSED
        return ptr
    }

    /** Queues a text message (returns once queued). Throws on back-pressure (LF_RESULT_BACKPRESSURE). */
    fun sendText(text: String) {
        val bytes = text.toByteArray(Charsets.UTF_8)
        Livefeed.check(Livefeed.lib.lf_session_send_text(p(), bytes, SizeT(bytes.size.toLong())), "send")
    }

    fun sendBinary(bytes: ByteArray) =
        Livefeed.check(Livefeed.lib.lf_session_send_binary(p(), bytes, SizeT(bytes.size.toLong())), "send")

    /** Starts the close handshake (a CLOSE event and the closed state follow). */
    fun disconnect(code: Int = 1000, reason: String? = null) =
        Livefeed.check(Livefeed.lib.lf_session_close(p(), code.toShort(), reason), "lf_session_close")

    /** Reconnects now with a fresh backoff. */
    fun reconnect() = Livefeed.check(Livefeed.lib.lf_session_reconnect(p()), "lf_session_reconnect")

    /** New settings for the next connection attempts (not the protocol). */
    fun reconfigure(config: Config) = config.withNative { cfg ->
        Livefeed.check(Livefeed.lib.lf_session_reconfigure(p(), cfg), "lf_session_reconfigure")
    }

    fun subscribe(topic: String) = Livefeed.check(Livefeed.lib.lf_session_subscribe(p(), topic), "subscribe")
    fun unsubscribe(topic: String) = Livefeed.check(Livefeed.lib.lf_session_unsubscribe(p(), topic), "unsubscribe")

    /** Socket.IO: emits `event` with a JSON array of arguments; returns the ack id (0: none asked). */
    fun emit(event: String, argsJson: String = "[]", namespace: String? = null, ackTimeoutMs: Int = 0): Long {
        val id = LongByReference()
        Livefeed.check(
            Livefeed.lib.lf_session_emit(p(), namespace, event, argsJson, null, SizeT(0), ackTimeoutMs, id), "emit"
        )
        return id.value
    }

    /** Socket.IO: answers the server's acknowledgement request `ackId` (Event.ackId). */
    fun ack(ackId: Long, argsJson: String = "[]", namespace: String? = null) =
        Livefeed.check(Livefeed.lib.lf_session_ack(p(), namespace, ackId, argsJson, null, SizeT(0)), "ack")

    /** Socket.IO: answers `event` (inside its handler), on the event's own namespace. */
    fun ack(event: Event, argsJson: String = "[]") = ack(event.ackId, argsJson, event.namespace.ifEmpty { null })

    fun join(namespace: String, authJson: String? = null) =
        Livefeed.check(Livefeed.lib.lf_session_join(p(), namespace, authJson), "join")

    fun leave(namespace: String) = Livefeed.check(Livefeed.lib.lf_session_leave(p(), namespace), "leave")

    /** Routes events named `event` to `handler` instead of the session's handler. */
    fun on(event: String, handler: (Event) -> Unit) {
        val h = Handler.of(handler)
        Livefeed.check(Livefeed.lib.lf_session_on(p(), event, h, null, null), "lf_session_on")
        routes.put(event, h)?.let { retired.add(it) }
    }

    /** Removes the route of `event`. */
    fun off(event: String) {
        Livefeed.check(Livefeed.lib.lf_session_on(p(), event, null, null, null), "lf_session_on")
        routes.remove(event)?.let { retired.add(it) }
    }

    val state: State get() = if (closed) State.CLOSED else stateOf(Livefeed.lib.lf_session_state(ptr))

    /** Bytes accepted by send and not yet written. */
    val queuedBytes: Long get() = if (closed) 0 else Livefeed.lib.lf_session_queued_bytes(ptr).toLong()

    fun stats(): Stats {
        val s = LfStats()
        Livefeed.check(Livefeed.lib.lf_session_stats(p(), s, SizeT(s.size().toLong())), "lf_session_stats")
        return Stats(
            stateOf(s.state), s.last_error, s.reconnects, s.messages_in, s.bytes_in, s.messages_out,
            s.bytes_out, s.dropped, s.rtt_us
        )
    }

    /** Frees the session (from any thread, even its own callback); idempotent. */
    override fun close() {
        synchronized(this) {
            if (closed) return
            closed = true
        }
        Livefeed.lib.lf_session_free(ptr) // no callback of it runs after this returns
        open.remove(this) // now the handlers may be collected
        routes.clear()
        retired.clear()
    }
}
