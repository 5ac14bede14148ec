//! The table of a `set` or `frozenset`, laid out as CPython's `Objects/setobject.c` lays it
//! out, so that a set iterates (and prints) in CPython's order: open addressing with 9 linear
//! probes and then perturbation, dummies left by deletions, a resize to 4 × the used entries
//! when 3/5 of the table is filled. Membership itself is decided by the heap's `==`
//! (`Heap::set_find`); the table only decides where a new key goes and the order of iteration.
//!
//! Hashes are CPython's for ints, bools, floats and tuples of them (`Python/pyhash.c`
//! `_Py_HashDouble`, `Objects/tupleobject.c` `tuplehash`), and for strs and bytes CPython's
//! with hash randomization off (`PYTHONHASHSEED=0`); with randomization on, CPython's str
//! order changes from run to run, and this is one of the orders it can show.

/// A slot: unused, a dummy (a deleted key), or a key with its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot<K> {
    Unused,
    Dummy,
    Active(i64, K),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetTable<K> {
    pub table: Vec<Slot<K>>,
    /// Active entries.
    pub used: usize,
    /// Active entries and dummies.
    pub fill: usize,
    /// Where `pop` looks first (`so->finger`).
    pub finger: usize,
}

const MINSIZE: usize = 8;
const LINEAR_PROBES: usize = 9;
const PERTURB_SHIFT: u32 = 5;

impl<K: Copy + PartialEq> Default for SetTable<K> {
    fn default() -> Self {
        SetTable {
            table: vec![Slot::Unused; MINSIZE],
            used: 0,
            fill: 0,
            finger: 0,
        }
    }
}

impl<K: Copy + PartialEq> SetTable<K> {
    pub fn len(&self) -> usize {
        self.used
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    fn mask(&self) -> usize {
        self.table.len() - 1
    }

    /// The keys in table order (CPython's iteration order).
    pub fn keys(&self) -> impl Iterator<Item = K> + '_ {
        self.table.iter().filter_map(|s| match *s {
            Slot::Active(_, k) => Some(k),
            _ => None,
        })
    }

