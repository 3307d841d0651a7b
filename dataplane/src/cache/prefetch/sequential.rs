//! Sequential read-ahead: spot a reader going through an object in order and say how far
//! ahead of it to fetch, widening while it keeps up and dropping back when it jumps, as the
//! Linux page cache's read-ahead does.
//!
//! Several connections of one client often scan one object together (a shared cursor hands
//! each the next range): their reads reach the cache a little out of order, each following
//! one of the last few reads rather than the very last. A read is sequential when it follows
//! any of the [`STREAMS`] latest reads' ends.

use crate::cache::range::ByteRange;

/// Read ends remembered per object: a read that follows one of them is sequential, so up to
/// this many connections reading one object in turn (or one reader whose reads are reordered
/// that much) are seen as the sequential reader they are.
pub const STREAMS: usize = 8;

/// What the detector remembers of one object's latest readers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqState {
    /// Where the latest reads ended (one past their last byte), newest first; 0: unused.
    ends: [u64; STREAMS],
    /// The current read-ahead window (0: not sequential).
    window: u64,
    /// How far ahead prefetches were already asked for.
    ahead_to: u64,
}

impl SeqState {
    /// `end` is the newest read's end; the oldest is forgotten.
    fn with_end(mut self, end: u64) -> Self {
        self.ends.copy_within(..STREAMS - 1, 1);
        self.ends[0] = end;
        self
    }
}

/// Record a read of `range` in an object of `size` bytes after `state`, and return the new
/// state and the bytes to prefetch, if any.
///
/// A read is sequential when it starts where one of the [`STREAMS`] previous reads ended, or
/// at most one block (`bs`) past the latest of them (readers skip small gaps: Parquet column
/// chunks are not contiguous); while the window is open, also when it starts less than [`STREAMS`] of its
/// lengths past the furthest of those ends (another reader's range not seen yet). The second sequential read opens a window of twice its length (at least a
/// block); each further one doubles it, up to `max_window`. A read that follows none of them
/// closes the window. The bytes returned lie within the window after the read's end and start
/// where earlier prefetches stopped, so steady readers ask for each byte once.
pub fn observe(
    state: Option<SeqState>,
    range: ByteRange,
    size: u64,
    bs: u64,
    max_window: u64,
) -> (SeqState, Option<ByteRange>) {
    let sequential = state.is_some_and(|s| {
        // The newest end with a block of slack (a reader skipping a small gap); the older
        // ones exactly (another connection's range starts where the one before it ended), so
        // that random reads of a small object do not pass for sequential ones eight times as
        // often.
        let follows = range.first >= s.ends[0] && range.first <= s.ends[0] + bs
            || s.ends[1..].iter().any(|&e| e > 0 && range.first == e);
        // While a scan is on, a read that lands a few reads past the furthest end is one of
        // its readers that got ahead of the others.
        let frontier = s.ends.iter().copied().max().unwrap_or(0);
        let ahead_of_others = s.window > 0
            && range.first > frontier
            && range.first - frontier <= STREAMS as u64 * range.len();
        follows || ahead_of_others
    });
    let prev = state.unwrap_or_default();
    let next = range.last + 1;
    if !sequential {
        return (
            SeqState {
                window: 0,
                ahead_to: 0,
                ..prev.with_end(next)
            },
            None,
        );
    }
    let window = if prev.window == 0 {
        (2 * range.len()).clamp(bs, max_window)
    } else {
        (prev.window * 2).min(max_window)
    };
    let start = next.max(prev.ahead_to);
    let end = next.saturating_add(window).min(size);
    let ahead = (start < end).then(|| ByteRange::new(start, end - 1));
    (
        SeqState {
            window,
            ahead_to: end.max(prev.ahead_to),
            ..prev.with_end(next)
        },
        ahead,
    )
}

