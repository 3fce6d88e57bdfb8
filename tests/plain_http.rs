//! Plain HTTP requests on the WebSocket port, answered alike by the
//! thread-per-client server and the event loop: malformed heads, bodies cut
//! short, bodies that stop arriving.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use stdws::{Addr, Config, Response, Running, Server};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Which server runs the test.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Threads,
    #[cfg(all(target_os = "linux", feature = "event-loop"))]
    EventLoop,
}

/// The kinds of server this platform has.
fn kinds() -> Vec<Kind> {
    vec![
        Kind::Threads,
        #[cfg(all(target_os = "linux", feature = "event-loop"))]
        Kind::EventLoop,
    ]
}

/// What a test server saw: `on_http` calls and the errors reported.
#[derive(Clone, Default)]
struct Seen {
    http_calls: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<(bool, String)>>>,
}

/// A server of `kind` whose `on_http` answers 200 with the body it got.
fn start(kind: Kind, config: Config) -> (Running, SocketAddr, Seen) {
    let seen = Seen::default();
    let (calls, errors) = (seen.http_calls.clone(), seen.errors.clone());
    let server = Server::bind("127.0.0.1:0")
        .unwrap()
        .config(Config {
            shutdown_timeout: Duration::from_millis(300),
            event_loop_threads: 1,
            ..config
        })
        .on_http(move |req| {
            calls.fetch_add(1, Ordering::SeqCst);
            Response::new(200, "application/octet-stream", req.body())
        })
        .on_error(move |_, e| {
            errors
                .lock()
                .unwrap()
                .push((e.is_disconnect(), e.to_string()))
        });
    let running = match kind {
        Kind::Threads => server.spawn(|_| Ok(())).unwrap(),
        #[cfg(all(target_os = "linux", feature = "event-loop"))]
        Kind::EventLoop => server
            .spawn_event_loop(|_, _| |_: stdws::MessageRef<'_>| Ok(()))
            .unwrap(),
    };
    let Addr::Tcp(addr) = running.addr().clone() else {
        panic!("not TCP")
    };
    (running, addr, seen)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

fn read_all(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_malformed_head_gets_400_saying_what_is_malformed() {
    for kind in kinds() {
        let (running, addr, seen) = start(kind, Config::default());
        for (head, why) in [
            (
                "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nNoColon\r\n\r\n",
                "header line without a colon",
            ),
            (
                "GET / HTTP/1.1 x\r\nHost: 127.0.0.1\r\n\r\n",
                "request line",
            ),
            (
                "GET / HTTP/one\r\nHost: 127.0.0.1\r\n\r\n",
                "invalid HTTP version",
            ),
        ] {
            let mut s = connect(addr);
            s.write_all(head.as_bytes()).unwrap();
            let response = read_all(&mut s);
            assert!(
                response.starts_with("HTTP/1.1 400 Bad Request\r\n"),
                "{kind:?} {head:?}: {response}"
            );
            assert!(
                response.ends_with("(HTTP 400)\n")
                    && response.contains("malformed HTTP request")
                    && response.contains(why),
                "{kind:?} {head:?}: {response}"
            );
        }
        assert_eq!(seen.http_calls.load(Ordering::SeqCst), 0, "{kind:?}");
        wait_for("the refusals to be reported", || {
            seen.errors.lock().unwrap().len() == 3
        });
        running.shutdown();
    }
}

#[test]
fn a_body_cut_short_by_the_client_is_reported_as_a_disconnect_and_not_answered() {
    for kind in kinds() {
        let (running, addr, seen) = start(kind, Config::default());
        let mut s = connect(addr);
        s.write_all(b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nabc")
            .unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(
            read_all(&mut s),
            "",
            "{kind:?}: no answer to half a request"
        );
        wait_for("the error report", || {
            !seen.errors.lock().unwrap().is_empty()
        });
        let errors = seen.errors.lock().unwrap().clone();
        assert!(
            matches!(&errors[..], [(true, e)] if e.contains("without a close frame")),
            "{kind:?}: {errors:?}"
        );
        assert_eq!(seen.http_calls.load(Ordering::SeqCst), 0, "{kind:?}");
        wait_for("the slot to free", || running.handle().connections() == 0);
        running.shutdown();
    }
}

#[test]
fn a_body_that_stops_arriving_gets_408_after_the_handshake_timeout() {
    for kind in kinds() {
        let config = Config {
            handshake_timeout: Duration::from_millis(300),
            ..Config::default()
        };
        let (running, addr, seen) = start(kind, config);
        let mut s = connect(addr);
        s.write_all(b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n\r\nabc")
            .unwrap();
        let response = read_all(&mut s); // the client keeps its end open
        assert!(
            response.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{kind:?}: {response}"
        );
        assert!(
            response.ends_with("request head not received in time (HTTP 408)\n"),
            "{kind:?}: {response}"
        );
        assert_eq!(seen.http_calls.load(Ordering::SeqCst), 0, "{kind:?}");
        running.shutdown();
    }
}