    /// The keys with their hashes, in table order.
    pub fn entries(&self) -> impl Iterator<Item = (i64, K)> + '_ {
        self.table.iter().filter_map(|s| match *s {
            Slot::Active(h, k) => Some((h, k)),
            _ => None,
        })
    }

    /// The slot indices `set_add_entry` visits for `hash`, in order, until it meets an unused
    /// one (which it returns last).
    fn probe(&self, hash: i64) -> Vec<usize> {
        let mask = self.mask();
        let mut perturb = hash as u64;
        let mut i = (hash as u64 as usize) & mask;
        let mut seen = Vec::new();
        loop {
            let probes = if i + LINEAR_PROBES <= mask {
                LINEAR_PROBES
            } else {
                0
            };
            for j in i..=i + probes {
                seen.push(j);
                if self.table[j] == Slot::Unused {
                    return seen;
                }
            }
            perturb >>= PERTURB_SHIFT;
            i = (i
                .wrapping_mul(5)
                .wrapping_add(1)
                .wrapping_add(perturb as usize))
                & mask;
        }
    }

    /// Adds a key known not to be in the set (`set_add_entry` past its comparisons): into the
    /// first dummy on its probe sequence, else the unused slot that ends it; then a resize if
    /// the table is 3/5 full.
    pub fn insert(&mut self, hash: i64, key: K) {
        let path = self.probe(hash);
        let free = path.iter().copied().find(|&j| self.table[j] == Slot::Dummy);
        match free {
            Some(j) => {
                self.table[j] = Slot::Active(hash, key);
                self.used += 1;
            }
            None => {
                let j = *path.last().expect("a probe ends at an unused slot");
                self.table[j] = Slot::Active(hash, key);
                self.used += 1;
                self.fill += 1;
                if self.fill * 5 >= self.mask() * 3 {
                    let minused = if self.used > 50_000 {
                        self.used * 2
                    } else {
                        self.used * 4
                    };
                    self.resize(minused);
                }
            }
        }
    }

    /// `set_table_resize`: the smallest power of two above `minused` (at least 8), the active
    /// entries reinserted in table order by `set_insert_clean`.
    fn resize(&mut self, minused: usize) {
        let mut size = MINSIZE;
        while size <= minused {
            size <<= 1;
        }
        let old: Vec<(i64, K)> = self.entries().collect();
        self.table = vec![Slot::Unused; size];
        self.fill = old.len();
        self.used = old.len();
        for (h, k) in old {
            self.insert_clean(h, k);
        }
    }

    /// `set_insert_clean`: into the first unused slot of the probe sequence (no dummies).
    fn insert_clean(&mut self, hash: i64, key: K) {
        let j = *self.probe(hash).last().expect("an unused slot");
        self.table[j] = Slot::Active(hash, key);
    }

    /// Removes the key at slot `j` (`set_discard_entry`: it becomes a dummy).
    pub fn remove_slot(&mut self, j: usize) -> Option<K> {
        match self.table[j] {
            Slot::Active(_, k) => {
                self.table[j] = Slot::Dummy;
                self.used -= 1;
                Some(k)
            }
            _ => None,
        }
    }

    /// The slot holding a key for which `is_key` says yes.
    pub fn slot_of(&self, mut is_key: impl FnMut(i64, K) -> bool) -> Option<usize> {
        self.table.iter().position(|s| match *s {
            Slot::Active(h, k) => is_key(h, k),
            _ => false,
        })
    }

    /// `set_pop`: the first active slot from the finger on, wrapping around.
    pub fn pop(&mut self) -> Option<K> {
        if self.used == 0 {
            return None;
        }
        let n = self.table.len();
        let mut j = self.finger & self.mask();
        while !matches!(self.table[j], Slot::Active(..)) {
            j = (j + 1) % n;
        }
        self.finger = j + 1;
        self.remove_slot(j)
    }

    /// `set_clear`: an empty table of the minimum size.
    pub fn clear(&mut self) -> Vec<K> {
        let keys = self.keys().collect();
        *self = SetTable::default();
        keys
    }

    /// The resize `set_merge` does before it inserts `other_used` keys one by one.
    pub fn prepare_merge(&mut self, other_used: usize) {
        if (self.fill + other_used) * 5 >= self.mask() * 3 {
            self.resize((self.used + other_used) * 2);
        }
    }

    /// `set_merge` of `other` into this set when this one is empty (`set(s)`, `s.copy()`, the
    /// `SET_UPDATE` of a display): the same table when the sizes agree and `other` has no
    /// dummies, else clean insertions in `other`'s order after one resize.
    pub fn merge_into_empty(&mut self, other: &SetTable<K>) {
        debug_assert_eq!(self.fill, 0);
        if other.used == 0 {
            return;
        }
        if (self.fill + other.used) * 5 >= self.mask() * 3 {
            self.resize((self.used + other.used) * 2);
        }
        if self.mask() == other.mask() && other.fill == other.used {
            self.table = other.table.clone();
            self.fill = other.fill;
            self.used = other.used;
            return;
        }
        self.fill = other.used;
        self.used = other.used;
        for (h, k) in other.entries() {
            self.insert_clean(h, k);
        }
    }
}

const MODULUS: u64 = (1 << 61) - 1;
const HASH_BITS: u32 = 61;

/// CPython's hash of an int (`long_hash`): the value modulo 2**61 − 1 with its sign; −1 is −2.
pub fn hash_int(i: i64) -> i64 {
    let m = MODULUS as i128;
    let v = i as i128;
    let r = if v >= 0 { v % m } else { -((-v) % m) };
    let r = r as i64;
    if r == -1 { -2 } else { r }
}

/// CPython's `_Py_HashDouble` (finite values; infinities hash as ±314159, NaN by identity in
/// CPython, here 0).
pub fn hash_float(v: f64) -> i64 {
    if v.is_infinite() {
        return if v > 0.0 { 314_159 } else { -314_159 };
    }
    if v.is_nan() {
        return 0;
    }
    if v.fract() == 0.0 && v.abs() < 9.2e18 {
        return hash_int(v as i64);
    }
    let (mut m, mut e) = frexp(v);
    let mut sign: i64 = 1;
    if m < 0.0 {
        sign = -1;
        m = -m;
    }
    let mut x: u64 = 0;
    while m != 0.0 {
        x = ((x << 28) & MODULUS) | (x >> (HASH_BITS - 28));
        m *= 268_435_456.0;
        e -= 28;
        let y = m as u64;
        m -= y as f64;
        x += y;
        if x >= MODULUS {
            x -= MODULUS;
        }
    }
    let hb = HASH_BITS as i32;
    let e = if e >= 0 {
        e % hb
    } else {
        hb - 1 - ((-1 - e) % hb)
    } as u32;
    x = ((x << e) & MODULUS) | (x >> (HASH_BITS - e));
    let r = (x as i64).wrapping_mul(sign);
    if r == -1 { -2 } else { r }
}

