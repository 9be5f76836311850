//! Probes: the code that goes out and looks at something (a web page, later a Kafka group, a
//! database) and reports what it saw as an observation. Probes never touch the store and never
//! alert; they measure and classify.
//!
//! One directory per probe kind; today: [`http`].

pub mod http;
