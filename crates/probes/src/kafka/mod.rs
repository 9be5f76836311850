//! Kafka consumer groups: what watchpost judges from the offsets it reads.
//!
//! [`window`] keeps the last few (committed, end, time) samples of every partition a monitor
//! watches and turns them into a status (OK, WARN, STALL, STOP, REWIND) and a lag in seconds.
//! It is pure: no I/O and no clock, so every rule is tested with scripted samples, and its
//! [`window::Window`] is the monitor's probe state, stored with each tick.

pub mod window;
