//! `Hub` broadcasts over real sockets: delivery in order, and a member over
//! its queue limit closed with 1008 while its writer is between frames.

mod common;

use common::server_and_raw_client;
use std::io::Read;
use std::net::TcpStream;
use stdws::hub::Hub;

/// Reads one short unmasked frame: its first byte and its payload.
fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    s.read_exact(&mut head).unwrap();
    assert!(head[1] < 126, "{head:02x?}");
    let mut payload = vec![0u8; usize::from(head[1])];
    s.read_exact(&mut payload).unwrap();
    (head[0], payload)
}

#[test]
fn a_default_hub_delivers_a_members_own_message_then_broadcasts_in_order() {
    let hub = Hub::default();
    assert!(hub.is_empty());
    let (mut ws, mut client) = server_and_raw_client();
    let member = hub.join(ws.sender().unwrap()).unwrap();
    assert!(member.send("state"));
    assert_eq!(hub.broadcast("change 1"), 1);
    assert_eq!(hub.broadcast(vec![2u8]), 1);
    assert_eq!(read_frame(&mut client), (0x81, b"state".to_vec()));
    assert_eq!(read_frame(&mut client), (0x81, b"change 1".to_vec()));
    assert_eq!(read_frame(&mut client), (0x82, vec![2]));
    drop(member);
    assert_eq!(hub.len(), 0, "dropping the membership leaves the hub");
    assert_eq!(hub.broadcast("after"), 0);
}

#[test]
fn a_message_over_the_queue_limit_closes_an_idle_member_with_1008() {
    // Ten bytes of queue: the 11-byte broadcast cannot fit, even though the
    // member's writer is idle, between frames.
    let hub = Hub::with_limits(64, 10);
    let (mut ws, mut client) = server_and_raw_client();
    let member = hub.join(ws.sender().unwrap()).unwrap();
    assert_eq!(hub.broadcast("0123456789!"), 0, "the member is dropped");
    assert!(hub.is_empty());
    let (b0, payload) = read_frame(&mut client);
    assert_eq!(b0, 0x88);
    assert_eq!(&payload[..2], &1008u16.to_be_bytes());
    assert_eq!(&payload[2..], b"too slow: broadcast queue full");
    // Then the end of the connection, with nothing else.
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:02x?}");
    // Its own messages are refused from now on.
    assert!(!member.send("too late"));
}
