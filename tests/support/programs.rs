//! Running the C programs (`make all` builds them into build/, `make asan` into
//! build/asan/) with a bounded run time, and under valgrind.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The path of a built C program; fails the test with what to run when it is missing.
pub fn program(build: &str, name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(build).join(name);
    assert!(path.exists(), "{} is missing: run `make all asan` first", path.display());
    path
}

/// Runs a command to completion, killing it after `limit`; stdout and stderr are read
/// on their own threads so neither pipe can fill up and stall the program.
pub fn run(mut cmd: Command, limit: Duration) -> Output {
    let mut child =
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(limit).is_err() {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    });
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr_pipe.read_to_end(&mut s);
        s
    });
    let mut stdout = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut stdout).unwrap();
    let stderr = stderr_reader.join().unwrap();
    let status = child.wait().unwrap();
    let _ = done_tx.send(());
    watchdog.join().unwrap();
    Output { status, stdout, stderr }
}

/// `program` under valgrind: any leak or memory error makes it exit 99.
pub fn valgrind(program: PathBuf) -> Command {
    let mut cmd = Command::new("valgrind");
    cmd.args(["--quiet", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible"])
        .args(["--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99"])
        .arg(program);
    cmd
}
