//! The car example's protocol, driven against the real program: commands
//! broadcast as motions, the stop when a duration runs out, and errors.

mod example_process;

use example_process::{recv_text, Example};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use stdws::WebSocket;

const STOPPED: &str = r#"{"motion":"stop"}"#;

fn start() -> Example {
    Example::start("car", &["--listen", "127.0.0.1:0"])
}

/// A client that has received the current motion, so it is sure to get
/// every report from now on.
fn client(car: &Example) -> WebSocket<TcpStream> {
    let mut ws = car.connect();
    assert_eq!(recv_text(&mut ws), STOPPED, "the motion on connect");
    ws
}

#[test]
fn a_command_is_broadcast_to_every_client_then_stop_when_its_duration_runs_out() {
    let car = start();
    let (mut driver, mut watcher) = (client(&car), client(&car));
    let sent = Instant::now();
    driver
        .send_text(r#"{"command":"up","duration":0.3}"#)
        .unwrap();
    for ws in [&mut driver, &mut watcher] {
        assert_eq!(recv_text(ws), r#"{"motion":"up","duration":0.3}"#);
    }
    for ws in [&mut driver, &mut watcher] {
        assert_eq!(recv_text(ws), STOPPED);
    }
    let elapsed = sent.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(2),
        "stopped after {elapsed:?}"
    );
    // The simulated car did what the clients were told.
    assert_eq!(car.next_line(), "car: up for 0.3 s");
    assert_eq!(car.next_line(), "car: stop");
}

#[test]
fn the_duration_defaults_to_a_tenth_of_a_second() {
    let car = start();
    let mut ws = client(&car);
    let sent = Instant::now();
    ws.send_text(r#"{"command":"left"}"#).unwrap();
    assert_eq!(recv_text(&mut ws), r#"{"motion":"left","duration":0.1}"#);
    assert_eq!(recv_text(&mut ws), STOPPED);
    assert!(sent.elapsed() >= Duration::from_millis(100));
    // As in the blog, a null duration is no duration.
    ws.send_text(r#"{"command":"right","duration":null}"#)
        .unwrap();
    assert_eq!(recv_text(&mut ws), r#"{"motion":"right","duration":0.1}"#);
}

#[test]
fn raw_commands_carry_their_data() {
    let car = start();
    let mut ws = client(&car);
    ws.send_text(r#"{"command":"raw","duration":0.05,"data":34}"#)
        .unwrap();
    assert_eq!(
        recv_text(&mut ws),
        r#"{"motion":"raw","duration":0.05,"data":34}"#
    );
    assert_eq!(recv_text(&mut ws), STOPPED);
}

#[test]
fn a_new_command_replaces_the_motion_under_way() {
    let car = start();
    let mut ws = client(&car);
    ws.send_text(r#"{"command":"up","duration":0.3}"#).unwrap();
    assert_eq!(recv_text(&mut ws), r#"{"motion":"up","duration":0.3}"#);
    let replaced = Instant::now();
    ws.send_text(r#"{"command":"down","duration":0.4}"#)
        .unwrap();
    assert_eq!(recv_text(&mut ws), r#"{"motion":"down","duration":0.4}"#);
    // One stop, when the latest command's duration runs out.
    assert_eq!(recv_text(&mut ws), STOPPED);
    assert!(replaced.elapsed() >= Duration::from_millis(400));
    // No stop is left over from the replaced command: the next message is
    // the next command's motion.
    ws.send_text(r#"{"command":"stop","duration":0}"#).unwrap();
    assert_eq!(recv_text(&mut ws), r#"{"motion":"stop","duration":0}"#);
    assert_eq!(recv_text(&mut ws), STOPPED);
}

#[test]
fn a_client_that_connects_during_a_motion_is_told_it() {
    let car = start();
    let mut driver = client(&car);
    driver
        .send_text(r#"{"command":"right","duration":30}"#)
        .unwrap();
    let right = r#"{"motion":"right","duration":30}"#;
    assert_eq!(recv_text(&mut driver), right);
    let mut late = car.connect();
    assert_eq!(recv_text(&mut late), right);
    driver
        .send_text(r#"{"command":"stop","duration":0}"#)
        .unwrap();
    for ws in [&mut driver, &mut late] {
        assert_eq!(recv_text(ws), r#"{"motion":"stop","duration":0}"#);
        assert_eq!(recv_text(ws), STOPPED);
    }
}

#[test]
fn invalid_commands_get_an_error_for_the_sender_only() {
    let car = start();
    let (mut sender, mut other) = (client(&car), client(&car));
    for (bad, why) in [
        ("up", "invalid JSON"),
        ("{\"command\":\"up\"", "invalid JSON"),
        (r#"["up"]"#, "expected a command object"),
        (r#"{"command":"fly"}"#, r#"unknown command \"fly\""#),
        (r#"{"command":7}"#, "command must be a string"),
        (r#"{"duration":1}"#, "missing command"),
        (r#"{"command":"up","duration":-0.5}"#, "duration"),
        (r#"{"command":"up","duration":1e3}"#, "duration"),
        (r#"{"command":"up","duration":"1"}"#, "duration"),
        (r#"{"command":"raw"}"#, "needs an integer data"),
        (r#"{"command":"raw","data":2.5}"#, "data must be an integer"),
        (r#"{"command":"raw","data":"2"}"#, "data must be an integer"),
    ] {
        sender.send_text(bad).unwrap();
        let reply = recv_text(&mut sender);
        assert!(
            reply.starts_with(r#"{"error":""#) && reply.contains(why),
            "{bad}: {reply}"
        );
    }
    // Still open, and the other client saw none of it: its next message is
    // this command's motion.
    sender
        .send_text(r#"{"command":"right","duration":0}"#)
        .unwrap();
    assert_eq!(recv_text(&mut other), r#"{"motion":"right","duration":0}"#);
    assert_eq!(recv_text(&mut sender), r#"{"motion":"right","duration":0}"#);
}

#[test]
fn the_control_page_is_served_and_nothing_else() {
    let car = start();
    let page = car.http("GET", "/", "");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.body.contains("<svg") && page.body.contains("new WebSocket("));
    for external in ["http://", "https://", "src=", "@import", "url("] {
        assert!(
            !page.body.contains(external),
            "the page refers to {external}"
        );
    }
    assert_eq!(car.http("GET", "/car.js", "").status, 404);
    let post = car.http("POST", "/", "");
    assert_eq!((post.status, post.header("allow")), (405, Some("GET")));
}

#[test]
fn bad_arguments_print_usage_and_exit_2() {
    let out = example_process::command("car")
        .arg("--speed")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: car"));
}
