//! HTTP/1.1 client exchanges: request encoding, an incremental response parser
//! (httparse for the head; content-length, chunked and close-delimited bodies),
//! a cookie jar, and a driver that runs one exchange over a non-blocking stream.

pub mod cookies;
pub mod exchange;
pub mod request;
pub mod response;

pub use cookies::CookieJar;
pub use exchange::Exchange;
pub use request::Request;
pub use response::{Response, ResponseParser};
