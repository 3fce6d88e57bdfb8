//! A hub member is a member before its first message goes out: whoever has
//! seen a member's `join_with` message can count on every later broadcast
//! reaching it. Found under ThreadSanitizer (scripts/tsan), whose slowdown
//! widened the window: `server_runtime::hub_broadcasts_to_every_member` (now
//! `runtime::threaded::hub_members_get_every_broadcast_and_leave_when_they_disconnect`)
//! saw all five clients greeted while `hub.len()` was still 4.
//!
//! `Hub::add` queued `first`, started the member's writer thread (which
//! sends it at once) and only then inserted the member into the hub's map.
//! In between, a client already holding `first` (the io_board page's
//! state, say) could be missed by a broadcast, and never see that change.

mod common;

use common::server_and_raw_client;
use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use stdws::hub::Hub;

/// Reads one short unmasked text frame's payload.
fn read_text(s: &mut TcpStream) -> Vec<u8> {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head[0], 0x81, "{head:02x?}");
    assert!(head[1] < 126, "{head:02x?}");
    let mut payload = vec![0u8; usize::from(head[1])];
    s.read_exact(&mut payload).unwrap();
    payload
}

#[test]
fn a_broadcast_after_a_members_first_message_reaches_it() {
    let mut missed = 0;
    for round in 0..1000 {
        let hub = Hub::new();
        // Contention on the hub's lock, so that `join_with` may wait for it
        // after its writer has started.
        let stop = Arc::new(AtomicBool::new(false));
        let spinner = {
            let (hub, stop) = (hub.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::black_box(hub.len());
                }
            })
        };
        let (mut ws, mut client) = server_and_raw_client();
        let sender = ws.sender().unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let joiner = {
            let (hub, barrier) = (hub.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                hub.join_with(sender, "first").unwrap()
            })
        };
        barrier.wait();
        assert_eq!(read_text(&mut client), b"first");
        // The client has its first message: the member must be in the hub.
        if hub.broadcast("after") == 1 {
            assert_eq!(read_text(&mut client), b"after");
        } else {
            missed += 1;
            eprintln!("round {round}: the broadcast after `first` missed the member");
        }
        stop.store(true, Ordering::Relaxed);
        spinner.join().unwrap();
        let _member = joiner.join().unwrap();
        assert_eq!(hub.len(), 1);
    }
    assert_eq!(
        missed, 0,
        "broadcasts missed a member that had its first message"
    );
}
