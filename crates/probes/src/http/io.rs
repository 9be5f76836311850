//! A transparent stream wrapper that notes when response bytes arrive. hyper only tells us
//! when the whole head is parsed and when the body is complete (after its own bookkeeping);
//! the wrapper sees the reads themselves, so `wait` ends at the first byte read and
//! `download` at the last one.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// When the first and the latest non-empty reads happened (nanoseconds after `base`, 0 = none).
pub(crate) struct ReadMarks {
    base: Instant,
    first: AtomicU64,
    last: AtomicU64,
}

impl ReadMarks {
    fn get(&self, slot: &AtomicU64) -> Option<Instant> {
        match slot.load(Ordering::Acquire) {
            0 => None,
            n => Some(self.base + Duration::from_nanos(n)),
        }
    }

    pub fn first(&self) -> Option<Instant> {
        self.get(&self.first)
    }

    pub fn last(&self) -> Option<Instant> {
        self.get(&self.last)
    }

    fn record(&self) {
        let n = (self.base.elapsed().as_nanos() as u64).max(1);
        let _ = self
            .first
            .compare_exchange(0, n, Ordering::AcqRel, Ordering::Acquire);
        self.last.store(n, Ordering::Release);
    }
}

pub(crate) struct Recorder<S> {
    inner: S,
    marks: Arc<ReadMarks>,
}

impl<S> Recorder<S> {
    pub fn new(inner: S) -> (Self, Arc<ReadMarks>) {
        let marks = Arc::new(ReadMarks {
            base: Instant::now(),
            first: AtomicU64::new(0),
            last: AtomicU64::new(0),
        });
        (
            Recorder {
                inner,
                marks: marks.clone(),
            },
            marks,
        )
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recorder<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.marks.record();
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recorder<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
