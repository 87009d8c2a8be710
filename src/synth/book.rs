//! The simulated ES price-level book: sizes and order counts per tick on each side.
//!
//! Prices are integer ticks (0.25 index points). The book is a dense window of ticks around the
//! starting price; the invariant `best_bid < best_ask` is kept by every operation (an add that
//! would cross is refused), so no image the simulator writes can be crossed.

/// Bid or ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookSide {
    Bid,
    Ask,
}

impl BookSide {
    /// The opposite side.
    pub fn other(self) -> BookSide {
        match self {
            BookSide::Bid => BookSide::Ask,
            BookSide::Ask => BookSide::Bid,
        }
    }

    /// DBN side letter of a resting order on this side.
    pub fn dbn_char(self) -> u8 {
        match self {
            BookSide::Bid => b'B',
            BookSide::Ask => b'A',
        }
    }
}

/// One price level: resting contracts and number of orders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Level {
    pub size: u32,
    pub count: u32,
}

/// One row of a book image: price in ticks (None when the row is empty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Row {
    pub tick: Option<i64>,
    pub size: u32,
    pub count: u32,
}

/// How far (in ticks) the image builder scans for non-empty levels.
const SCAN_LIMIT: usize = 400;

/// Dense two-sided price-level book.
#[derive(Debug, Clone)]
pub struct Book {
    base: i64,
    bid: Vec<Level>,
    ask: Vec<Level>,
    best_bid: Option<usize>,
    best_ask: Option<usize>,
}

impl Book {
    /// An empty book covering `span` ticks centred on `center_tick`.
    pub fn new(center_tick: i64, span: usize) -> Book {
        let span = span.max(64);
        Book {
            base: center_tick - (span / 2) as i64,
            bid: vec![Level::default(); span],
            ask: vec![Level::default(); span],
            best_bid: None,
            best_ask: None,
        }
    }

    /// Lowest and highest tick the book can hold.
    pub fn tick_range(&self) -> (i64, i64) {
        (self.base, self.base + self.bid.len() as i64 - 1)
    }

    fn index(&self, tick: i64) -> Option<usize> {
        let i = tick - self.base;
        (i >= 0 && (i as usize) < self.bid.len()).then_some(i as usize)
    }

    fn side(&self, side: BookSide) -> &[Level] {
        match side {
            BookSide::Bid => &self.bid,
            BookSide::Ask => &self.ask,
        }
    }

    fn side_mut(&mut self, side: BookSide) -> &mut [Level] {
        match side {
            BookSide::Bid => &mut self.bid,
            BookSide::Ask => &mut self.ask,
        }
    }

    /// Best bid tick.
    pub fn best_bid(&self) -> Option<i64> {
        self.best_bid.map(|i| self.base + i as i64)
    }

    /// Best ask tick.
    pub fn best_ask(&self) -> Option<i64> {
        self.best_ask.map(|i| self.base + i as i64)
    }

    /// Best tick of `side`.
    pub fn best(&self, side: BookSide) -> Option<i64> {
        match side {
            BookSide::Bid => self.best_bid(),
            BookSide::Ask => self.best_ask(),
        }
    }

    /// Level at `tick` on `side` (empty outside the window).
    pub fn level(&self, side: BookSide, tick: i64) -> Level {
        self.index(tick)
            .map(|i| self.side(side)[i])
            .unwrap_or_default()
    }

    /// Mid price in ticks (one side alone when the other is empty).
    pub fn mid(&self) -> Option<f64> {
        match (self.best_bid(), self.best_ask()) {
            (Some(b), Some(a)) => Some((b + a) as f64 / 2.0),
            (Some(b), None) => Some(b as f64),
            (None, Some(a)) => Some(a as f64),
            (None, None) => None,
        }
    }

    /// Spread in ticks when both sides are present.
    pub fn spread(&self) -> Option<i64> {
        Some(self.best_ask()? - self.best_bid()?)
    }

    /// Whether an add of `side` at `tick` is allowed (inside the window and not crossing).
    pub fn can_add(&self, side: BookSide, tick: i64) -> bool {
        if self.index(tick).is_none() {
            return false;
        }
        match side {
            BookSide::Bid => self.best_ask().is_none_or(|a| tick < a),
            BookSide::Ask => self.best_bid().is_none_or(|b| tick > b),
        }
    }

    /// Adds `size` contracts as one new order. Returns false (and changes nothing) when the add
    /// is not allowed.
    pub fn add(&mut self, side: BookSide, tick: i64, size: u32) -> bool {
        if size == 0 || !self.can_add(side, tick) {
            return false;
        }
        let Some(i) = self.index(tick) else {
            return false;
        };
        let lvl = &mut self.side_mut(side)[i];
        lvl.size += size;
        lvl.count += 1;
        match side {
            BookSide::Bid => {
                if self.best_bid.is_none_or(|b| i > b) {
                    self.best_bid = Some(i);
                }
            }
            BookSide::Ask => {
                if self.best_ask.is_none_or(|a| i < a) {
                    self.best_ask = Some(i);
                }
            }
        }
        true
    }

    /// Sets a whole level at once (book snapshots). Refused (false) when it would cross.
    pub fn set_level(&mut self, side: BookSide, tick: i64, lvl: Level) -> bool {
        if lvl.size == 0 {
            let size = self.level(side, tick).size;
            self.remove(side, tick, size, u32::MAX);
            return true;
        }
        if !self.add(side, tick, lvl.size) {
            return false;
        }
        let Some(i) = self.index(tick) else {
            return false;
        };
        self.side_mut(side)[i] = Level {
            size: lvl.size,
            count: lvl.count.clamp(1, lvl.size),
        };
        true
    }

