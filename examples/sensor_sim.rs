//! A small live sensor feed for demos and manual testing: a WebSocket server on
//! 127.0.0.1 that streams JSON readings from a few simulated sensors.
//!
//! ```text
//! cargo run --release --example sensor_sim -- [--port P] [--rate HZ]
//! ```
//!
//! The first line on stdout is `listening ws://127.0.0.1:PORT/` (port 0, the default,
//! lets the system pick one), so scripts can read the address. Every client gets its
//! own stream of readings at `--rate` messages per second (default 5), taking turns
//! through the sensors, for example
//! `{"sensor":"greenhouse-1","temperature":21.43,"humidity":55.1,"ts":1732400000123}`.
//! Values follow smooth curves of wall-clock time, so all clients see the same world.
//! Diagnostics go to stderr. Stop it with Ctrl-C or SIGTERM.

use std::io::{self, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tungstenite::{Message, WebSocket};

/// A simulated sensor: a base level plus slow, smooth swings.
struct Sensor {
    name: &'static str,
    temp_base: f64,
    temp_swing: f64,
    hum_base: f64,
    hum_swing: f64,
    /// Phase offset (radians), so sensors do not move in lockstep.
    phase: f64,
}

const SENSORS: &[Sensor] = &[
    Sensor {
        name: "greenhouse-1",
        temp_base: 22.0,
        temp_swing: 2.5,
        hum_base: 62.0,
        hum_swing: 8.0,
        phase: 0.0,
    },
    Sensor {
        name: "greenhouse-2",
        temp_base: 24.5,
        temp_swing: 3.0,
        hum_base: 70.0,
        hum_swing: 6.0,
        phase: 1.3,
    },
    Sensor {
        name: "cold-store",
        temp_base: 3.5,
        temp_swing: 0.8,
        hum_base: 85.0,
        hum_swing: 3.0,
        phase: 2.1,
    },
    Sensor {
        name: "server-room",
        temp_base: 19.0,
        temp_swing: 1.2,
        hum_base: 40.0,
        hum_swing: 5.0,
        phase: 4.0,
    },
];

/// Time-dependent variation in [-1, 1]: a sum of sines with unrelated periods, which looks
/// like drift plus gentle noise and is smooth at any sampling rate.
fn wobble(t: f64, phase: f64) -> f64 {
    use std::f64::consts::TAU;
    let slow = (TAU * t / 97.0 + phase).sin();
    let mid = (TAU * t / 23.0 + 1.7 * phase).sin();
    let fast = (TAU * t / 5.3 + 2.9 * phase).sin();
    0.6 * slow + 0.3 * mid + 0.1 * fast
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// One reading of `sensor` at wall-clock time `now_ms` (milliseconds since the epoch).
fn reading(sensor: &Sensor, now_ms: u64) -> String {
    let t = now_ms as f64 / 1000.0;
    let temperature = round_to(sensor.temp_base + sensor.temp_swing * wobble(t, sensor.phase), 2);
    // Humidity runs against temperature, as it does in a closed room.
    let humidity = round_to(
        (sensor.hum_base - sensor.hum_swing * wobble(t * 0.8, sensor.phase + 0.5))
            .clamp(0.0, 100.0),
        1,
    );
    // Written by hand to keep the field order readable (serde_json's map sorts keys).
    // f64's Display is the shortest text that round-trips: a valid JSON number.
    format!(
        r#"{{"sensor":{},"temperature":{temperature},"humidity":{humidity},"ts":{now_ms}}}"#,
        serde_json::Value::from(sensor.name)
    )
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn is_timeout(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
}

/// Serves one client until it leaves: sends a reading every `period`, and in between
/// reads (with the time left as read timeout) so pings are answered and a close frame
/// from the client is seen at once.
fn serve(mut ws: WebSocket<TcpStream>, period: Duration) -> tungstenite::Result<()> {
    let mut next = Instant::now();
    let mut turn = 0usize;
    loop {
        let now = Instant::now();
        if now >= next {
            let text = reading(&SENSORS[turn % SENSORS.len()], now_ms());
            turn += 1;
            ws.send(Message::text(text))?;
            next += period;
            if next < now {
                // We fell behind (a slow client): skip ahead rather than burst.
                next = now + period;
            }
            continue;
        }
        ws.get_mut().set_read_timeout(Some(next - now)).map_err(tungstenite::Error::Io)?;
        match ws.read() {
            Ok(Message::Close(_)) => {
                // tungstenite queued the reply; send it and end the connection.
                return match ws.flush() {
                    Ok(()) | Err(tungstenite::Error::ConnectionClosed) => Ok(()),
                    Err(e) => Err(e),
                };
            }
            // Pongs for pings are queued by tungstenite and go out with the next write.
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {}
            Err(tungstenite::Error::ConnectionClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

fn client(stream: TcpStream, period: Duration) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".into());
    let _ = stream.set_nodelay(true);
    // Bound the handshake and any write to a client that stopped reading.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let ws = match tungstenite::accept(stream) {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("sensor_sim: {peer}: handshake failed: {e}");
            return;
        }
    };
    eprintln!("sensor_sim: {peer}: connected");
    match serve(ws, period) {
        Ok(()) => eprintln!("sensor_sim: {peer}: disconnected"),
        Err(e) => eprintln!("sensor_sim: {peer}: disconnected ({e})"),
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: sensor_sim [--port P] [--rate HZ]");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let mut port: u16 = 0;
    let mut rate: f64 = 5.0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "-h" | "--help" => {
                usage();
                return ExitCode::SUCCESS;
            }
            "--port" | "--rate" => match args.next() {
                Some(v) => v,
                None => return usage(),
            },
            _ => return usage(),
        };
        let ok = match arg.as_str() {
            "--port" => value.parse().map(|p| port = p).is_ok(),
            _ => value
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && *r > 0.0 && *r <= 10_000.0)
                .map(|r| rate = r)
                .is_some(),
        };
        if !ok {
            eprintln!("sensor_sim: bad value for {arg}: {value}");
            return usage();
        }
    }
    let period = Duration::from_secs_f64(1.0 / rate);

    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sensor_sim: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    {
        let mut out = io::stdout().lock();
        let _ = writeln!(out, "listening ws://127.0.0.1:{port}/");
        let _ = out.flush();
    }
    eprintln!("sensor_sim: {} sensors, {rate} readings/s per client", SENSORS.len());

    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(e) = thread::Builder::new()
                    .name("client".into())
                    .spawn(move || client(stream, period))
                {
                    eprintln!("sensor_sim: cannot start a client thread: {e}");
                }
            }
            Err(e) => eprintln!("sensor_sim: accept failed: {e}"),
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_json_with_the_documented_fields() {
        let v: serde_json::Value =
            serde_json::from_str(&reading(&SENSORS[0], 1_732_400_000_123)).unwrap();
        assert_eq!(v["sensor"], "greenhouse-1");
        assert_eq!(v["ts"], 1_732_400_000_123u64);
        let t = v["temperature"].as_f64().unwrap();
        assert!((19.0..=25.0).contains(&t));
        let h = v["humidity"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&h));
    }

    #[test]
    fn values_vary_smoothly() {
        let a = reading(&SENSORS[1], 1_000_000);
        let b = reading(&SENSORS[1], 1_000_200);
        let t = |s: &str| {
            serde_json::from_str::<serde_json::Value>(s).unwrap()["temperature"].as_f64().unwrap()
        };
        assert!((t(&a) - t(&b)).abs() < 0.5);
    }
}
