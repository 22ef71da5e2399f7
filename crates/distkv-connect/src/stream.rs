//! The byte stream under a connection: TCP, or (with the `tls` feature)
//! TLS over TCP, and its two halves.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

#[cfg(feature = "tls")]
type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// A connection's byte stream: plain TCP, or TLS over TCP.
#[derive(Debug)]
pub struct Stream(Inner);

#[derive(Debug)]
enum Inner {
    Tcp(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Stream {
    pub(crate) fn tcp(s: TcpStream) -> Stream {
        Stream(Inner::Tcp(s))
    }

    #[cfg(feature = "tls")]
    pub(crate) fn tls(s: TlsStream) -> Stream {
        Stream(Inner::Tls(Box::new(s)))
    }

    /// Whether the stream talks TLS.
    pub fn is_tls(&self) -> bool {
        match &self.0 {
            Inner::Tcp(_) => false,
            #[cfg(feature = "tls")]
            Inner::Tls(_) => true,
        }
    }

    /// Splits the stream into halves that can be used from two tasks
    /// (TCP without a lock between them).
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self.0 {
            Inner::Tcp(s) => {
                let (r, w) = s.into_split();
                (ReadHalf(ReadInner::Tcp(r)), WriteHalf(WriteInner::Tcp(w)))
            }
            #[cfg(feature = "tls")]
            Inner::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ReadHalf(ReadInner::Tls(r)), WriteHalf(WriteInner::Tls(w)))
            }
        }
    }
}

/// The reading half of a [`Stream`].
#[derive(Debug)]
pub struct ReadHalf(ReadInner);

#[derive(Debug)]
enum ReadInner {
    Tcp(OwnedReadHalf),
    #[cfg(feature = "tls")]
    Tls(tokio::io::ReadHalf<TlsStream>),
}

/// The writing half of a [`Stream`].
#[derive(Debug)]
pub struct WriteHalf(WriteInner);

#[derive(Debug)]
enum WriteInner {
    Tcp(OwnedWriteHalf),
    #[cfg(feature = "tls")]
    Tls(tokio::io::WriteHalf<TlsStream>),
}

/// `$e` with `$s` bound to the stream inside `$inner` (an `Inner`,
/// `ReadInner` or `WriteInner`), whichever kind it is.
macro_rules! on_inner {
    ($inner:expr, $kind:ident, $s:ident => $e:expr) => {
        match $inner {
            $kind::Tcp($s) => $e,
            #[cfg(feature = "tls")]
            $kind::Tls($s) => $e,
        }
    };
}

/// `AsyncRead` for a wrapper of an inner enum, by delegation.
macro_rules! delegate_read {
    ($ty:ty, $kind:ident) => {
        impl AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                on_inner!(&mut self.get_mut().0, $kind, s => Pin::new(s).poll_read(cx, buf))
            }
        }
    };
}

/// `AsyncWrite` for a wrapper of an inner enum, by delegation.
macro_rules! delegate_write {
    ($ty:ty, $kind:ident) => {
        impl AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                on_inner!(&mut self.get_mut().0, $kind, s => Pin::new(s).poll_write(cx, buf))
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                on_inner!(&mut self.get_mut().0, $kind, s => Pin::new(s).poll_write_vectored(cx, bufs))
            }

            fn is_write_vectored(&self) -> bool {
                on_inner!(&self.0, $kind, s => s.is_write_vectored())
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                on_inner!(&mut self.get_mut().0, $kind, s => Pin::new(s).poll_flush(cx))
            }

            fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                on_inner!(&mut self.get_mut().0, $kind, s => Pin::new(s).poll_shutdown(cx))
            }
        }
    };
}

delegate_read!(Stream, Inner);
delegate_write!(Stream, Inner);
delegate_read!(ReadHalf, ReadInner);
delegate_write!(WriteHalf, WriteInner);
