//! Out of file descriptors is watchpost's failure, not the target's: with the soft
//! `RLIMIT_NOFILE` lowered and the descriptor table filled, a check of a healthy loopback
//! server fails with kind `local` (in the connect phase, and in the DNS phase when the
//! resolver can't open its socket), and passes again once descriptors are free.
//!
//! This file holds a single test on purpose: the limit is per process, and each integration
//! test file runs in its own process, so no other test shares the starved table.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;
use watchpost_probes::http::{ErrorKind, HttpProber, HttpRequest, Phase, ProberOptions};
use watchpost_testkit::{DnsServer, HttpServer};

/// Restores the soft and hard open-files limits when dropped (also when the test panics).
struct RestoreLimit {
    soft: u64,
    hard: u64,
}

impl Drop for RestoreLimit {
    fn drop(&mut self) {
        let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, self.soft, self.hard);
    }
}

/// Open `/dev/null` until the process is out of descriptors; the files in `files` keep them
/// taken. Called again before each check: sockets of earlier checks may be closed late by
/// their background tasks, freeing a descriptor or two.
fn fill_descriptor_table(files: &mut Vec<File>) {
    loop {
        match File::open("/dev/null") {
            Ok(f) => files.push(f),
            Err(e) => {
                assert_eq!(
                    e.raw_os_error(),
                    Some(libc::EMFILE),
                    "expected EMFILE, got {e}"
                );
                return;
            }
        }
        assert!(files.len() < 100_000, "the lowered limit did not hold");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_is_a_local_failure() {
    let srv = HttpServer::start(None).await;
    let dns = DnsServer::start(
        &[("healthy.test", IpAddr::V4(Ipv4Addr::LOCALHOST))],
        Duration::ZERO,
        false,
    )
    .await;
    let prober = HttpProber::new(ProberOptions {
        extra_roots: Vec::new(),
        nameservers: Some(vec![dns.addr]),
    })
    .expect("prober");
    let by_ip = HttpRequest::get(&srv.url("/")).unwrap();
    let by_name = HttpRequest::get(&format!("http://healthy.test:{}/", srv.addr.port())).unwrap();

    // Healthy before. (Not by name: the resolver's background tasks close their sockets
    // some time after a lookup, which would free descriptors in the middle of the starved
    // checks below.)
    let r = prober.check(&by_ip).await;
    assert!(r.error.is_none(), "{:?}", r.error);
    assert_eq!(r.status, Some(200));
    // The connection's driver task is aborted when the check returns; let it go.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
    let restore = RestoreLimit { soft, hard };
    rlimit::setrlimit(rlimit::Resource::NOFILE, soft.min(256), hard).expect("setrlimit");
    let mut fillers = Vec::new();

    fill_descriptor_table(&mut fillers);
    let r = prober.check(&by_ip).await;
    let err = r.error.clone().expect("the connect must fail");
    assert_eq!(
        (err.phase, err.kind),
        (Phase::Connect, ErrorKind::Local),
        "{err}"
    );
    assert!(err.is_local());
    assert!(
        err.message
            .contains("watchpost ran out of file descriptors")
            && err.message.contains("Too many open files"),
        "{}",
        err.message
    );
    assert_eq!(r.status, None);
    let json = serde_json::to_value(&err).unwrap();
    assert_eq!(json["kind"], "local");

    fill_descriptor_table(&mut fillers);
    let r = prober.check(&by_name).await;
    let err = r.error.clone().expect("the lookup must fail");
    assert_eq!(
        (err.phase, err.kind),
        (Phase::Dns, ErrorKind::Local),
        "{err}"
    );
    assert!(err.message.contains("file descriptors"), "{}", err.message);

    drop(fillers);
    drop(restore);
    assert_eq!(
        rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap(),
        (soft, hard),
        "the limit is restored"
    );

    // Healthy again once descriptors are free.
    for req in [&by_ip, &by_name] {
        let r = prober.check(req).await;
        assert!(r.error.is_none(), "{:?}", r.error);
        assert_eq!(r.status, Some(200));
    }
}