fn frexp(v: f64) -> (f64, i32) {
    if v == 0.0 {
        return (0.0, 0);
    }
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    if exp == 0 {
        // Subnormal: scale up first.
        let (m, e) = frexp(v * 2f64.powi(64));
        return (m, e - 64);
    }
    let e = exp - 1022;
    let m = f64::from_bits((bits & !(0x7ff << 52)) | (1022 << 52));
    (m, e)
}

/// CPython's `tuplehash` (the xxHash-based one of 3.8+) over the items' hashes.
pub fn hash_tuple(items: &[i64]) -> i64 {
    const P1: u64 = 11_400_714_785_074_694_791;
    const P2: u64 = 14_029_467_366_897_019_727;
    const P5: u64 = 2_870_177_450_012_600_261;
    let mut acc: u64 = P5;
    for &h in items {
        acc = acc.wrapping_add((h as u64).wrapping_mul(P2));
        acc = acc.rotate_left(31);
        acc = acc.wrapping_mul(P1);
    }
    acc = acc.wrapping_add((items.len() as u64) ^ (P5 ^ 3_527_539));
    if acc == u64::MAX {
        1_546_275_796
    } else {
        acc as i64
    }
}

/// CPython's `_Py_HashBytes` with hash randomization off (`PYTHONHASHSEED=0`): SipHash-1-3
/// with a zero key (`Python/pyhash.c`, the default since 3.11), 0 for no bytes, never −1.
pub fn hash_bytes(data: &[u8]) -> i64 {
    if data.is_empty() {
        return 0;
    }
    let (k0, k1) = (0u64, 0u64);
    let mut v0 = k0 ^ 0x736f_6d65_7073_6575;
    let mut v1 = k1 ^ 0x646f_7261_6e64_6f6d;
    let mut v2 = k0 ^ 0x6c79_6765_6e65_7261;
    let mut v3 = k1 ^ 0x7465_6462_7974_6573;
    let round = |v0: &mut u64, v1: &mut u64, v2: &mut u64, v3: &mut u64| {
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    };
    let chunks = data.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        let m = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        v3 ^= m;
        round(&mut v0, &mut v1, &mut v2, &mut v3);
        v0 ^= m;
    }
    let mut b = (data.len() as u64) << 56;
    for (i, &x) in tail.iter().enumerate() {
        b |= u64::from(x) << (8 * i);
    }
    v3 ^= b;
    round(&mut v0, &mut v1, &mut v2, &mut v3);
    v0 ^= b;
    v2 ^= 0xff;
    for _ in 0..3 {
        round(&mut v0, &mut v1, &mut v2, &mut v3);
    }
    let r = (v0 ^ v1 ^ v2 ^ v3) as i64;
    if r == -1 { -2 } else { r }
}