/// The prefetch `state` asked for was started only up to byte `at` (the budget's prefetch
/// share ran out): forget the rest, so the reader's next read asks for it again instead of
/// leaving a hole its reads would wait on.
pub fn fell_short(state: SeqState, at: u64) -> SeqState {
    SeqState {
        ahead_to: state.ahead_to.min(at),
        ..state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    fn r(a: u64, b: u64) -> ByteRange {
        ByteRange::new(a, b)
    }

    /// Feed reads of `len` bytes from 0, one after the other; return what each asked ahead.
    fn scan(len: u64, reads: u64, max: u64) -> Vec<Option<ByteRange>> {
        let mut state = None;
        (0..reads)
            .map(|i| {
                let (s, ahead) = observe(state, r(i * len, (i + 1) * len - 1), 1 << 40, MB, max);
                state = Some(s);
                ahead
            })
            .collect()
    }

    #[test]
    fn the_window_opens_on_the_second_read_and_doubles_to_the_cap() {
        let got = scan(8 * MB, 5, 64 * MB);
        assert_eq!(got[0], None, "one read is not a pattern");
        assert_eq!(
            got[1],
            Some(r(16 * MB, 32 * MB - 1)),
            "twice the read ahead"
        );
        // Then the window doubles (32, 64, 64 MiB) and only new bytes are asked for.
        assert_eq!(got[2], Some(r(32 * MB, 56 * MB - 1)));
        assert_eq!(got[3], Some(r(56 * MB, 96 * MB - 1)));
        assert_eq!(got[4], Some(r(96 * MB, 104 * MB - 1)));
    }

    #[test]
    fn what_was_not_started_is_asked_for_again_by_the_next_read() {
        let (s, _) = observe(None, r(0, 8 * MB - 1), 1 << 40, MB, 64 * MB);
        let (s, ahead) = observe(Some(s), r(8 * MB, 16 * MB - 1), 1 << 40, MB, 64 * MB);
        assert_eq!(ahead, Some(r(16 * MB, 32 * MB - 1)));
        // Only 16..20 MiB got budget.
        let s = fell_short(s, 20 * MB);
        let (_, ahead) = observe(Some(s), r(16 * MB, 24 * MB - 1), 1 << 40, MB, 64 * MB);
        assert_eq!(
            ahead,
            Some(r(24 * MB, 56 * MB - 1)),
            "from the reader's end"
        );
        let s = fell_short(s, 20 * MB);
        let (_, ahead) = observe(Some(s), r(12 * MB, 16 * MB - 1), 1 << 40, MB, 64 * MB);
        assert_eq!(ahead, None, "a jump back is no sequential read");
    }

    #[test]
    fn a_jump_closes_the_window_and_small_gaps_do_not() {
        let (s, _) = observe(None, r(0, MB - 1), 1 << 30, MB, 64 * MB);
        // A gap under a block (the next column chunk) is still sequential.
        let (s, ahead) = observe(Some(s), r(MB + 1000, 2 * MB), 1 << 30, MB, 64 * MB);
        assert!(ahead.is_some());
        // A jump back (or far ahead) is not, and resets.
        let (s, ahead) = observe(Some(s), r(0, 100), 1 << 30, MB, 64 * MB);
        assert_eq!(ahead, None);
        assert_eq!(s.window, 0);
        // Re-reading the same range is not sequential either.
        let (s, _) = observe(Some(s), r(0, 100), 1 << 30, MB, 64 * MB);
        assert_eq!(s.window, 0);
    }

    #[test]
    fn readers_sharing_a_cursor_are_sequential_out_of_order() {
        // Four connections take the next 8 MiB range in turn; their reads arrive reordered.
        let mut state = None;
        let mut asked = Vec::new();
        let mut windows = Vec::new();
        for i in [1u64, 0, 3, 2, 5, 4, 6, 7, 9, 8, 10, 11] {
            let (s, ahead) = observe(
                state,
                r(i * 8 * MB, (i + 1) * 8 * MB - 1),
                1 << 40,
                MB,
                64 * MB,
            );
            state = Some(s);
            windows.push(s.window);
            asked.extend(ahead);
        }
        // The first three reads follow nothing remembered (the third is ahead of the others
        // before any window is open); from then on the window grows to the cap and stays open.
        assert_eq!(windows[..3], [0, 0, 0]);
        assert!(windows[3..].iter().all(|&w| w > 0), "{windows:?}");
        assert_eq!(windows[windows.len() - 1], 64 * MB);
        // Read-ahead reaches past the readers and asks for no byte twice.
        assert!(
            asked.iter().any(|a| a.last >= 96 * MB + 64 * MB - 1),
            "{asked:?}"
        );
        for (i, a) in asked.iter().enumerate() {
            for b in &asked[i + 1..] {
                assert!(
                    a.last < b.first || b.last < a.first,
                    "{a:?} and {b:?} overlap"
                );
            }
        }
    }

    #[test]
    fn random_reads_follow_no_remembered_end() {
        let mut state = None;
        for start in [40u64, 3, 27, 11, 50, 19, 33, 7, 45, 1, 36, 14] {
            let (s, ahead) = observe(
                state,
                r(start * MB + 7, start * MB + 1000),
                64 * MB,
                MB,
                64 * MB,
            );
            assert_eq!(ahead, None, "read at {start} MiB");
            state = Some(s);
        }
    }

    #[test]
    fn random_small_reads_of_a_small_object_rarely_open_a_window() {
        // 4 KiB reads at random over 16 MiB: a read lands within a block after the last one
        // one time in 16; remembering more ends must not make that eight times as likely.
        let size = 16 * MB;
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut state = None;
        let mut opened = 0;
        for _ in 0..4000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let first = x % (size - 4096);
            let (s, ahead) = observe(state, r(first, first + 4095), size, MB, 64 * MB);
            opened += u32::from(ahead.is_some());
            state = Some(s);
        }
        assert!(
            opened < 4000 / 10,
            "{opened} of 4000 random reads read ahead"
        );
    }

    #[test]
    fn never_past_the_object_nor_more_than_the_cap_ahead() {
        let size = 20 * MB;
        let mut state = None;
        for i in 0..20 {
            let (s, ahead) = observe(state, r(i * MB, (i + 1) * MB - 1), size, MB, 4 * MB);
            if let Some(a) = ahead {
                assert!(a.last < size);
                assert!(a.last < (i + 1) * MB + 4 * MB, "more than the cap ahead");
            }
            state = Some(s);
        }
    }
}
