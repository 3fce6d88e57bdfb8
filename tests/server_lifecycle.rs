//! A server's life from bind to shutdown: binding a Unix path a dead
//! server left behind, waking the accept loop of a server bound to every
//! interface, and the linger after a close not held open by a client that
//! keeps sending.

mod common;

use common::upgraded;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};
use stdws::{Addr, Config, Error, Server, WebSocket};

const TIMEOUT: Duration = Duration::from_secs(10);

fn echo(mut ws: WebSocket<stdws::Stream>) -> Result<(), Error> {
    while let Some(msg) = ws.recv()? {
        ws.send(msg)?;
    }
    Ok(())
}

fn quick_shutdown() -> Config {
    Config {
        shutdown_timeout: Duration::from_millis(300),
        ..Config::default()
    }
}

/// Runs `f` on a thread; fails the test if it does not return within `TIMEOUT`.
fn returns_in_time<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || tx.send(f()));
    rx.recv_timeout(TIMEOUT)
        .unwrap_or_else(|_| panic!("{what} did not return within {TIMEOUT:?}"))
}

#[test]
fn a_server_bound_to_every_ipv4_interface_wakes_its_accept_loop_to_shut_down() {
    let running = Server::bind("0.0.0.0:0")
        .unwrap()
        .config(quick_shutdown())
        .spawn(echo)
        .unwrap();
    let Addr::Tcp(addr) = running.addr().clone() else {
        panic!("not TCP")
    };
    assert!(addr.ip().is_unspecified());
    let left = returns_in_time("shutdown", move || running.shutdown());
    assert_eq!(left, 0);
}

#[test]
fn a_server_bound_to_every_ipv6_interface_wakes_its_accept_loop_to_shut_down() {
    let Ok(server) = Server::bind("[::]:0") else {
        eprintln!("skipped: no IPv6 here");
        return;
    };
    let running = server.config(quick_shutdown()).spawn(echo).unwrap();
    let left = returns_in_time("shutdown", move || running.shutdown());
    assert_eq!(left, 0);
}

#[test]
fn a_client_that_keeps_sending_after_the_close_is_cut_off_when_the_linger_ends() {
    // The handler ends at once: the server closes, then lingers (2 s at
    // most) reading what the client still sends.
    let running = Server::bind("127.0.0.1:0")
        .unwrap()
        .config(quick_shutdown())
        .spawn(|_| Ok(()))
        .unwrap();
    let Addr::Tcp(addr) = running.addr().clone() else {
        panic!("not TCP")
    };
    let client = upgraded(addr);
    let mut close = [0u8; 4];
    (&client).read_exact(&mut close).unwrap();
    assert_eq!(close, [0x88, 0x02, 0x03, 0xe8], "close 1000");
    // A byte every 50 ms: the linger's 512 reads would last 25 s.
    let stop = Arc::new(AtomicBool::new(false));
    let dribbler = {
        let (client, stop) = (client.try_clone().unwrap(), stop.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) && (&client).write_all(&[0]).is_ok() {
                thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let start = Instant::now();
    let handle = running.handle();
    while handle.connections() > 0 {
        assert!(
            start.elapsed() < TIMEOUT,
            "a dribbling client held the connection open past the linger"
        );
        thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    dribbler.join().unwrap();
    running.shutdown();
}

#[cfg(unix)]
#[test]
fn bind_unix_replaces_a_socket_file_left_by_a_dead_server_but_not_a_live_one() {
    use std::os::unix::net::UnixListener;
    use stdws::client::{self, ClientConfig};
    let path = std::env::temp_dir().join(format!("stdws-stale-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    drop(UnixListener::bind(&path).unwrap()); // a dead server's file
    assert!(path.exists());
    let running = Server::bind_unix(&path)
        .unwrap()
        .config(quick_shutdown())
        .spawn(echo)
        .unwrap();
    assert_eq!(
        running.addr().to_string(),
        format!("unix:{}", path.display())
    );
    let mut ws = client::connect_unix(&path, "/", &ClientConfig::default()).unwrap();
    ws.send("alive").unwrap();
    assert_eq!(ws.recv().unwrap().unwrap().as_text(), Some("alive"));
    // A second server must not take the path from a running one.
    let error = Server::bind_unix(&path).err().expect("the path is in use");
    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse, "{error}");
    ws.send("still alive").unwrap();
    assert_eq!(ws.recv().unwrap().unwrap().as_text(), Some("still alive"));
    drop(ws);
    running.shutdown();
    let _ = std::fs::remove_file(&path);
}
