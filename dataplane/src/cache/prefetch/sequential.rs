//! Sequential read-ahead: spot a reader going through an object in order and say how far
//! ahead of it to fetch, widening while it keeps up and dropping back when it jumps, as the
//! Linux page cache's read-ahead does.

use crate::cache::range::ByteRange;

/// What the detector remembers of one object's latest reader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeqState {
    /// Where a sequential reader's next range would start.
    next: u64,
    /// The current read-ahead window (0: not sequential).
    window: u64,
    /// How far ahead prefetches were already asked for.
    ahead_to: u64,
}

/// Record a read of `range` in an object of `size` bytes after `state`, and return the new
/// state and the bytes to prefetch, if any.
///
/// A read is sequential when it starts where the previous one ended, or at most one block
/// (`bs`) past it (readers skip small gaps: Parquet column chunks are not contiguous). The
/// second sequential read opens a window of twice its length (at least a block); each further
/// one doubles it, up to `max_window`. A read that jumps elsewhere closes the window. The bytes
/// returned start where earlier prefetches stopped, so a steady reader asks for each byte once.
pub fn observe(
    state: Option<SeqState>,
    range: ByteRange,
    size: u64,
    bs: u64,
    max_window: u64,
) -> (SeqState, Option<ByteRange>) {
    let sequential = state.is_some_and(|s| range.first >= s.next && range.first <= s.next + bs);
    let prev = state.unwrap_or_default();
    let next = range.last + 1;
    if !sequential {
        return (
            SeqState {
                next,
                window: 0,
                ahead_to: 0,
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
            next,
            window,
            ahead_to: end.max(prev.ahead_to),
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
