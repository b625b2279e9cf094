//! Counting the connects a down hop refuses.
//!
//! While a hop is down its listener is closed, so the kernel answers each
//! SYN with an RST and the hop itself sees nothing: a dependency call that
//! was refused would be invisible. A [`SynCounter`] watches the loopback
//! interface while the hop is down and counts the TCP SYNs (SYN set, ACK
//! clear) sent to the hop's address and port: one per `connect()` that got
//! ECONNREFUSED (a refused SYN is not retransmitted).
//!
//! It is an `AF_PACKET` raw socket with a classic BPF filter attached, so
//! the kernel hands over only matching packets (truncated to a few bytes),
//! and a thread that counts them until the hop is up again. It needs
//! `CAP_NET_RAW` and a hop on a loopback address; where either is missing
//! [`SynCounter::start`] fails and the hop reports the refused connects as
//! unobservable instead (nothing else changes).
//!
//! `socket2` provides the raw socket and `SO_ATTACH_FILTER` through safe
//! calls, so this module needs no `unsafe` (the crate forbids it).

use std::io::{self, ErrorKind};
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, Protocol, SockFilter, Socket, Type};

/// How long the counting thread blocks in one `recv`: the longest it
/// lingers after [`SynCounter::stop`] once the queue is drained.
const POLL: Duration = Duration::from_millis(50);

/// Bytes kept of each matching packet: the count is all that is used.
const SNAP: u32 = 64;

/// `ETH_P_ALL` in network byte order: every protocol (the filter picks).
const ETH_P_ALL_BE: i32 = 0x0300;

/// Counts SYNs to one loopback address while it lives; see the module docs.
#[derive(Debug)]
pub(super) struct SynCounter {
    socket: Arc<Socket>,
    stop: Arc<AtomicBool>,
}

