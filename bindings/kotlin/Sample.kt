// Sample: connect to a live feed through the Kotlin binding and print its first messages.
//
//   java -Djna.library.path=PREFIX/lib -cp sample.jar:/usr/share/java/jna.jar \
//        livefeed.sample.SampleKt URL [COUNT] [PROTOCOL [KEY=VALUE...]]
//
// URL: a feed such as ws://127.0.0.1:PORT/ (the bundled sensor simulator,
// `cargo run --release --example sensor_sim`). PROTOCOL is an lfcat name (ws, socketio,
// deconz, navixy, ...), followed by its options. Prints COUNT (default 5) messages or
// platform events, one per line, then the session's counters; exits 0, or 1 when the
// feed fails or ends first, 3 after 30 s without them.

package livefeed.sample

import livefeed.Config
import livefeed.Event
import livefeed.Kind
import livefeed.Loop
import livefeed.Protocol
import livefeed.Session
import livefeed.State
import livefeed.Livefeed
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlin.system.exitProcess

fun main(args: Array<String>) {
    if (args.isEmpty()) {
        System.err.println("usage: Sample URL [COUNT] [PROTOCOL [KEY=VALUE...]]")
        exitProcess(2)
    }
    val wanted = args.getOrNull(1)?.toInt() ?: 5
    System.err.println("sample: ${Livefeed.version}")

    val config = Config(args[0]) {
        if (args.size > 2) protocol = Protocol.byName(args[2])
        for (kv in args.drop(3)) option(kv.substringBefore('='), kv.substringAfter('='))
        reconnect(500, 5_000, 5) // back off 0.5 .. 5 s, give up after 5 failures in a row
    }

    val seen = AtomicInteger()
    val done = CountDownLatch(1)
    var failed = false

    // The handler is a lambda; it runs on the loop's thread (here the library's own, started
    // below), one event at a time. `ev` is only valid inside it.
    val onEvent = { ev: Event ->
        when (ev.kind) {
            Kind.MESSAGE, Kind.EVENT -> {
                val n = seen.incrementAndGet()
                if (n <= wanted) {
                    // JSON lookups need no JSON library: the payload is parsed once, natively.
                    val temperature = ev.jsonNumber("/temperature")
                    val topic = ev.topic
                    val where = if (topic == "") "" else "$topic "
                    println("$n: $where${ev.jsonRaw() ?: ev.text}" + (temperature?.let { "  [$it °C]" } ?: ""))
                }
                if (n == wanted) done.countDown()
            }
            Kind.ERROR -> System.err.println("sample: ${ev.resultName}: ${ev.text}")
            Kind.STATE -> {
                System.err.println("sample: ${ev.state.name.toLowerCase()}")
                if (ev.state == State.CLOSED) {
                    failed = true
                    done.countDown()
                }
            }
            else -> Unit
        }
    }

    // Loop and Session are Closeable: `use` frees them in the right order (session first).
    val status = Loop().use { loop ->
        loop.start() // managed mode: a thread owned by the library drives the loop
        Session.open(loop, config, onEvent).use { session ->
            if (!done.await(30, TimeUnit.SECONDS)) {
                System.err.println("sample: timed out")
                3
            } else {
                val st = session.stats()
                System.err.println(
                    "sample: ${st.messagesIn} messages (${st.bytesIn} bytes) in, " +
                        "${st.reconnects} reconnects, state ${session.state.name.toLowerCase()}"
                )
                if (failed && seen.get() < wanted) 1 else 0
            }
        }
    }
    exitProcess(status)
}
