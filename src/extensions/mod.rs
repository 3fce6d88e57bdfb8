//! WebSocket extensions (RFC 6455 section 9).
pub mod permessage_deflate;