impl SynCounter {
    /// Starts counting SYNs to `addr` into `count`.
    ///
    /// Fails without privilege (`EPERM`), for a non-loopback address
    /// (`Unsupported`: SYNs from other hosts arrive on other interfaces),
    /// or when the loopback interface cannot be found.
    pub fn start(addr: SocketAddr, count: Arc<AtomicU64>) -> io::Result<SynCounter> {
        if !addr.ip().is_loopback() {
            return Err(io::Error::new(
                ErrorKind::Unsupported,
                "refused connects are only counted on a loopback address",
            ));
        }
        let program = filter(addr, loopback_index()?);
        let socket = Socket::new(
            Domain::PACKET,
            Type::RAW,
            Some(Protocol::from(ETH_P_ALL_BE)),
        )?;
        socket.attach_filter(&program)?;
        // Packets that arrived before the filter was attached were not
        // filtered: throw them away before counting starts.
        socket.set_nonblocking(true)?;
        let mut buf = [MaybeUninit::<u8>::uninit(); SNAP as usize];
        while socket.recv(&mut buf).is_ok() {}
        socket.set_nonblocking(false)?;
        socket.set_read_timeout(Some(POLL))?;

        let socket = Arc::new(socket);
        let stop = Arc::new(AtomicBool::new(false));
        let (reader, stopped) = (Arc::clone(&socket), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("faultline-syn-count".into())
            .spawn(move || count_until(&reader, &stopped, &count))?;
        Ok(SynCounter { socket, stop })
    }

    /// Stops counting: from this call on no SYN is counted; the ones already
    /// queued are, within moments, and then the thread ends.
    pub fn stop(&self) {
        // A filter that drops everything makes the cut exact: a SYN to the
        // listener bound right after this call is not queued any more. (If
        // replacing it failed, the thread still ends at its next timeout.)
        let _ = self.socket.attach_filter(&[ret(0)]);
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for SynCounter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The counting thread: one per down period; it holds the socket, which
/// closes when it returns.
fn count_until(socket: &Socket, stop: &AtomicBool, count: &AtomicU64) {
    let mut buf = [MaybeUninit::<u8>::uninit(); SNAP as usize];
    loop {
        match socket.recv(&mut buf) {
            Ok(_) => {
                count.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

/// The loopback interface's index, from sysfs.
fn loopback_index() -> io::Result<u32> {
    let text = std::fs::read_to_string("/sys/class/net/lo/ifindex")?;
    text.trim()
        .parse()
        .map_err(|_| io::Error::new(ErrorKind::InvalidData, "unreadable loopback ifindex"))
}

// Classic BPF opcodes (linux/filter.h), as the few instructions below use them.
const LD_W_ABS: u16 = 0x20;
const LD_H_ABS: u16 = 0x28;
const LD_B_ABS: u16 = 0x30;
const LD_H_IND: u16 = 0x48;
const LD_B_IND: u16 = 0x50;
const LDX_B_MSH: u16 = 0xb1;
const ALU_AND_K: u16 = 0x54;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
/// Ancillary loads: `SKF_AD_OFF` (-0x1000) plus the field.
const AD_PKTTYPE: u32 = 0xffff_f000 + 4;
const AD_IFINDEX: u32 = 0xffff_f000 + 8;
/// `PACKET_OUTGOING`: loopback shows each packet twice, leaving and arriving.
const PACKET_OUTGOING: u32 = 4;

/// Where a conditional jump goes.
#[derive(Clone, Copy)]
enum To {
    Next,
    Accept,
    Drop,
}

/// One instruction before the jump offsets are resolved.
type Op = (u16, To, To, u32);

fn op(code: u16, k: u32) -> Op {
    (code, To::Next, To::Next, k)
}

/// Continue if the accumulator equals `k`, else drop.
fn must_eq(k: u32) -> Op {
    (JMP_JEQ_K, To::Next, To::Drop, k)
}

fn ret(k: u32) -> SockFilter {
    SockFilter::new(RET_K, 0, 0, k)
}

/// The filter: arriving (not outgoing) on loopback, TCP to `addr`, SYN
/// without ACK. The frame starts with loopback's 14-byte Ethernet header.
fn filter(addr: SocketAddr, lo: u32) -> Vec<SockFilter> {
    let mut ops = vec![
        op(LD_W_ABS, AD_IFINDEX),
        must_eq(lo),
        op(LD_W_ABS, AD_PKTTYPE),
        (JMP_JEQ_K, To::Drop, To::Next, PACKET_OUTGOING),
        op(LD_H_ABS, 12), // ethertype
    ];
    let port = u32::from(addr.port());
    match addr.ip() {
        IpAddr::V4(ip) => ops.extend([
            must_eq(0x0800),
            op(LD_B_ABS, 14 + 9), // protocol
            must_eq(6),
            op(LD_W_ABS, 14 + 16), // destination address
            must_eq(u32::from(ip)),
            op(LD_H_ABS, 14 + 6), // fragment offset: only a first fragment has the TCP header
            (JMP_JSET_K, To::Drop, To::Next, 0x1fff),
            op(LDX_B_MSH, 14), // X = IP header length
            op(LD_H_IND, 14 + 2),
            must_eq(port),
            op(LD_B_IND, 14 + 13), // TCP flags
        ]),
        IpAddr::V6(ip) => {
            ops.extend([
                must_eq(0x86dd),
                op(LD_B_ABS, 14 + 6), // next header (a SYN carries no extension header)
                must_eq(6),
            ]);
            for (i, word) in ip.octets().chunks_exact(4).enumerate() {
                let word = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
                ops.extend([op(LD_W_ABS, 14 + 24 + 4 * i as u32), must_eq(word)]);
            }
            ops.extend([
                op(LD_H_ABS, 14 + 40 + 2),
                must_eq(port),
                op(LD_B_ABS, 14 + 40 + 13),
            ]);
        }
    }
    // SYN (0x02) set and ACK (0x10) clear.
    ops.extend([op(ALU_AND_K, 0x12), (JMP_JEQ_K, To::Accept, To::Drop, 0x02)]);
    assemble(&ops)
}

/// Resolves jump targets into offsets; accept and drop are the two
/// returns after the program.
fn assemble(ops: &[Op]) -> Vec<SockFilter> {
    let accept = ops.len();
    let offset = |at: usize, to: To| -> u8 {
        let target = match to {
            To::Next => at + 1,
            To::Accept => accept,
            To::Drop => accept + 1,
        };
        // Programs here are a few dozen instructions: always in range.
        u8::try_from(target - at - 1).unwrap_or(u8::MAX)
    };
    let mut program: Vec<SockFilter> = ops
        .iter()
        .enumerate()
        .map(|(at, &(code, jt, jf, k))| SockFilter::new(code, offset(at, jt), offset(at, jf), k))
        .collect();
    program.extend([ret(SNAP), ret(0)]);
    program
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_loopback_address_is_unobservable() {
        let err = SynCounter::start(
            "192.0.2.1:80".parse().expect("addr"),
            Arc::new(AtomicU64::new(0)),
        )
        .expect_err("not loopback");
        assert_eq!(err.kind(), ErrorKind::Unsupported);
    }
}