    /// Removes up to `size` contracts from the level; `orders` is how many orders that removes
    /// (the count never drops below 1 while contracts remain). Returns the contracts removed.
    pub fn remove(&mut self, side: BookSide, tick: i64, size: u32, orders: u32) -> u32 {
        let Some(i) = self.index(tick) else { return 0 };
        let lvl = &mut self.side_mut(side)[i];
        let take = size.min(lvl.size);
        if take == 0 {
            return 0;
        }
        lvl.size -= take;
        if lvl.size == 0 {
            lvl.count = 0;
        } else {
            lvl.count = lvl.count.saturating_sub(orders).clamp(1, lvl.size);
        }
        if lvl.size == 0 {
            self.refresh_best(side, i);
        }
        take
    }

    fn refresh_best(&mut self, side: BookSide, emptied: usize) {
        match side {
            BookSide::Bid => {
                if self.best_bid == Some(emptied) {
                    let lo = emptied.saturating_sub(SCAN_LIMIT);
                    self.best_bid = (lo..emptied).rev().find(|&j| self.bid[j].size > 0);
                }
            }
            BookSide::Ask => {
                if self.best_ask == Some(emptied) {
                    let hi = (emptied + 1 + SCAN_LIMIT).min(self.ask.len());
                    self.best_ask = (emptied + 1..hi).find(|&j| self.ask[j].size > 0);
                }
            }
        }
    }

    /// Row index (0 = best) of `tick` on `side` counting only non-empty levels better than it.
    pub fn depth_of(&self, side: BookSide, tick: i64) -> u8 {
        let (Some(best), Some(i)) = (self.best(side), self.index(tick)) else {
            return 0;
        };
        let levels = self.side(side);
        let best_i = (best - self.base) as usize;
        let n = match side {
            BookSide::Bid if i < best_i => (i + 1..=best_i).filter(|&j| levels[j].size > 0).count(),
            BookSide::Ask if i > best_i => (best_i..i).filter(|&j| levels[j].size > 0).count(),
            _ => 0,
        };
        n.min(255) as u8
    }

    /// The best `N` non-empty levels of `side`, best first.
    pub fn rows<const N: usize>(&self, side: BookSide) -> [Row; N] {
        let mut out = [Row::default(); N];
        let Some(best) = self.best(side) else {
            return out;
        };
        let levels = self.side(side);
        let mut i = (best - self.base) as usize;
        let mut n = 0;
        let mut scanned = 0;
        while n < N && scanned < SCAN_LIMIT {
            let l = levels[i];
            if l.size > 0 {
                out[n] = Row {
                    tick: Some(self.base + i as i64),
                    size: l.size,
                    count: l.count,
                };
                n += 1;
            }
            scanned += 1;
            match side {
                BookSide::Bid => {
                    if i == 0 {
                        break;
                    }
                    i -= 1;
                }
                BookSide::Ask => {
                    i += 1;
                    if i >= levels.len() {
                        break;
                    }
                }
            }
        }
        out
    }

    /// Sum of sizes on `side` for ticks in `[lo, hi]`.
    pub fn depth_between(&self, side: BookSide, lo: i64, hi: i64) -> u32 {
        (lo..=hi).map(|t| self.level(side, t).size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> Book {
        let mut b = Book::new(1000, 256);
        for k in 0..5 {
            assert!(b.add(BookSide::Bid, 999 - k, 10 + k as u32));
            assert!(b.add(BookSide::Ask, 1000 + k, 20 + k as u32));
        }
        b
    }

    #[test]
    fn add_that_would_cross_is_refused() {
        let mut b = book();
        assert!(!b.add(BookSide::Bid, 1000, 5));
        assert!(!b.add(BookSide::Ask, 999, 5));
        assert_eq!(b.spread(), Some(1));
    }

    #[test]
    fn emptying_best_level_moves_best_outward() {
        let mut b = book();
        assert_eq!(b.remove(BookSide::Ask, 1000, 100, 1), 20);
        assert_eq!(b.best_ask(), Some(1001));
        assert_eq!(b.level(BookSide::Ask, 1000), Level::default());
        assert_eq!(b.remove(BookSide::Bid, 999, 4, 1), 4);
        assert_eq!(b.best_bid(), Some(999));
        assert_eq!(b.level(BookSide::Bid, 999).size, 6);
    }

    #[test]
    fn rows_skip_empty_levels_and_pad_with_none() {
        let mut b = book();
        b.remove(BookSide::Bid, 997, 100, 1);
        let rows: [Row; 10] = b.rows(BookSide::Bid);
        let ticks: Vec<_> = rows.iter().filter_map(|r| r.tick).collect();
        assert_eq!(ticks, vec![999, 998, 996, 995]);
        assert!(rows[4].tick.is_none() && rows[4].size == 0);
        assert_eq!(b.depth_of(BookSide::Bid, 996), 2);
    }

    #[test]
    fn count_stays_between_one_and_size() {
        let mut b = Book::new(0, 64);
        b.add(BookSide::Bid, -1, 3);
        b.add(BookSide::Bid, -1, 3);
        b.remove(BookSide::Bid, -1, 5, 5);
        assert_eq!(b.level(BookSide::Bid, -1), Level { size: 1, count: 1 });
    }

    #[test]
    fn adds_outside_window_are_refused() {
        let mut b = Book::new(0, 64);
        assert!(!b.add(BookSide::Bid, -10_000, 1));
        assert!(b.best_bid().is_none());
    }
}