/// A str's hash as CPython computes it with `PYTHONHASHSEED=0`: [`hash_bytes`] of its PEP 393
/// representation (one byte per character up to U+00FF, two up to U+FFFF, else four, little
/// endian). With another seed CPython's str hashes differ run to run, so any order of a set of
/// strs is one CPython can show; this one is the order of `PYTHONHASHSEED=0`.
pub fn hash_str(s: &str) -> i64 {
    let widest = s.chars().map(|c| c as u32).max().unwrap_or(0);
    let width = if widest <= 0xff {
        1
    } else if widest <= 0xffff {
        2
    } else {
        4
    };
    let mut data = Vec::with_capacity(s.len() * width);
    for c in s.chars() {
        data.extend_from_slice(&(c as u32).to_le_bytes()[..width]);
    }
    hash_bytes(&data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_cpythons() {
        // Values printed by CPython 3.11: hash(-1), hash(2**61), hash(0.5), hash(1.5),
        // hash(-2.25), hash((1, 2)), hash(()).
        assert_eq!(hash_int(-1), -2);
        assert_eq!(hash_int(1 << 61), 1);
        assert_eq!(hash_float(0.5), 1_152_921_504_606_846_976);
        assert_eq!(hash_float(1.5), 1_152_921_504_606_846_977);
        assert_eq!(hash_float(-2.25), -576_460_752_303_423_490);
        assert_eq!(hash_tuple(&[1, 2]), -3_550_055_125_485_641_917);
        assert_eq!(hash_tuple(&[]), 5_740_354_900_026_072_187);
        assert_eq!(hash_float(1e-300), 482_449_582_752_280_463);
        assert_eq!(hash_float(3.0e18 + 0.5), 694_156_990_786_306_049);
        // PYTHONHASHSEED=0 python3.11 -c "print(hash('a'))", and the others.
        assert_eq!(hash_str("a"), 4_644_417_185_603_328_019);
        assert_eq!(hash_str("ab"), 6_148_830_537_548_944_441);
        assert_eq!(hash_str("abcdefgh"), 4_574_395_652_268_504_554);
        assert_eq!(hash_str("abcdefghi"), -532_774_252_720_507_163);
        assert_eq!(hash_str(""), 0);
        assert_eq!(hash_str("é"), 6_047_309_291_227_476_195);
        assert_eq!(hash_bytes("é".as_bytes()), -1_266_968_099_349_302_080);
        assert_eq!(hash_str("hé"), 5_785_546_998_624_587_330);
        assert_eq!(hash_str("日本"), 6_243_316_497_235_261_705);
    }

    #[test]
    fn order_is_cpythons() {
        // list({…}) on CPython 3.11 for sets built by adding these ints in this order.
        let order = |items: &[i64]| {
            let mut t = SetTable::default();
            for &i in items {
                if !t.keys().any(|k| k == i) {
                    t.insert(hash_int(i), i);
                }
            }
            t.keys().collect::<Vec<_>>()
        };
        assert_eq!(order(&[3, 1, 2]), vec![1, 2, 3]);
        assert_eq!(order(&[9, 1]), vec![9, 1]);
        assert_eq!(order(&[8, 16, 1]), vec![8, 16, 1]);
        assert_eq!(order(&[100, 5, 33, 7, 64, 2]), vec![64, 33, 2, 100, 5, 7]);
        assert_eq!(order(&[40, 8, 24, 1, 2, 3]), vec![1, 2, 3, 40, 8, 24]);
        // s = set(range(20)); discard every third; add 100 and -5.
        let mut t = SetTable::default();
        for i in 0..20 {
            t.insert(hash_int(i), i);
        }
        for i in (0..20).step_by(3) {
            let j = t.slot_of(|_, k| k == i).expect("present");
            t.remove_slot(j);
        }
        t.insert(hash_int(100), 100);
        t.insert(hash_int(-5), -5);
        assert_eq!(
            t.keys().collect::<Vec<_>>(),
            vec![1, 2, 4, 5, 7, 8, 10, 11, 13, 14, 16, 17, 19, 100, -5]
        );
        // s = {1, 2, 3}; s.pop(), s.pop() → 1, 2.
        let mut t = SetTable::default();
        for i in 1..4 {
            t.insert(hash_int(i), i);
        }
        assert_eq!((t.pop(), t.pop()), (Some(1), Some(2)));
        assert_eq!(t.keys().collect::<Vec<_>>(), vec![3]);
        // Adding (1, 2), (3, 4), (0, 0), (5,) and 1.5, 0.25, 2, 7.0 one by one, as on CPython
        // 3.11.
        let mut t = SetTable::default();
        for (k, h) in [
            (0, hash_tuple(&[1, 2])),
            (1, hash_tuple(&[3, 4])),
            (2, hash_tuple(&[0, 0])),
            (3, hash_tuple(&[5])),
        ] {
            t.insert(h, k);
        }
        assert_eq!(t.keys().collect::<Vec<_>>(), vec![0, 3, 1, 2]);
        let mut t = SetTable::default();
        for (k, h) in [
            (0, hash_float(1.5)),
            (1, hash_float(0.25)),
            (2, hash_int(2)),
            (3, hash_float(7.0)),
        ] {
            t.insert(h, k);
        }
        assert_eq!(t.keys().collect::<Vec<_>>(), vec![1, 0, 2, 3]);
    }
}
